"""``ImaginedVectorEnv``: ``num_envs`` imagined envs as one Gymnasium ``VectorEnv``, a view on an
:class:`~envs.imagined.core.ImaginedBatch` of ``num_envs`` rows."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
from gymnasium.utils import seeding
from gymnasium.vector import AutoresetMode, VectorEnv
from gymnasium.vector.utils import batch_space

from envs.imagined.checks import is_real
from envs.imagined.core import BatchView, ImaginedBatch, load_model
from worldmodel.models import WorldModel


class ImaginedVectorEnv(BatchView, VectorEnv):
    """``num_envs`` imagined envs stepped as one batch (same semantics as
    :class:`~envs.imagined.ImaginedEnv`).

    Sub-env ``i`` keeps its own ``np_random`` and latent generator, so it equals an
    ``ImaginedEnv`` reset with the same seed (``reset(seed=s)`` seeds sub-env ``i`` with
    ``s + i``). Autoreset is ``SAME_STEP``: a finished sub-env is reset within ``step``, its last
    observation and info in ``infos["final_obs"]`` / ``infos["final_info"]``. Episodes are
    truncated after ``max_episode_steps`` (default: the real env's). ``precision="bf16"`` runs
    the latent ODE's field in bfloat16 (:class:`envs.imagined.core.ImaginationCore`).
    """

    metadata = {"autoreset_mode": AutoresetMode.SAME_STEP, "render_modes": []}

    def __init__(
        self,
        run: str | Path | None = None,
        *,
        num_envs: int = 1,
        model: WorldModel | None = None,
        deterministic: bool = False,
        timing: str | None = None,
        clip_actions: bool = True,
        max_episode_steps: int | None = None,
        device: str = "cpu",
        precision: str = "fp32",
    ) -> None:
        if num_envs < 1:
            raise ValueError(f"num_envs must be >= 1, got {num_envs}")
        self.batch = ImaginedBatch(
            load_model(run, model, device),
            num_envs,
            deterministic=deterministic,
            timing=timing,
            clip_actions=clip_actions,
            precision=precision,
        )
        self.num_envs = num_envs
        self.single_observation_space = self.real.env.observation_space
        self.single_action_space = self.real.env.action_space
        self.observation_space = batch_space(self.single_observation_space, num_envs)
        self.action_space = batch_space(self.single_action_space, num_envs)
        self.max_episode_steps = max_episode_steps or self.real.max_episode_steps
        self._rngs: list[np.random.Generator] = [
            seeding.np_random(None)[0] for _ in range(num_envs)
        ]

    def reset(
        self, *, seed: int | Sequence[int] | None = None, options: dict[str, Any] | None = None
    ) -> tuple[np.ndarray, dict[str, Any]]:
        if seed is None:
            seeds: list[int | None] = [None] * self.num_envs
        elif isinstance(seed, int):
            seeds = [seed + i for i in range(self.num_envs)]
        else:
            seeds = list(seed)
            if len(seeds) != self.num_envs:
                raise ValueError(f"{len(seeds)} seeds for {self.num_envs} envs")
        for i, s in enumerate(seeds):
            if s is not None:
                self._rngs[i] = seeding.np_random(s)[0]
        self.batch.start(range(self.num_envs), self._rngs)
        return self.batch.obs.copy(), {}

    def step(
        self, actions: Any
    ) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, dict[str, Any]]:
        self.batch.check_started()
        if not is_real(actions, scalar=False):
            raise TypeError(f"actions must be an array of real numbers, got {actions!r:.60}")
        a = np.asarray(actions, dtype=np.float64)
        if a.shape != self.action_space.shape:
            raise ValueError(
                f"actions have shape {a.shape}, expected {self.action_space.shape} "
                f"({self.num_envs} envs x {self.single_action_space.shape[0]})"
            )
        a = self.batch.check_actions(a)
        out = self.batch.step(a, self.batch.draw_dt(self._rngs))
        term, t = out.terminated, self.batch.t
        trunc = (
            ~term & (self.batch.steps >= self.max_episode_steps)
            if self.max_episode_steps
            else np.zeros_like(term)
        )
        infos: dict[str, Any] = {
            "t": t.copy(),
            "dt": out.dt,
            "model_diverged": out.diverged,
            **out.terms,
        }
        done = np.flatnonzero(term | trunc)
        for i in done:
            final = {"t": t[i], "model_diverged": bool(out.diverged[i])}
            infos = self._add_info(
                infos, {"final_obs": out.obs[i].copy(), "final_info": final}, int(i)
            )
        if len(done):
            self.batch.start(done, [self._rngs[i] for i in done])
        return self.batch.obs.copy(), out.reward, term, trunc, infos

    def close_extras(self, **kwargs: Any) -> None:
        self.real.env.close()
