"""Reward and termination of Gymnasium's MuJoCo v5 locomotion envs as pure, batched functions.

Supported: Hopper-v5, Walker2d-v5, HalfCheetah-v5, Swimmer-v5 and Ant-v5 (:data:`TASKS`);
:func:`get_task` refuses any other id, listing these.

A model-based agent that imagines transitions ``(obs, action) -> next_obs`` needs the env's
reward and termination without the simulator. This module re-implements both from the
observations alone, for numpy arrays and torch tensors alike (the result has the type,
dtype and device of the observations), batched over any leading shape::

    task = get_task("Hopper-v5")                  # or get_task("Hopper-v5", ctrl_cost_weight=0.01)
    reward, info = task.reward(obs, action, next_obs, dt)
    done = task.terminated(obs, action, next_obs, dt)

Shapes and units (``...`` is any batch shape, possibly empty):

* ``obs``, ``next_obs``: ``(..., obs_dim)``, the env's own observation before and after
  the step: ``qpos`` without its first ``n_skipped`` entries (the x position, and for
  Swimmer and Ant also y; excluded by default) then ``qvel`` (Hopper and Walker2d clip it to
  ``[-10, 10]``), and for Ant the clipped contact forces ``cfrc_ext[1:]`` (78 values).
  ``obs_dim``: Hopper 11, Walker2d 17, HalfCheetah 17, Swimmer 8, Ant 105.
* ``action``: ``(..., act_dim)``, the action passed to ``env.step`` (Hopper 3, Walker2d 6,
  HalfCheetah 6, Swimmer 2, Ant 8).
* ``dt``: ``(...,)`` or a scalar, seconds the step lasted (``env.unwrapped.dt``, or
  ``info["dt"]`` under :class:`envs.IrregularTiming`).

What the envs compute (gymnasium 1.4, ``*_v5.py``), all from the state AFTER the step::

    reward_forward = forward_reward_weight * (x_after - x_before) / dt
    reward_ctrl    = -ctrl_cost_weight * sum(action ** 2)       # the raw action, not clipped
    reward_survive = is_healthy * healthy_reward                # Hopper, Walker2d, Ant
    reward_contact = -contact_cost_weight * sum(clip(cfrc_ext) ** 2)          # Ant only
    reward         = (reward_forward + reward_survive) - (-reward_ctrl - reward_contact)
    terminated     = terminate_when_unhealthy and not is_healthy # HalfCheetah, Swimmer: never

``reward_ctrl``, ``reward_survive``, ``reward_contact`` (Ant with its default
``include_cfrc_ext_in_observation=True``) and ``terminated`` are reproduced exactly. What
cannot be computed from the observation is listed, per task, in ``Task.inexact_terms`` and in
every ``reward`` info as ``info["inexact_terms"]``:

* the forward term, always, unless ``forward="displacement"`` (and, for Ant, even then): the
  default observation excludes the x position, so ``x_after - x_before`` is unknown and the x
  velocity in the observation (``qvel[0]``, at :attr:`Task.x_velocity_index`) stands in for
  it; ``Task.forward`` chooses how:

  * ``"mean_velocity"`` (default): the trapezoid average of ``obs``'s and ``next_obs``'s x
    velocity, an estimate of the mean velocity over the step (measured on 1000-step random
    rollouts, regular or irregular dt, seeds 0-3: mean |error| / mean |forward reward| is
    0.5-1.2 % for Hopper and Walker2d, 1.5-2.3 % for Swimmer, 7-11 % for Ant and 24-31 % for
    HalfCheetah, whose x velocity swings within its 0.05 s steps under random actions);
  * ``"next_velocity"``: ``next_obs``'s x velocity, the velocity at the end of the step
    (12-13 % error on Hopper and Walker2d, 21-32 % on Ant and Swimmer, 30-42 % on
    HalfCheetah);
  * ``"displacement"``: ``(x_after - x_before) / dt`` from the x position at ``obs[0]``,
    only with ``exclude_current_positions_from_observation=False``. Exact for every env but
    Ant: Ant measures its torso's ``xpos``, which MuJoCo leaves one physics substep behind
    ``qpos`` after ``mj_step``, so its displacement is the qpos one shifted by a substep.

  The velocities in Hopper's and Walker2d's observations are clipped to ``[-10, 10]`` m/s,
  which a hopper or walker rarely reaches; HalfCheetah, Swimmer and Ant do not clip.
* Ant's contact cost when ``include_cfrc_ext_in_observation=False``: the contact forces are
  then not in the observation; ``reward_contact`` is 0 and the reward is too high by the cost.

``tests/test_tasks.py`` measures the forward-term error of the velocity options on real
rollouts (print it with ``pytest -s tests/test_tasks.py``).
"""

