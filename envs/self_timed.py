"""An agent that chooses its own control interval: one more action component says how long to
hold the rest (issue #16, item 5).

:class:`SelfTimed` wraps any env with a ``step_dt(action, dt)`` (the real env's
:class:`envs.IrregularTiming`, a :class:`envs.TrajectoryRecorder` over it, or an
:class:`envs.ImaginedEnv`). Its action is the wrapped env's action with one more component
``u`` in ``[-1, 1]``, mapped linearly to a whole number of physics substeps in
``[low, high]``. So that returns compare with the fixed-step env's, an episode is a span of
simulated time, not a number of decisions:

- each step's reward is the wrapped env's reward over the interval times ``dt / dt0``
  (``dt0``: the env's own control step), i.e. the reward *rate* integrated over time: a policy
  that always holds ``dt0`` gets the fixed-step env's return exactly, and holding twice as long
  earns twice the healthy reward of one fixed step; minus ``decision_cost`` per decision;
- the episode is truncated once ``horizon_s`` seconds have passed (the fixed-step env's
  ``max_episode_steps x dt0``: 8 s on Hopper-v5), the last interval cut to end there.

``info`` gains ``decisions`` (this episode's so far), ``elapsed`` (seconds since reset) and the
wrapped env's ``dt``/``substeps``. An agent's discount is per decision unless its replay buffer
discounts each transition over its own interval (:class:`agents.replay.TimedReplayBuffer`,
``DynaConfig.timed_discount``): per decision, a longer hold is discounted as one step, which
favours long holds.
"""

from __future__ import annotations

import math
from typing import Any

import gymnasium as gym
import numpy as np

from envs.factory import EnvSpec, make_env
from envs.timing import TimingSpec
from envs.wrappers import control_clock


def hold_substeps(u: np.ndarray, low: int, high: int) -> np.ndarray:
    """Physics substeps (int, ``u``'s shape) for timing components ``u`` in ``[-1, 1]``
    (clipped), linearly from ``low`` at -1 to ``high`` at 1, rounded; refuses a non-finite one."""
    u = np.asarray(u, dtype=np.float64)
    if not np.isfinite(u).all():
        raise ValueError(f"the timing component of the action is not finite: {u!r}")
    frac = (np.clip(u, -1.0, 1.0) + 1.0) / 2.0  # rounded: the two ends get half-width bins
    return np.rint(low + frac * (high - low)).astype(np.int64)


def timed_reward(
    reward: np.ndarray | float, dt: np.ndarray | float, dt0: float, decision_cost: float = 0.0
) -> np.ndarray:
    """The self-timed reward of a step of ``dt`` seconds whose env reward is ``reward``: the
    reward rate integrated over the interval, ``reward * dt / dt0`` (``dt0``: the env's own
    step), minus ``decision_cost``. The one formula the real env (:class:`SelfTimed`) and
    imagination (``agents.dyna``) share."""
    return np.asarray(reward, dtype=np.float64) * np.asarray(dt) / dt0 - decision_cost


