"""Build the collection env stack from one plain description (also stored in dataset metadata)."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any

import gymnasium as gym

from envs.timing import TimingSpec
from envs.wrappers import Incline, IrregularTiming, ResetNoise, TrajectoryRecorder


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
                k for k, s in gym.registry.items()
                if "mujoco" in str(s.entry_point) and k.endswith("-v5")
            )  # fmt: skip
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


def make_env(spec: EnvSpec, *, record: bool = False, **make_kwargs: Any) -> gym.Env:
    """``gym.make`` + Incline + ResetNoise + IrregularTiming (+ TrajectoryRecorder).

    ``make_kwargs`` go to ``gym.make`` (e.g. ``render_mode="rgb_array"``).
    """
    spec.check()
    kwargs = dict(spec.env_kwargs)
    if spec.max_episode_steps is not None:
        kwargs["max_episode_steps"] = spec.max_episode_steps
    env = gym.make(spec.env_id, **kwargs, **make_kwargs)
    if spec.incline_deg:
        env = Incline(env, spec.incline_deg)
    if spec.reset_noise:
        env = ResetNoise(env, spec.reset_noise)
    env = IrregularTiming(env, spec.timing)
    if record:
        env = TrajectoryRecorder(env)
    return env