from __future__ import annotations

import dataclasses
import math
import sys
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, ClassVar, Literal, TypeVar

import numpy as np

if TYPE_CHECKING:  # torch is imported lazily: `import envs` stays light
    import torch

    Array = np.ndarray | torch.Tensor
ArrayT = TypeVar("ArrayT", np.ndarray, "torch.Tensor")
ForwardMode = Literal["next_velocity", "mean_velocity", "displacement"]
FORWARD_MODES: tuple[str, ...] = ("next_velocity", "mean_velocity", "displacement")

#: ``gym.make`` keyword arguments of these envs that change neither reward nor termination
#: (given ``dt``); :func:`get_task` accepts and ignores them, so that an env's full kwargs
#: can be passed through.
IGNORED_ENV_KWARGS: frozenset[str] = frozenset(
    {
        "frame_skip",
        "reset_noise_scale",
        "default_camera_config",
        "render_mode",
        "width",
        "height",
        "camera_id",
        "camera_name",
        "max_geom",
        "visual_options",
    }
)


def _is_tensor(x: Any) -> bool:
    """Whether ``x`` is a torch tensor (without importing torch: no torch, no tensors)."""
    torch = sys.modules.get("torch")
    return torch is not None and isinstance(x, torch.Tensor)


def _as_like(x: Any, like: Array) -> Array:
    """``x`` as the array type of ``like`` (a torch tensor goes on ``like``'s device)."""
    if _is_tensor(like):
        import torch

        if isinstance(x, torch.Tensor):
            return x.to(device=like.device)
        return torch.as_tensor(np.asarray(x), device=like.device)
    if _is_tensor(x):
        return x.detach().cpu().numpy()
    return np.asarray(x)


def _cast(x: Array, like: Array) -> Array:
    """``x`` converted to the dtype of ``like`` (same array type)."""
    if _is_tensor(x):
        return x.to(like.dtype)
    return np.asarray(x).astype(like.dtype)


def _inside(x: Array, bounds: tuple[float, float]) -> Array:
    """``low < x < high`` elementwise, strict on both ends as in the envs (NaN: False)."""
    low, high = bounds
    return (low < x) & (x < high)


def _out(x: Any, like: Array) -> Array:
    """Numpy results as ``np.ndarray`` (not numpy scalars), torch results unchanged."""
    return x if _is_tensor(like) else np.asarray(x)


def _full(like: Array, value: bool | float) -> Array:
    """``like.shape[:-1]`` filled with ``value`` (bool, or ``like``'s dtype), ``like``'s type."""
    shape = tuple(like.shape[:-1])
    if _is_tensor(like):
        import torch

        dtype = torch.bool if isinstance(value, bool) else like.dtype
        return torch.full(shape, value, dtype=dtype, device=like.device)
    return np.full(shape, value, dtype=bool if isinstance(value, bool) else like.dtype)


def _range(value: Any) -> tuple[float, float]:
    low, high = (float(v) for v in value)
    return (low, high)


