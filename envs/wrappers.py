"""Gymnasium wrappers for collecting irregularly timed MuJoCo rollouts.

Typical stack (innermost first)::

    env = gym.make("Hopper-v5")            # TimeLimit(OrderEnforcing(PassiveEnvChecker(Hopper)))
    env = Incline(env, angle_deg=5.0)      # optional perturbations
    env = ResetNoise(env, scale=0.05)
    env = IrregularTiming(env, "uniform:1-7")
    env = TrajectoryRecorder(env)          # outermost: records what the agent sees

Every wrapper here composes with Gymnasium's own (``TimeLimit``,
``RecordEpisodeStatistics``, ``RecordVideo``).
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

import gymnasium as gym
import numpy as np
from gymnasium.envs.mujoco.mujoco_env import MujocoEnv

from envs._gymnasium import observation_of
from envs.timing import TimingSpec
from worldmodel.data import Episode


def mujoco_base(env: gym.Env) -> MujocoEnv:
    """The ``MujocoEnv`` under any stack of wrappers, or a ``TypeError`` naming the env."""
    base = env.unwrapped
    if not isinstance(base, MujocoEnv):
        raise TypeError(
            f"{type(base).__name__} is not a Gymnasium MuJoCo env (MujocoEnv); "
            "this wrapper needs one"
        )
    return base


def control_clock(env: gym.Env) -> tuple[int, float]:
    """``(substeps, physics_dt)``: the physics steps a MuJoCo env holds each action for by
    default (its ``frame_skip``) and the physics timestep [s]."""
    base = mujoco_base(env)
    return int(base.frame_skip), float(base.model.opt.timestep)


def default_dt(env: gym.Env) -> float:
    """The env's own control step [s]: its default substeps times the physics timestep (what
    ``MujocoEnv.dt`` gives; read outside a step of :class:`IrregularTiming`)."""
    substeps, physics_dt = control_clock(env)
    return physics_dt * substeps


def physics_state(env: gym.Env) -> tuple[np.ndarray, np.ndarray, float]:
    """Copies of ``(qpos (nq,), qvel (nv,), time [s])`` of a MuJoCo env."""
    data = mujoco_base(env).data
    return data.qpos.copy(), data.qvel.copy(), float(data.time)


def set_physics_state(
    env: gym.Env, qpos: np.ndarray, qvel: np.ndarray, t: float | None = None
) -> np.ndarray:
    """Restore a recorded physics state and return the base env's observation of it.

    Also clears MuJoCo's warm-start acceleration so that a restored state steps the same way
    whatever the env did before.
    """
    base = mujoco_base(env)
    qpos = np.asarray(qpos, dtype=np.float64)
    qvel = np.asarray(qvel, dtype=np.float64)
    if qpos.shape != (base.model.nq,) or qvel.shape != (base.model.nv,):
        raise ValueError(
            f"state shapes qpos {qpos.shape}, qvel {qvel.shape} do not match the model: "
            f"expected ({base.model.nq},), ({base.model.nv},)"
        )
    base.set_state(qpos, qvel)
    base.data.qacc_warmstart[:] = 0.0
    if t is not None:
        base.data.time = float(t)
    return observation_of(base)


class IrregularTiming(gym.Wrapper):
    """Hold each action for a random number of physics substeps.

    The number of substeps of each ``step`` is drawn from ``timing`` with the env's own
    ``np_random``, so ``reset(seed=...)`` reproduces the whole episode, timing included.
    The env computes its reward over the interval it actually simulated (its ``dt`` follows
    the substep count), so the reward stays the env's own.

    ``info`` gains ``t`` (seconds since reset, MuJoCo's ``data.time``), and on ``step`` also
    ``dt`` (seconds this step lasted) and ``substeps``.

    Args:
        env: any Gymnasium MuJoCo env (possibly wrapped).
        timing: a :class:`TimingSpec` or its string form, e.g. ``"uniform:1-7"``.
    """

    def __init__(self, env: gym.Env, timing: str | TimingSpec = "fixed") -> None:
        super().__init__(env)
        self._base = mujoco_base(env)
        self.timing = TimingSpec.parse(timing)
        self.default_substeps, self.physics_dt = control_clock(env)

    def reset(
        self, *, seed: int | None = None, options: dict[str, Any] | None = None
    ) -> tuple[Any, dict[str, Any]]:
        obs, info = self.env.reset(seed=seed, options=options)
        info["t"] = float(self._base.data.time)
        return obs, info

    def step(self, action: Any) -> tuple[Any, float, bool, bool, dict[str, Any]]:
        substeps = self.timing.sample(self.np_random, self.default_substeps)
        return self.step_substeps(action, substeps)

    def step_dt(self, action: Any, dt: float) -> tuple[Any, float, bool, bool, dict[str, Any]]:
        """Step with a given duration ``dt`` [s]: a positive whole multiple of the physics
        timestep (to 1e-6 relative)."""
        if not math.isfinite(dt) or dt <= 0:
            raise ValueError(f"dt must be a positive finite number of seconds, got {dt!r}")
        n = round(dt / self.physics_dt)
        if n < 1 or abs(n * self.physics_dt - dt) > 1e-6 * dt:
            raise ValueError(
                f"dt={dt!r} s is not a whole multiple of the physics timestep {self.physics_dt} s"
            )
        return self.step_substeps(action, n)

    def step_substeps(
        self, action: Any, substeps: int
    ) -> tuple[Any, float, bool, bool, dict[str, Any]]:
        """Step holding ``action`` for exactly ``substeps`` physics steps (a whole number from
        1 to 1,000 of the env's control steps)."""
        if isinstance(substeps, bool) or not isinstance(substeps, (int, np.integer)):
            raise TypeError(f"substeps must be a whole number, got {substeps!r}")
        most = 1000 * self.default_substeps
        if not 1 <= substeps <= most:
            raise ValueError(
                f"substeps must be from 1 to {most} (1,000 of the env's control steps), "
                f"got {substeps}"
            )
        self._base.frame_skip = int(substeps)
        try:
            obs, reward, terminated, truncated, info = self.env.step(action)
        finally:
            self._base.frame_skip = self.default_substeps
        info["substeps"] = int(substeps)
        info["dt"] = substeps * self.physics_dt
        info["t"] = float(self._base.data.time)
        return obs, reward, terminated, truncated, info


class ResetNoise(gym.Wrapper):
    """Add uniform noise ``U(-scale, scale)`` to every ``qpos`` and ``qvel`` entry after reset.

    This is on top of the env's own reset noise (Hopper-v5: ``reset_noise_scale=5e-3``), so
    that data can cover states further from the nominal start. Put it directly around the
    env made by ``gym.make``: the observation it returns is the base env's own
    (:func:`envs._gymnasium.observation_of`).
    """

    def __init__(self, env: gym.Env, scale: float) -> None:
        super().__init__(env)
        if not math.isfinite(scale) or scale < 0:
            raise ValueError(f"reset noise scale must be finite and >= 0, got {scale!r}")
        self._base = mujoco_base(env)
        self.scale = float(scale)

    def reset(
        self, *, seed: int | None = None, options: dict[str, Any] | None = None
    ) -> tuple[Any, dict[str, Any]]:
        obs, info = self.env.reset(seed=seed, options=options)
        if self.scale > 0:
            qpos, qvel, t = physics_state(self.env)
            rng = self.np_random
            qpos = qpos + rng.uniform(-self.scale, self.scale, size=qpos.shape)
            qvel = qvel + rng.uniform(-self.scale, self.scale, size=qvel.shape)
            obs = set_physics_state(self.env, qpos, qvel, t)
        return obs, info


class Incline(gym.Wrapper):
    """Tilt gravity in the x-z plane, as if the floor were an incline of ``angle_deg``.

    A positive angle is uphill for motion towards +x: gravity becomes
    ``g * (-sin a, 0, -cos a)`` with ``g`` the model's own magnitude. The model is changed in
    place for the env's lifetime.
    """

    def __init__(self, env: gym.Env, angle_deg: float) -> None:
        super().__init__(env)
        if not math.isfinite(angle_deg) or abs(angle_deg) >= 90:
            raise ValueError(
                f"incline angle must be finite and in (-90, 90) degrees, got {angle_deg!r}"
            )
        base = mujoco_base(env)
        self.angle_deg = float(angle_deg)
        g = float(np.linalg.norm(base.model.opt.gravity))
        a = math.radians(angle_deg)
        base.model.opt.gravity[:] = (-g * math.sin(a), 0.0, -g * math.cos(a))


class TrajectoryRecorder(gym.Wrapper):
    """Record every episode: ``t``, observations, actions, rewards, end flags, ``qpos``/``qvel``.

    Times come from ``info["t"]`` when a wrapper below provides it (:class:`IrregularTiming`),
    else from MuJoCo's ``data.time``, else from counting the env's ``dt``. An episode ends on
    ``terminated`` or ``truncated``; a ``reset`` before that ends it with both flags false.
    Finished episodes go to ``self.episodes`` (when ``keep``) and to ``on_episode``.

    Recorded arrays, for an episode of ``T`` observations: ``t (T,)`` float64 seconds,
    ``obs (T, obs_dim)``, ``actions (T-1, act_dim)``, ``rewards (T-1,)``,
    ``qpos (T, nq)``, ``qvel (T, nv)`` (``nq = nv = 0`` for non-MuJoCo envs).
    """

    def __init__(
        self,
        env: gym.Env,
        *,
        on_episode: Callable[[Episode], None] | None = None,
        keep: bool = True,
    ) -> None:
        super().__init__(env)
        base = env.unwrapped
        self._mj: MujocoEnv | None = base if isinstance(base, MujocoEnv) else None
        self.on_episode = on_episode
        self.keep = keep
        self.episodes: list[Episode] = []
        self._buf: dict[str, list] | None = None
        self._seed: int = -1

    # -- helpers -------------------------------------------------------------------------
    def _time(self, info: dict[str, Any], dt_fallback: float) -> float:
        if "t" in info:
            return float(info["t"])
        if self._mj is not None:
            return float(self._mj.data.time)
        return (self._buf["t"][-1] + dt_fallback) if self._buf and self._buf["t"] else 0.0

    def _push_state(self, obs: Any, t: float) -> None:
        buf = self._buf
        buf["obs"].append(np.array(obs, dtype=np.float64, copy=True).reshape(-1))
        buf["t"].append(t)
        if self._mj is not None:
            buf["qpos"].append(self._mj.data.qpos.copy())
            buf["qvel"].append(self._mj.data.qvel.copy())

    def _finish(self, terminated: bool, truncated: bool) -> None:
        buf, self._buf = self._buf, None
        if buf is None or len(buf["t"]) < 2:
            return
        n = len(buf["t"])
        ep = Episode(
            t=np.asarray(buf["t"], dtype=np.float64),
            obs=np.stack(buf["obs"]),
            actions=np.stack(buf["actions"]).astype(np.float32),
            rewards=np.asarray(buf["rewards"], dtype=np.float64),
            qpos=np.stack(buf["qpos"]) if buf["qpos"] else np.zeros((n, 0)),
            qvel=np.stack(buf["qvel"]) if buf["qvel"] else np.zeros((n, 0)),
            terminated=bool(terminated),
            truncated=bool(truncated),
            seed=self._seed,
        )
        if self.keep:
            self.episodes.append(ep)
        if self.on_episode is not None:
            self.on_episode(ep)

    def end_episode(self, terminated: bool, truncated: bool) -> None:
        """End the current episode with these flags now (a wrapper above that ends episodes
        itself, e.g. :class:`envs.SelfTimed`'s time limit, calls this); the next step needs a
        ``reset``."""
        self._finish(terminated, truncated)

    # -- gymnasium API ---------------------------------------------------------------------
    def reset(
        self, *, seed: int | None = None, options: dict[str, Any] | None = None
    ) -> tuple[Any, dict[str, Any]]:
        self._finish(terminated=False, truncated=False)
        obs, info = self.env.reset(seed=seed, options=options)
        self._seed = -1 if seed is None else int(seed)
        self._buf = {k: [] for k in ("t", "obs", "actions", "rewards", "qpos", "qvel")}
        self._push_state(obs, self._time(info, 0.0))
        return obs, info

    def step(self, action: Any) -> tuple[Any, float, bool, bool, dict[str, Any]]:
        return self._record(action, self.env.step(action))

    def step_dt(self, action: Any, dt: float) -> tuple[Any, float, bool, bool, dict[str, Any]]:
        """The wrapped env's ``step_dt`` (e.g. :meth:`IrregularTiming.step_dt`), recorded like
        :meth:`step` (what :class:`envs.SelfTimed` calls)."""
        return self._record(action, self.env.get_wrapper_attr("step_dt")(action, dt))

    def _record(
        self, action: Any, result: tuple[Any, float, bool, bool, dict[str, Any]]
    ) -> tuple[Any, float, bool, bool, dict[str, Any]]:
        """Append one step's ``action`` and its ``(obs, reward, terminated, truncated, info)``."""
        obs, reward, terminated, truncated, info = result
        if self._buf is not None:
            self._buf["actions"].append(np.array(action, dtype=np.float32, copy=True).reshape(-1))
            self._buf["rewards"].append(float(reward))
            dt = float(info.get("dt", getattr(self.env.unwrapped, "dt", 1.0)))
            self._push_state(obs, self._time(info, dt))
            if terminated or truncated:
                self._finish(terminated, truncated)
        return obs, reward, terminated, truncated, info

    def close(self) -> None:
        self._finish(terminated=False, truncated=False)
        super().close()


__all__ = [
    "IrregularTiming",
    "ResetNoise",
    "Incline",
    "TrajectoryRecorder",
    "control_clock",
    "default_dt",
    "physics_state",
    "set_physics_state",
    "mujoco_base",
]
