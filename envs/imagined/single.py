"""``ImaginedEnv``: the world model as one Gymnasium env, a view on an
:class:`~envs.imagined.core.ImaginedBatch` of one row (registered as ``worldmodel/Imagined-v0``)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import gymnasium as gym
import numpy as np

from envs.factory import make_env
from envs.imagined.checks import check_dt, check_reset_options, context_from_options, is_real
from envs.imagined.core import BatchView, ImaginedBatch, load_model
from envs.mujoco_state import state_from_obs
from envs.wrappers import set_physics_state
from worldmodel.models import WorldModel


class ImaginedEnv(BatchView, gym.Env):
    """The world model as a single Gymnasium env (see :mod:`envs.imagined`).

    Args:
        run: a run directory (``worldmodel train --out``), or
        model: a model loaded with ``worldmodel.load``.
        deterministic: mean latent state instead of a sample (and the ensemble's mean step).
        timing: draw each step's dt as in :class:`envs.IrregularTiming` (None: the real dt).
        clip_actions: clip out-of-bounds actions (else raise ``ValueError``).
        precision: ``"fp32"`` or ``"bf16"`` for the latent ODE's field (see
            :class:`envs.imagined.core.ImaginationCore`).
        render_mode: ``None`` or ``"rgb_array"``.
        width, height: rendered frame size in pixels.
        device: where the model runs when loaded from ``run``.
    """

    metadata = {"render_modes": ["rgb_array"], "render_fps": 125}

    def __init__(
        self,
        run: str | Path | None = None,
        *,
        model: WorldModel | None = None,
        deterministic: bool = False,
        timing: str | None = None,
        clip_actions: bool = True,
        precision: str = "fp32",
        render_mode: str | None = None,
        width: int = 480,
        height: int = 480,
        device: str = "cpu",
    ) -> None:
        self.batch = ImaginedBatch(
            load_model(run, model, device),
            1,
            deterministic=deterministic,
            timing=timing,
            clip_actions=clip_actions,
            precision=precision,
        )
        self.observation_space = self.real.env.observation_space
        self.action_space = self.real.env.action_space
        if render_mode not in (None, "rgb_array"):
            raise ValueError(f"render_mode must be None or 'rgb_array', got {render_mode!r}")
        self.render_mode, self.width, self.height = render_mode, width, height
        self.metadata = {**self.metadata, "render_fps": int(round(1.0 / self.real.dt))}
        self._renderer: gym.Env | None = None

    @property
    def dt(self) -> float:
        """The real env's control step in seconds (the default step length)."""
        return self.real.dt

    @property
    def clock(self) -> tuple[int, float]:
        """``(default substeps, physics timestep [s])`` of the real env (what
        :func:`envs.wrappers.control_clock` reads from a MuJoCo env; :class:`envs.SelfTimed`
        reads this)."""
        return self.real.frame_skip, self.real.physics_dt

    def reset(
        self, *, seed: int | None = None, options: dict[str, Any] | None = None
    ) -> tuple[np.ndarray, dict[str, Any]]:
        check_reset_options(options)
        super().reset(seed=seed)
        given = None
        if options and "context" in options:
            given = context_from_options(options, self.observation_space, self.action_space)
        self.batch.start([0], [self.np_random], [given])
        return self.batch.obs[0].copy(), {"t": float(self.batch.t[0])}

    def step(self, action: Any) -> tuple[np.ndarray, float, bool, bool, dict[str, Any]]:
        return self.step_dt(action, float(self.batch.draw_dt([self.np_random])[0]))

    def step_dt(
        self, action: Any, dt: float
    ) -> tuple[np.ndarray, float, bool, bool, dict[str, Any]]:
        """Step holding ``action`` for ``dt`` seconds (at most 1,000 control steps: a fixed-step
        solver takes ``dt / max_step`` steps)."""
        self.batch.check_started()
        if not is_real(action, scalar=False):
            raise TypeError(f"action must be an array of real numbers, got {action!r:.60}")
        dt = check_dt(dt, most=1000 * self.real.dt)
        a = np.asarray(action, dtype=np.float64)
        if a.shape != self.action_space.shape:
            raise ValueError(f"action has shape {a.shape}, expected {self.action_space.shape}")
        a = self.batch.check_actions(a[None])
        out = self.batch.step(a, np.array([dt]))
        info = {
            "t": float(self.batch.t[0]),
            "dt": dt,
            "model_diverged": bool(out.diverged[0]),
            **{k: float(v[0]) for k, v in out.terms.items()},
            "inexact_terms": self.core.task.inexact_terms,
        }
        return out.obs[0].copy(), float(out.reward[0]), bool(out.terminated[0]), False, info

    def physics_state(self) -> tuple[np.ndarray, np.ndarray]:
        """``(qpos, qvel)`` implied by the current imagined observation (the excluded x, and y,
        integrated from their predicted velocities)."""
        return state_from_obs(self.batch.obs[0], self.batch.pos[0], self.real.nq, self.real.nv)

    def render(self) -> np.ndarray | None:
        if self.render_mode is None:
            gym.logger.warn("render() called without render_mode='rgb_array'")
            return None
        if self._renderer is None:
            self._renderer = make_env(
                self.core.spec,
                bare=True,
                render_mode="rgb_array",
                width=self.width,
                height=self.height,
            )
            self._renderer.reset(seed=0)
        qpos, qvel = self.physics_state()
        set_physics_state(self._renderer, qpos, qvel)
        return self._renderer.render()

    def close(self) -> None:
        self.real.env.close()
        if self._renderer is not None:
            self._renderer.close()