@dataclass(frozen=True)
class Task:
    """Reward and termination of one MuJoCo locomotion env; use one of the subclasses
    (:class:`HopperTask`, :class:`Walker2dTask`, :class:`HalfCheetahTask`,
    :class:`SwimmerTask`, :class:`AntTask`) or :func:`get_task`.

    The fields are the env's ``gym.make`` keyword arguments of the same name (defaults: the
    env's own), plus ``forward``, the choice of forward-velocity estimate (see the module
    docstring). Ranges are intervals ``(low, high)``, open or closed as the env tests them.

    Attributes:
        forward_reward_weight: weight of the forward velocity [reward per m/s].
        ctrl_cost_weight: weight of ``sum(action ** 2)``.
        exclude_current_positions_from_observation: the env's observation layout; ``False``
            puts the x position at ``obs[0]`` (needed by ``forward="displacement"``).
        forward: ``"mean_velocity"`` (default), ``"next_velocity"`` or ``"displacement"``.

    Class attributes: ``env_id``, ``nq``, ``nv``, ``act_dim``, ``n_skipped`` (the qpos
    entries the default observation excludes) and ``terms`` (the env's reward info keys).
    """

    env_id: ClassVar[str] = ""
    nq: ClassVar[int] = 0  # qpos size of the model
    nv: ClassVar[int] = 0  # qvel size of the model
    act_dim: ClassVar[int] = 0
    n_skipped: ClassVar[int] = 1  # x (Swimmer, Ant: x and y)
    terms: ClassVar[tuple[str, ...]] = ("reward_forward", "reward_ctrl")
    exact_displacement: ClassVar[bool] = True  # is (x_after - x_before) / dt the env's own?
    obs_velocity_clip: ClassVar[float | None] = None  # the observation clips qvel to +-this

    forward_reward_weight: float = 1.0
    ctrl_cost_weight: float = 1e-3
    exclude_current_positions_from_observation: bool = True
    forward: ForwardMode = "mean_velocity"

    def __post_init__(self) -> None:
        if not self.env_id:
            raise TypeError(f"Task is a base class; use get_task() with one of {sorted(TASKS)}")
        if self.forward not in FORWARD_MODES:
            raise ValueError(
                f"unknown forward mode {self.forward!r}; expected one of {FORWARD_MODES}"
            )
        if self.forward == "displacement" and self.exclude_current_positions_from_observation:
            raise ValueError(
                'forward="displacement" needs the x position in the observation: '
                "use exclude_current_positions_from_observation=False (in gym.make too)"
            )
        for name in (
            "healthy_z_range",
            "healthy_angle_range",
            "healthy_state_range",
            "contact_force_range",
        ):
            if hasattr(self, name):
                object.__setattr__(self, name, _range(getattr(self, name)))

    # ------------------------------------------------------------------ layout
    @property
    def _skip(self) -> int:
        return self.n_skipped if self.exclude_current_positions_from_observation else 0

    @property
    def excluded_positions(self) -> int:
        """How many leading ``qpos`` entries the observation leaves out (0 when included)."""
        return self._skip

    @property
    def obs_dim(self) -> int:
        """Observation size: ``nq + nv`` less the excluded positions (plus Ant's forces)."""
        return self.nq + self.nv - self._skip

    def qpos_index(self, k: int) -> int:
        """Observation index of ``qpos[k]`` (``k >= n_skipped``, or any ``k`` when the
        positions are included)."""
        if k < self._skip:
            raise ValueError(f"qpos[{k}] is excluded from this observation")
        return k - self._skip

    def obs_from_state(self, qpos: np.ndarray, qvel: np.ndarray) -> np.ndarray:
        """The env's observation of physics states ``qpos (..., nq)``, ``qvel (..., nv)``:
        ``qpos`` less the excluded positions, then ``qvel`` (clipped as the env clips it).
        Not for an env whose observation holds more (Ant's contact forces)."""
        if self.obs_dim != self.nq + self.nv - self._skip:
            raise ValueError(f"{self.env_id}'s observation is not qpos and qvel alone")
        if self.obs_velocity_clip is not None:
            qvel = np.clip(qvel, -self.obs_velocity_clip, self.obs_velocity_clip)
        return np.concatenate([qpos[..., self._skip :], qvel], -1)

    @property
    def x_velocity_index(self) -> int:
        """Observation index of ``qvel[0]``, the x velocity [m/s] (Hopper 5, Walker2d 8,
        HalfCheetah 8, Swimmer 3, Ant 13)."""
        return self.nq - self._skip

    @property
    def inexact_terms(self) -> tuple[str, ...]:
        """Reward terms this task cannot compute exactly from observations (estimated, or
        left out): see the module docstring."""
        exact = self.forward == "displacement" and self.exact_displacement
        return () if exact else ("reward_forward",)

    def _check(self, name: str, x: Array, size: int) -> None:
        if x.ndim < 1 or x.shape[-1] != size:
            raise ValueError(
                f"{self.env_id}: {name} must have shape (..., {size}), got {tuple(x.shape)}"
            )

    def _observations(self, obs: Any) -> Array:
        """``obs`` as an array of its own type, checked to be ``(..., obs_dim)``."""
        obs = _as_like(obs, obs)
        self._check("obs", obs, self.obs_dim)
        return obs

    # ------------------------------------------------------------------ terms
    def is_healthy(self, obs: ArrayT) -> ArrayT:
        """Whether each state is healthy, exactly as the env decides from its state (always,
        for envs without a health test).

        Args:
            obs: ``(..., obs_dim)`` observations (numpy or torch).

        Returns:
            ``(...,)`` bool, the type of ``obs``.
        """
        return _full(self._observations(obs), True)

    def forward_velocity(self, obs: ArrayT, next_obs: Any, dt: Any) -> ArrayT:
        """The x velocity over the step [m/s] as ``self.forward`` estimates it.

        Args:
            obs, next_obs: ``(..., obs_dim)`` observations before and after the step.
            dt: ``(...,)`` or scalar step duration [s]; only ``"displacement"`` uses it.

        Returns:
            ``(...,)``, the type and dtype of ``obs``.
        """
        obs = _as_like(obs, obs)
        next_obs = _as_like(next_obs, obs)
        self._check("obs", obs, self.obs_dim)
        self._check("next_obs", next_obs, self.obs_dim)
        i = self.x_velocity_index
        if self.forward == "next_velocity":
            v = next_obs[..., i]
        elif self.forward == "mean_velocity":
            v = 0.5 * (obs[..., i] + next_obs[..., i])
        else:  # displacement: the env's own (x_after - x_before) / dt
            v = (next_obs[..., 0] - obs[..., 0]) / _as_like(dt, obs)
        return _out(v, obs)

    def ctrl_cost(self, action: ArrayT) -> ArrayT:
        """``ctrl_cost_weight * sum(action ** 2)`` over the last axis, ``(..., act_dim)`` ->
        ``(...,)``; the raw action (MuJoCo clips the control, the cost does not)."""
        action = _as_like(action, action)
        self._check("action", action, self.act_dim)
        return _out(self.ctrl_cost_weight * (action * action).sum(-1), action)

    def _survive(self, next_obs: Array, like: Array) -> Array | None:
        """``reward_survive`` of the envs that pay one (None for the others)."""
        return None

    def _contact_cost(self, next_obs: Array) -> Array | None:
        """The contact cost (``>= 0``) of the envs that charge one (None for the others)."""
        return None

    def reward(
        self, obs: ArrayT, action: Any, next_obs: Any, dt: Any
    ) -> tuple[ArrayT, dict[str, Any]]:
        """The env's reward of the step ``obs --action--> next_obs`` lasting ``dt`` seconds.

        Args:
            obs: ``(..., obs_dim)`` observation before the step; sets the output type.
            action: ``(..., act_dim)`` action.
            next_obs: ``(..., obs_dim)`` observation after the step.
            dt: ``(...,)`` or scalar step duration [s].

        Returns:
            ``(reward, info)``: ``reward`` ``(...,)`` and ``info`` with the env's own keys
            (``self.terms``: ``reward_forward``, ``reward_ctrl`` (``<= 0``), and where the env
            has them ``reward_survive`` and ``reward_contact`` (``<= 0``)), each ``(...,)``;
            ``reward`` is their sum, added in the env's order. ``info["inexact_terms"]`` (a
            tuple of those names, not an array) lists the terms that are estimates.
        """
        obs = _as_like(obs, obs)
        action = _as_like(action, obs)
        next_obs = _as_like(next_obs, obs)
        forward = self.forward_reward_weight * self.forward_velocity(obs, next_obs, dt)
        ctrl = self.ctrl_cost(action)
        info: dict[str, Any] = {"reward_forward": forward, "reward_ctrl": -ctrl}
        gains, costs = forward, ctrl
        survive = self._survive(next_obs, forward)
        if survive is not None:
            gains = gains + survive
            info["reward_survive"] = survive
        contact = self._contact_cost(next_obs)
        if contact is not None:
            costs = costs + contact
            info["reward_contact"] = -contact
        info["inexact_terms"] = self.inexact_terms
        return _out(gains - costs, obs), info  # the envs' order of operations

    def terminated(self, obs: ArrayT, action: Any, next_obs: Any, dt: Any) -> ArrayT:
        """Whether the step ends the episode: ``next_obs`` unhealthy and
        ``terminate_when_unhealthy`` (never for envs without it). ``(...,)`` bool, the type of
        ``obs``; ``obs``, ``action`` and ``dt`` are unused (same signature as :meth:`reward`)."""
        obs = _as_like(obs, obs)
        healthy = self.is_healthy(_as_like(next_obs, obs))
        terminate = getattr(self, "terminate_when_unhealthy", False)
        return _out(~healthy if terminate else healthy & False, obs)


