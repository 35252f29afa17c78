"""Build the collection env stack from one plain description (also stored in dataset metadata).

One path for every env the library makes: collection writes ``EnvSpec.metadata()`` into the
dataset, the trainer copies it into ``run_dir/config.json`` (``dataset.metadata``), and every
consumer (the imagined env and its real start states, ``worldmodel evaluate``'s simulator, MPC,
``dyna``, the report's commands) rebuilds the same env with :func:`env_spec_of` /
:meth:`EnvSpec.from_metadata` and :func:`make_env`, and takes its reward and termination from
:meth:`EnvSpec.task` (the dataset's ``env_kwargs`` included).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from dataclasses import asdict, dataclass, field
from typing import TYPE_CHECKING, Any

import gymnasium as gym

from envs.timing import TimingSpec
from envs.wrappers import Incline, IrregularTiming, ResetNoise, TrajectoryRecorder, mujoco_base

if TYPE_CHECKING:
    from envs.tasks import Task

#: the wrappers :meth:`EnvSpec.wrappers` records, by name
WRAPPER_NAMES = ("Incline", "ResetNoise", "IrregularTiming")


@dataclass(frozen=True)
class EnvSpec:
    """Everything needed to rebuild a collection env.

    Attributes:
        env_id: a registered Gymnasium MuJoCo env id, e.g. ``Hopper-v5``.
        timing: substeps per step (see :class:`envs.TimingSpec`), e.g. ``uniform:1-7``.
        max_episode_steps: ``TimeLimit`` in steps; ``None`` keeps the env's registered one.
        reset_noise: extra uniform noise on qpos/qvel at reset (:class:`envs.ResetNoise`).
        incline_deg: tilt of gravity in degrees (:class:`envs.Incline`).
        env_kwargs: keyword arguments for ``gym.make``.
    """

    env_id: str = "Hopper-v5"
    timing: str = "fixed"
    max_episode_steps: int | None = None
    reset_noise: float = 0.0
    incline_deg: float = 0.0
    env_kwargs: dict[str, Any] = field(default_factory=dict)

    def check(self) -> None:
        """Fail early, with the valid choices, on an unknown env id or timing spec."""
        TimingSpec.parse(self.timing)
        try:
            gym.spec(self.env_id)
        except gym.error.Error as err:
            mujoco_ids = sorted(
                k
                for k, s in gym.registry.items()
                if "mujoco" in str(s.entry_point) and k.endswith("-v5")
            )
            raise ValueError(
                f"unknown env {self.env_id!r} ({err}); MuJoCo envs: {mujoco_ids}"
            ) from None
        if self.max_episode_steps is not None and self.max_episode_steps < 1:
            raise ValueError(f"max_episode_steps must be >= 1, got {self.max_episode_steps}")

    def wrappers(self) -> list[dict[str, Any]]:
        """The wrapper stack, innermost first, as metadata."""
        out: list[dict[str, Any]] = []
        if self.incline_deg:
            out.append({"name": "Incline", "angle_deg": self.incline_deg})
        if self.reset_noise:
            out.append({"name": "ResetNoise", "scale": self.reset_noise})
        out.append({"name": "IrregularTiming", "timing": str(TimingSpec.parse(self.timing))})
        return out

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    def replace(self, **changes: Any) -> EnvSpec:
        """A copy with some fields changed (e.g. a consumer's own ``timing``)."""
        return dataclasses.replace(self, **changes)

    def metadata(self) -> dict[str, Any]:
        """The dataset metadata that :meth:`from_metadata` reads back: ``env_id``,
        ``env_kwargs``, ``max_episode_steps`` and ``wrappers``."""
        return {
            "env_id": self.env_id,
            "env_kwargs": dict(self.env_kwargs),
            "max_episode_steps": self.max_episode_steps,
            "wrappers": self.wrappers(),
        }

    @classmethod
    def from_metadata(cls, meta: Mapping[str, Any]) -> EnvSpec:
        """The spec a dataset was collected with, from its metadata (``Dataset.metadata``, or
        the ``dataset.metadata`` that a run's ``config.json`` copies). Missing keys take the
        defaults (plain ``gym.make(env_id)``); an unknown wrapper is an error."""
        if not meta.get("env_id"):
            raise ValueError("dataset metadata has no 'env_id'")
        fields: dict[str, Any] = {
            "env_id": str(meta["env_id"]),
            "env_kwargs": dict(meta.get("env_kwargs") or {}),
            "max_episode_steps": meta.get("max_episode_steps"),
        }
        for w in meta.get("wrappers") or []:
            name = w.get("name")
            if name == "Incline":
                fields["incline_deg"] = float(w["angle_deg"])
            elif name == "ResetNoise":
                fields["reset_noise"] = float(w["scale"])
            elif name == "IrregularTiming":
                fields["timing"] = str(w["timing"])
            else:
                raise ValueError(
                    f"dataset metadata names wrapper {name!r}, which cannot be rebuilt; "
                    f"known wrappers: {list(WRAPPER_NAMES)}"
                )
        return cls(**fields)

    def task(self) -> Task:
        """Reward and termination of this env (:mod:`envs.tasks`) with its ``env_kwargs``
        (``terminate_when_unhealthy``, healthy ranges, cost weights, ...).

        Raises:
            ValueError: an env without a task (the message lists the supported ids), or an
                ``env_kwargs`` entry that the task cannot follow.
        """
        from envs.tasks import check_env_id, get_task

        check_env_id(self.env_id)
        try:
            return get_task(self.env_id, **self.env_kwargs)
        except TypeError as err:
            raise ValueError(
                f"the env's kwargs {self.env_kwargs} cannot be followed in imagination: {err}"
            ) from None


def env_spec_of(model_or_config: Any) -> EnvSpec:
    """The env a model's data came from: its run's ``config.json`` (``dataset.metadata``,
    copied from the dataset by the trainer), given as the dict or as a loaded model (its
    ``run_config``). A run without that metadata gets the plain ``gym.make(env_id)`` spec."""
    cfg = getattr(model_or_config, "run_config", model_or_config)
    if not isinstance(cfg, Mapping):  # a model built in code, not loaded from a run
        return EnvSpec(str(model_or_config.env_id))
    meta = (cfg.get("dataset") or {}).get("metadata") or {}
    env_id = cfg.get("env_id") or meta.get("env_id")
    if meta.get("env_id") and env_id != meta["env_id"]:
        raise ValueError(
            f"run config env_id {env_id!r} differs from its dataset's {meta['env_id']!r}"
        )
    return EnvSpec.from_metadata({**meta, "env_id": env_id})


def make_env(
    spec: EnvSpec, *, record: bool = False, bare: bool = False, **make_kwargs: Any
) -> gym.Env:
    """``gym.make`` + Incline + ResetNoise + IrregularTiming (+ TrajectoryRecorder).

    ``make_kwargs`` go to ``gym.make`` (e.g. ``render_mode="rgb_array"``). ``bare=True``
    drops Gymnasium's own wrappers (``TimeLimit``, order and env checkers) under the stack,
    for a simulator that is set to recorded states and stepped without episodes.
    """
    spec.check()
    kwargs = dict(spec.env_kwargs)
    if spec.max_episode_steps is not None and not bare:
        kwargs["max_episode_steps"] = spec.max_episode_steps
    try:
        env = gym.make(spec.env_id, **kwargs, **make_kwargs)
    except TypeError as err:  # an env constructor's "unexpected keyword argument"
        if not spec.env_kwargs:
            raise
        raise ValueError(
            f"{spec.env_id} does not take the env_kwargs {sorted(spec.env_kwargs)}: {err}"
        ) from None
    try:
        mujoco_base(env)
    except TypeError:
        env.close()
        raise ValueError(
            f"{spec.env_id} is not a Gymnasium MuJoCo env: the wrappers hold actions for "
            "physics substeps and record MuJoCo states (Hopper-v5, Walker2d-v5, ...)"
        ) from None
    if bare:
        env = env.unwrapped
    if spec.incline_deg:
        env = Incline(env, spec.incline_deg)
    if spec.reset_noise:
        env = ResetNoise(env, spec.reset_noise)
    env = IrregularTiming(env, spec.timing)
    if record:
        env = TrajectoryRecorder(env)
    return env