class SelfTimed(gym.Wrapper):
    """The agent's last action component picks the hold, in physics substeps.

    Args:
        env: an env with ``step_dt(action, dt)`` (possibly under other wrappers).
        substeps: ``(low, high)``, the shortest and longest hold in physics substeps.
        horizon_s: episode length in simulated seconds (None: no time limit of its own).
        clock: ``(default substeps, physics timestep [s])``; None reads the env's ``clock``
            attribute (:class:`envs.ImaginedEnv`) or the MuJoCo env's
            (:func:`envs.wrappers.control_clock`).
        decision_cost: subtracted from the reward of every decision.
    """

    def __init__(
        self,
        env: gym.Env,
        substeps: tuple[int, int] = (1, 15),
        horizon_s: float | None = None,
        clock: tuple[int, float] | None = None,
        decision_cost: float = 0.0,
    ) -> None:
        super().__init__(env)
        low, high = (int(v) for v in substeps)
        if not 1 <= low <= high:
            raise ValueError(f"self-timed substeps must be 1 <= low <= high, got {substeps}")
        if horizon_s is not None and not (math.isfinite(horizon_s) and horizon_s > 0):
            raise ValueError(f"horizon_s must be a positive number of seconds, got {horizon_s}")
        if not math.isfinite(decision_cost):
            raise ValueError(f"decision_cost must be finite, got {decision_cost}")
        try:
            self._step_dt = env.get_wrapper_attr("step_dt")
        except AttributeError:
            raise ValueError(
                f"SelfTimed needs an env with step_dt(action, dt) (IrregularTiming, "
                f"TrajectoryRecorder, ImaginedEnv), got {env}"
            ) from None
        inner = env.action_space
        if not isinstance(inner, gym.spaces.Box) or len(inner.shape) != 1:
            raise ValueError(f"SelfTimed needs a 1-D Box action space, got {inner}")
        self.low, self.high = low, high
        if clock is None:
            try:  # an env that is not MuJoCo's may tell its own (ImaginedEnv.clock)
                clock = env.get_wrapper_attr("clock")
            except AttributeError:
                clock = None
        if clock is None:
            try:
                clock = control_clock(env)
            except TypeError as err:
                raise ValueError(
                    f"SelfTimed: {err}; pass clock=(default substeps, physics timestep)"
                ) from None
        self.default_substeps, self.physics_dt = int(clock[0]), float(clock[1])
        self.dt0 = self.default_substeps * self.physics_dt
        self.horizon_s, self.decision_cost = horizon_s, float(decision_cost)
        self.action_space = gym.spaces.Box(
            np.append(inner.low, -1.0).astype(inner.dtype),
            np.append(inner.high, 1.0).astype(inner.dtype),
            dtype=inner.dtype,
        )
        try:  # a recorder below learns of the time limit (it sees no truncation of its own)
            self._end_episode = env.get_wrapper_attr("end_episode")
        except AttributeError:
            self._end_episode = lambda terminated, truncated: None
        self.elapsed, self.decisions = 0.0, 0

    def hold(self, u: float) -> int:
        """Physics substeps for the timing component ``u`` (clipped into ``[-1, 1]``)."""
        return int(hold_substeps(np.asarray(u), self.low, self.high))

    def reset(
        self, *, seed: int | None = None, options: dict[str, Any] | None = None
    ) -> tuple[Any, dict[str, Any]]:
        self.elapsed, self.decisions = 0.0, 0
        obs, info = self.env.reset(seed=seed, options=options)
        return obs, {**info, "decisions": 0, "elapsed": 0.0}

    def step(self, action: Any) -> tuple[Any, float, bool, bool, dict[str, Any]]:
        a = np.asarray(action, dtype=np.float64)
        if a.shape != self.action_space.shape:
            raise ValueError(
                f"self-timed action must have shape {self.action_space.shape} (the env's action "
                f"and one timing component), got {a.shape}"
            )
        n = self.hold(a[-1])
        if self.horizon_s is not None:  # the last interval ends at the horizon
            left = round((self.horizon_s - self.elapsed) / self.physics_dt)
            n = max(1, min(n, left))
        dt = n * self.physics_dt
        obs, reward, terminated, truncated, info = self._step_dt(
            a[:-1].astype(self.env.action_space.dtype), dt
        )
        self.elapsed += dt
        self.decisions += 1
        if (
            self.horizon_s is not None
            and self.elapsed >= self.horizon_s - 0.5 * self.physics_dt
            and not (terminated or truncated)
        ):
            truncated = True
            self._end_episode(False, True)
        reward = float(timed_reward(reward, dt, self.dt0, self.decision_cost))
        return (
            obs,
            reward,
            terminated,
            truncated,
            {
                **info,
                "decisions": self.decisions,
                "elapsed": self.elapsed,
            },
        )


def make_self_timed(
    spec: EnvSpec,
    substeps: tuple[int, int] = (1, 15),
    *,
    record: bool = False,
    decision_cost: float = 0.0,
) -> SelfTimed:
    """The real env of ``spec`` (at its fixed step: the agent picks the timing) as a
    :class:`SelfTimed` env whose episodes last the fixed-step env's ``max_episode_steps x
    dt0`` seconds. It is built without Gymnasium's step limit (and checkers) below, since one
    decision per substep would reach that limit early; with ``record``, the
    :class:`envs.TrajectoryRecorder` under it records the physical actions and times (``.env``
    of the returned env)."""
    if str(TimingSpec.parse(spec.timing)) != "fixed":
        raise ValueError(
            f"a self-timed env picks its own intervals: its spec's timing must be 'fixed', "
            f"got {spec.timing!r}"
        )
    steps = spec.max_episode_steps or gym.spec(spec.env_id).max_episode_steps
    if steps is None:
        raise ValueError(f"{spec.env_id} has no step limit to turn into a time limit")
    # no step limit below: the time limit is SelfTimed's (built once, no probe env for the clock)
    inner = make_env(spec, record=record, bare=True)
    frame_skip, physics_dt = control_clock(inner)
    return SelfTimed(inner, substeps, steps * frame_skip * physics_dt, decision_cost=decision_cost)