@dataclass(frozen=True)
class _UprightTask(Task):
    """Hopper and Walker2d: a survive reward while the torso is high and upright enough.

    Attributes (besides :class:`Task`'s):
        healthy_reward: reward per healthy step (after the step), 0 when unhealthy.
        terminate_when_unhealthy: whether an unhealthy next state ends the episode.
        healthy_z_range: torso height ``qpos[1]`` open range [m].
        healthy_angle_range: torso angle ``qpos[2]`` open range [rad].
    """

    terms: ClassVar[tuple[str, ...]] = ("reward_forward", "reward_ctrl", "reward_survive")

    healthy_reward: float = 1.0
    terminate_when_unhealthy: bool = True
    healthy_z_range: tuple[float, float] = (-math.inf, math.inf)
    healthy_angle_range: tuple[float, float] = (-math.inf, math.inf)

    def is_healthy(self, obs: ArrayT) -> ArrayT:
        """Healthy while the torso height and angle are inside their open ranges (see
        :meth:`Task.is_healthy` for shapes and types)."""
        obs = self._observations(obs)
        z = obs[..., self.qpos_index(1)]
        angle = obs[..., self.qpos_index(2)]
        return _out(
            _inside(z, self.healthy_z_range) & _inside(angle, self.healthy_angle_range), obs
        )

    def _survive(self, next_obs: Array, like: Array) -> Array:
        return self.healthy_reward * _cast(self.is_healthy(next_obs), like)


