"""Reward and termination of Hopper-v5 and Walker2d-v5 as pure, batched functions.

A model-based agent that imagines transitions ``(obs, action) -> next_obs`` needs the env's
reward and termination without the simulator. This module re-implements both from the
observations alone, for numpy arrays and torch tensors alike (the result has the type,
dtype and device of the observations), batched over any leading shape::

    task = get_task("Hopper-v5")                  # or get_task("Hopper-v5", ctrl_cost_weight=0.01)
    reward, info = task.reward(obs, action, next_obs, dt)
    done = task.terminated(obs, action, next_obs, dt)

Shapes and units (``...`` is any batch shape, possibly empty):

* ``obs``, ``next_obs``: ``(..., obs_dim)``, the env's own observation before and after
  the step: ``qpos[1:]`` (the x position is excluded by default) then ``qvel`` clipped to
  ``[-10, 10]``. Hopper-v5: ``obs_dim = 11``; Walker2d-v5: ``obs_dim = 17``.
* ``action``: ``(..., act_dim)``, the action passed to ``env.step`` (Hopper 3, Walker2d 6).
* ``dt``: ``(...,)`` or a scalar, seconds the step lasted (``env.unwrapped.dt``, or
  ``info["dt"]`` under :class:`envs.IrregularTiming`).

What the envs compute (gymnasium 1.4, ``hopper_v5.py`` / ``walker2d_v5.py``), all from the
state AFTER the step::

    reward_forward = forward_reward_weight * (x_after - x_before) / dt
    reward_ctrl    = -ctrl_cost_weight * sum(action ** 2)       # the raw action, not clipped
    reward_survive = is_healthy * healthy_reward                # 0 on an unhealthy step
    reward         = reward_forward + reward_survive + reward_ctrl
    terminated     = terminate_when_unhealthy and not is_healthy

``reward_ctrl``, ``reward_survive`` and ``terminated`` are reproduced exactly. The forward
term is not: the default observation excludes the x position, so ``x_after - x_before`` is
unknown and the x velocity in the observation (``qvel[0]``, Hopper ``obs[5]``, Walker2d
``obs[8]``) stands in for it; ``Task.forward`` chooses how:

* ``"mean_velocity"`` (default): the trapezoid average of ``obs``'s and ``next_obs``'s x
  velocity, an estimate of the mean velocity over the step (measured on 1000-step random
  rollouts: mean |error| 0.5-1.2 % of the mean |forward reward|, regular or irregular dt);
* ``"next_velocity"``: ``next_obs``'s x velocity, the velocity at the end of the step
  (12-13 % error on the same rollouts);
* ``"displacement"``: the env's own ``(x_after - x_before) / dt``, exact, but only with
  ``exclude_current_positions_from_observation=False`` (x is then ``obs[0]``).

The velocities in the observation are clipped to ``[-10, 10]`` m/s, which a hopper or
walker rarely reaches. ``tests/test_tasks.py`` measures the forward-term error of the
velocity options on real rollouts (print it with ``pytest -s tests/test_tasks.py``).
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


def _range(value: Any) -> tuple[float, float]:
    low, high = (float(v) for v in value)
    return (low, high)


@dataclass(frozen=True)
class Task:
    """Reward and termination of one MuJoCo locomotion env; use :class:`HopperTask`,
    :class:`Walker2dTask` or :func:`get_task`.

    The fields are the env's ``gym.make`` keyword arguments of the same name (defaults: the
    env's own), plus ``forward``, the choice of forward-velocity estimate (see the module
    docstring). Ranges are open intervals ``(low, high)``, as the envs test them.

    Attributes:
        forward_reward_weight: weight of the forward velocity [reward per m/s].
        ctrl_cost_weight: weight of ``sum(action ** 2)``.
        healthy_reward: reward per healthy step (after the step), 0 when unhealthy.
        terminate_when_unhealthy: whether an unhealthy next state ends the episode.
        healthy_z_range: torso height ``qpos[1]`` range [m].
        healthy_angle_range: torso angle ``qpos[2]`` range [rad].
        exclude_current_positions_from_observation: the env's observation layout; ``False``
            puts the x position at ``obs[0]`` (needed by ``forward="displacement"``).
        forward: ``"mean_velocity"`` (default), ``"next_velocity"`` or ``"displacement"``.
    """

    env_id: ClassVar[str] = ""
    nq: ClassVar[int] = 0  # qpos size of the model
    nv: ClassVar[int] = 0  # qvel size of the model
    act_dim: ClassVar[int] = 0

    forward_reward_weight: float = 1.0
    ctrl_cost_weight: float = 1e-3
    healthy_reward: float = 1.0
    terminate_when_unhealthy: bool = True
    healthy_z_range: tuple[float, float] = (-math.inf, math.inf)
    healthy_angle_range: tuple[float, float] = (-math.inf, math.inf)
    exclude_current_positions_from_observation: bool = True
    forward: ForwardMode = "mean_velocity"

    def __post_init__(self) -> None:
        if not self.env_id:
            raise TypeError("Task is a base class; use HopperTask, Walker2dTask or get_task()")
        if self.forward not in FORWARD_MODES:
            raise ValueError(
                f"unknown forward mode {self.forward!r}; expected one of {FORWARD_MODES}"
            )
        if self.forward == "displacement" and self.exclude_current_positions_from_observation:
            raise ValueError(
                'forward="displacement" needs the x position in the observation: '
                "use exclude_current_positions_from_observation=False (in gym.make too)"
            )
        for name in ("healthy_z_range", "healthy_angle_range", "healthy_state_range"):
            if hasattr(self, name):
                object.__setattr__(self, name, _range(getattr(self, name)))

    # ------------------------------------------------------------------ layout
    @property
    def _skip(self) -> int:
        return 1 if self.exclude_current_positions_from_observation else 0

    @property
    def obs_dim(self) -> int:
        """Observation size: ``nq + nv`` less the excluded x position."""
        return self.nq + self.nv - self._skip

    def qpos_index(self, k: int) -> int:
        """Observation index of ``qpos[k]`` (``k >= 1``, or ``k = 0`` when x is included)."""
        if k < self._skip:
            raise ValueError(f"qpos[{k}] is excluded from this observation")
        return k - self._skip

    @property
    def x_velocity_index(self) -> int:
        """Observation index of ``qvel[0]``, the x velocity [m/s] (Hopper 5, Walker2d 8)."""
        return self.nq - self._skip

    def _check(self, name: str, x: Array, size: int) -> None:
        if x.ndim < 1 or x.shape[-1] != size:
            raise ValueError(
                f"{self.env_id}: {name} must have shape (..., {size}), got {tuple(x.shape)}"
            )

    # ------------------------------------------------------------------ terms
    def is_healthy(self, obs: ArrayT) -> ArrayT:
        """Whether each state is healthy, exactly as the env decides from its state.

        Args:
            obs: ``(..., obs_dim)`` observations (numpy or torch).

        Returns:
            ``(...,)`` bool, the type of ``obs``.
        """
        obs = _as_like(obs, obs)
        self._check("obs", obs, self.obs_dim)
        z = obs[..., self.qpos_index(1)]
        angle = obs[..., self.qpos_index(2)]
        return _out(
            _inside(z, self.healthy_z_range) & _inside(angle, self.healthy_angle_range), obs
        )

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

    def reward(
        self, obs: ArrayT, action: Any, next_obs: Any, dt: Any
    ) -> tuple[ArrayT, dict[str, ArrayT]]:
        """The env's reward of the step ``obs --action--> next_obs`` lasting ``dt`` seconds.

        Args:
            obs: ``(..., obs_dim)`` observation before the step; sets the output type.
            action: ``(..., act_dim)`` action.
            next_obs: ``(..., obs_dim)`` observation after the step.
            dt: ``(...,)`` or scalar step duration [s].

        Returns:
            ``(reward, info)``: ``reward`` ``(...,)`` and ``info`` with the env's own keys
            ``reward_forward``, ``reward_ctrl`` (``<= 0``) and ``reward_survive``, each
            ``(...,)``; ``reward`` is their sum, added in the env's order.
        """
        obs = _as_like(obs, obs)
        action = _as_like(action, obs)
        next_obs = _as_like(next_obs, obs)
        forward = self.forward_reward_weight * self.forward_velocity(obs, next_obs, dt)
        survive = self.healthy_reward * _cast(self.is_healthy(next_obs), forward)
        ctrl = self.ctrl_cost(action)
        reward = (forward + survive) - ctrl  # the env's order of operations
        info = {"reward_forward": forward, "reward_ctrl": -ctrl, "reward_survive": survive}
        return _out(reward, obs), info

    def terminated(self, obs: ArrayT, action: Any, next_obs: Any, dt: Any) -> ArrayT:
        """Whether the step ends the episode: ``next_obs`` unhealthy and
        ``terminate_when_unhealthy``. ``(...,)`` bool, the type of ``obs``; ``obs``,
        ``action`` and ``dt`` are unused (same signature as :meth:`reward`)."""
        obs = _as_like(obs, obs)
        healthy = self.is_healthy(_as_like(next_obs, obs))
        return _out(~healthy if self.terminate_when_unhealthy else healthy & False, obs)


@dataclass(frozen=True)
class HopperTask(Task):
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
class Walker2dTask(Task):
    """Walker2d-v5: ``qpos = (x, z, torso angle, 3 right-leg joints, 3 left-leg joints)``.

    Healthy when ``z`` is in ``healthy_z_range`` (bounded above too: default
    ``(0.8, 2.0)``) and the torso angle in ``healthy_angle_range``; no state-range check.
    """

    env_id: ClassVar[str] = "Walker2d-v5"
    nq: ClassVar[int] = 9
    nv: ClassVar[int] = 9
    act_dim: ClassVar[int] = 6

    healthy_z_range: tuple[float, float] = (0.8, 2.0)
    healthy_angle_range: tuple[float, float] = (-1.0, 1.0)


#: The default task of each supported env id.
TASKS: dict[str, Task] = {t.env_id: t for t in (HopperTask(), Walker2dTask())}


def get_task(env_id: str, **overrides: Any) -> Task:
    """The task of ``env_id`` with the env's defaults, or with ``gym.make``-style overrides.

    Args:
        env_id: ``"Hopper-v5"`` or ``"Walker2d-v5"``.
        **overrides: any :class:`Task` field (the env's reward and health keyword arguments,
            and ``forward``); the keyword arguments in :data:`IGNORED_ENV_KWARGS` are
            accepted and ignored, so ``get_task(env_id, **env_kwargs)`` mirrors
            ``gym.make(env_id, **env_kwargs)``.

    Raises:
        ValueError: unknown ``env_id`` (the message lists the valid ids).
        TypeError: an override that the task does not know.
    """
    if env_id not in TASKS:
        raise ValueError(f"no task for env {env_id!r}; valid env ids: {sorted(TASKS)}")
    task = TASKS[env_id]
    fields = {f.name for f in dataclasses.fields(task)}
    unknown = sorted(set(overrides) - fields - IGNORED_ENV_KWARGS)
    if unknown:
        raise TypeError(
            f"{env_id} task: unknown keyword argument(s) {unknown}; valid: {sorted(fields)}"
        )
    return dataclasses.replace(task, **{k: v for k, v in overrides.items() if k in fields})