@dataclass(frozen=True)
class HopperTask(_UprightTask):
    """Hopper-v5: ``qpos = (x, z, torso angle, thigh, leg, foot)``, ``qvel`` likewise.

    Healthy when ``z`` is in ``healthy_z_range``, the torso angle in ``healthy_angle_range``
    and every entry of ``state_vector()[2:]`` (``qpos[2:]`` and ``qvel``, i.e. ``obs[1:]``)
    in ``healthy_state_range``. The env tests the unclipped ``qvel``; the observation clips
    it to ``[-10, 10]``, which is inside the default ``(-100, 100)``: only a speed over
    100 (never seen from sane states) would make the two disagree.
    """

    env_id: ClassVar[str] = "Hopper-v5"
    nq: ClassVar[int] = 6
    nv: ClassVar[int] = 6
    act_dim: ClassVar[int] = 3
    obs_velocity_clip: ClassVar[float | None] = 10.0

    healthy_z_range: tuple[float, float] = (0.7, math.inf)
    healthy_angle_range: tuple[float, float] = (-0.2, 0.2)
    healthy_state_range: tuple[float, float] = (-100.0, 100.0)

    def is_healthy(self, obs: ArrayT) -> ArrayT:
        """Whether each state is healthy (z, angle and state ranges), ``(..., 11)`` ->
        ``(...,)`` bool of the type of ``obs``."""
        obs = _as_like(obs, obs)
        base = super().is_healthy(obs)
        state = obs[..., self.qpos_index(2) :]  # state_vector()[2:]: qpos[2:], qvel
        return _out(base & _inside(state, self.healthy_state_range).all(-1), obs)


@dataclass(frozen=True)
class Walker2dTask(_UprightTask):
    """Walker2d-v5: ``qpos = (x, z, torso angle, 3 right-leg joints, 3 left-leg joints)``.

    Healthy when ``z`` is in ``healthy_z_range`` (bounded above too: default
    ``(0.8, 2.0)``) and the torso angle in ``healthy_angle_range``; no state-range check.
    """

    env_id: ClassVar[str] = "Walker2d-v5"
    nq: ClassVar[int] = 9
    nv: ClassVar[int] = 9
    act_dim: ClassVar[int] = 6
    obs_velocity_clip: ClassVar[float | None] = 10.0

    healthy_z_range: tuple[float, float] = (0.8, 2.0)
    healthy_angle_range: tuple[float, float] = (-1.0, 1.0)


@dataclass(frozen=True)
class HalfCheetahTask(Task):
    """HalfCheetah-v5: ``qpos = (rootx, rootz, rooty, 6 leg joints)``, ``qvel`` likewise.

    ``reward = forward - ctrl`` (``ctrl_cost_weight`` 0.1); no survive reward, and it never
    terminates. The forward term is estimated from ``qvel[0]`` (``obs[8]``, not clipped)
    unless ``forward="displacement"`` with the x position in the observation.
    """

    env_id: ClassVar[str] = "HalfCheetah-v5"
    nq: ClassVar[int] = 9
    nv: ClassVar[int] = 9
    act_dim: ClassVar[int] = 6

    ctrl_cost_weight: float = 0.1


@dataclass(frozen=True)
class SwimmerTask(Task):
    """Swimmer-v5: ``qpos = (x, y, body angle, 2 joints)``; x and y are slide joints.

    ``reward = forward - ctrl`` (``ctrl_cost_weight`` 1e-4); never terminates. The default
    observation excludes x and y (``obs = qpos[2:] ++ qvel``, 8 values); the forward term is
    estimated from ``qvel[0]`` (``obs[3]``) unless ``forward="displacement"`` with the
    positions in the observation (x is then ``obs[0]``).
    """

    env_id: ClassVar[str] = "Swimmer-v5"
    nq: ClassVar[int] = 5
    nv: ClassVar[int] = 5
    act_dim: ClassVar[int] = 2
    n_skipped: ClassVar[int] = 2

    ctrl_cost_weight: float = 1e-4


@dataclass(frozen=True)
class AntTask(Task):
    """Ant-v5: ``qpos = (torso x, y, z, torso quaternion (4), 8 leg joints)``, ``qvel = (torso
    linear velocity in the world frame (3), angular velocity (3), 8 joints)``.

    ``reward = (forward + survive) - (ctrl + contact)``. Healthy when every ``qpos`` and
    ``qvel`` entry is finite and the torso height ``qpos[2]`` (``obs[0]``) is in the CLOSED
    range ``healthy_z_range`` (the env tests ``min_z <= z <= max_z``); x and y are not in the
    default observation, so their finiteness is assumed. The contact cost is exact from
    ``next_obs``'s clipped contact forces (``obs[27:]``; the world body's ``cfrc_ext[0]``,
    which the env also sums, is always zero) when ``include_cfrc_ext_in_observation`` (the
    default); without them it is left out (``reward_contact`` = 0, listed in
    ``inexact_terms``). The forward term is estimated from ``qvel[0]`` (``obs[13]``); the env
    measures the torso's ``xpos``, which lags ``qpos`` by one physics substep, so even
    ``forward="displacement"`` is not exact. Only ``main_body=1`` (the torso) is supported.

    Attributes (besides :class:`Task`'s):
        contact_cost_weight: weight of the summed squared clipped contact forces.
        healthy_reward: reward per healthy step (after the step), 0 when unhealthy.
        terminate_when_unhealthy: whether an unhealthy next state ends the episode.
        healthy_z_range: torso height closed range [m].
        contact_force_range: clipping range of the contact forces.
        main_body: the body whose x displacement is rewarded (1 or ``"torso"`` only).
        include_cfrc_ext_in_observation: whether the contact forces are in the observation.
    """

    env_id: ClassVar[str] = "Ant-v5"
    nq: ClassVar[int] = 15
    nv: ClassVar[int] = 14
    act_dim: ClassVar[int] = 8
    n_skipped: ClassVar[int] = 2
    n_forces: ClassVar[int] = 78  # cfrc_ext[1:]: 13 bodies x 6
    terms: ClassVar[tuple[str, ...]] = (
        "reward_forward",
        "reward_ctrl",
        "reward_contact",
        "reward_survive",
    )
    exact_displacement: ClassVar[bool] = False

    ctrl_cost_weight: float = 0.5
    contact_cost_weight: float = 5e-4
    healthy_reward: float = 1.0
    main_body: int | str = 1
    terminate_when_unhealthy: bool = True
    healthy_z_range: tuple[float, float] = (0.2, 1.0)
    contact_force_range: tuple[float, float] = (-1.0, 1.0)
    include_cfrc_ext_in_observation: bool = True

    def __post_init__(self) -> None:
        super().__post_init__()
        if self.main_body not in (1, "torso"):
            raise ValueError(
                f"Ant-v5 task: main_body={self.main_body!r} is not supported (its x velocity "
                "is not in the observation); only 1 / 'torso'"
            )

    @property
    def obs_dim(self) -> int:
        forces = self.n_forces if self.include_cfrc_ext_in_observation else 0
        return self.nq + self.nv - self._skip + forces

    @property
    def inexact_terms(self) -> tuple[str, ...]:
        contact = () if self.include_cfrc_ext_in_observation else ("reward_contact",)
        return super().inexact_terms + contact

    def is_healthy(self, obs: ArrayT) -> ArrayT:
        """Whether each state is healthy (finite state, z in the closed range), ``(..., obs_dim)``
        -> ``(...,)`` bool of the type of ``obs``."""
        obs = self._observations(obs)
        state = obs[..., : self.nq + self.nv - self._skip]
        finite = np.isfinite(state).all(-1) if not _is_tensor(state) else state.isfinite().all(-1)
        z = obs[..., self.qpos_index(2)]
        low, high = self.healthy_z_range
        return _out(finite & (low <= z) & (z <= high), obs)

    def _survive(self, next_obs: Array, like: Array) -> Array:
        return self.healthy_reward * _cast(self.is_healthy(next_obs), like)

    def _contact_cost(self, next_obs: Array) -> Array:
        if not self.include_cfrc_ext_in_observation:
            return _full(next_obs, 0.0)
        forces = next_obs[..., self.obs_dim - self.n_forces :]  # already clipped by the env
        return self.contact_cost_weight * (forces * forces).sum(-1)


#: The default task of each supported env id.
TASKS: dict[str, Task] = {
    t.env_id: t for t in (HopperTask(), Walker2dTask(), HalfCheetahTask(), SwimmerTask(), AntTask())
}


def check_env_id(env_id: str) -> None:
    """Raise ``ValueError`` (listing the supported ids) unless ``env_id`` has a task here."""
    if env_id not in TASKS:
        raise ValueError(
            f"no reward/termination task for env {env_id!r}: imagination, planning and "
            f"evaluation support only {sorted(TASKS)} (valid env ids)"
        )


def get_task(env_id: str, **overrides: Any) -> Task:
    """The task of ``env_id`` with the env's defaults, or with ``gym.make``-style overrides.

    Args:
        env_id: one of :data:`TASKS` (Hopper-v5, Walker2d-v5, HalfCheetah-v5, Swimmer-v5,
            Ant-v5).
        **overrides: any field of the env's task (its reward and health keyword arguments,
            and ``forward``); the keyword arguments in :data:`IGNORED_ENV_KWARGS` are
            accepted and ignored, so ``get_task(env_id, **env_kwargs)`` mirrors
            ``gym.make(env_id, **env_kwargs)``.

    Raises:
        ValueError: unknown ``env_id`` (the message lists the valid ids).
        TypeError: an override that the task does not know.
    """
    check_env_id(env_id)
    task = TASKS[env_id]
    fields = {f.name for f in dataclasses.fields(task)}
    unknown = sorted(set(overrides) - fields - IGNORED_ENV_KWARGS)
    if unknown:
        raise TypeError(
            f"{env_id} task: unknown keyword argument(s) {unknown}; valid: {sorted(fields)}"
        )
    return dataclasses.replace(task, **{k: v for k, v in overrides.items() if k in fields})
