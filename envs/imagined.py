"""A trained world model behind the Gymnasium API: ``ImaginedEnv``, ``ImaginedVectorEnv`` and
an adapter that stable-baselines3 accepts as a ``VecEnv``.

All three sit on one batched core (:class:`ImaginationCore`, after mbrl-lib's ``ModelEnv``): it
encodes real context windows into model states, steps the model under held actions for ``dt``
seconds, and scores each step with the task's reward and termination functions
(:mod:`envs.tasks`), on torch (CPU or GPU).

``ImaginedEnv`` (registered as ``worldmodel/Imagined-v0``):

==========================  ====================================================================
observation / action space  the real env's (same shapes, bounds and dtypes)
``reset(seed, options)``    resets a real env with a seed drawn from ``np_random`` and encodes its
                            initial observation; ``options={"context": {"t", "obs", "actions"}}``
                            starts from a given real context window instead (``t (T,)`` seconds,
                            ``obs (T, obs_dim)``, ``actions (T-1, act_dim)``; optional ``"x"``: the
                            x position at the last observation, for rendering)
``step(action)``            advances ``dt`` seconds: the real env's dt, or drawn per step from
                            ``timing`` (a :class:`envs.TimingSpec`, like ``IrregularTiming``)
``step_dt(action, dt)``     advances a given ``dt`` seconds (> 0, at most 1,000 control steps)
reward, terminated          :mod:`envs.tasks` (the real env's formulas, with the env kwargs the
                            data was collected with, e.g. ``terminate_when_unhealthy=False``);
                            truncation by ``TimeLimit``; ``info["inexact_terms"]`` names the
                            reward terms that are estimates
latent sampling             a torch generator seeded from ``reset(seed)``; ``deterministic=True``
                            uses the belief's mean
actions                     clipped into the action space (``clip_actions=False``: an error)
a non-finite model state    ends the episode: ``terminated=True``, ``info["model_diverged"]``, and
                            the last finite observation is returned (never NaN)
``render()``                ``rgb_array``: the predicted qpos/qvel drawn by MuJoCo, the x position
                            integrated from the predicted x velocity
==========================  ====================================================================

The env is the one the model's data came from (:func:`envs.factory.env_spec_of`: the dataset
metadata copied into the run's ``config.json``): its ``gym.make`` kwargs and wrappers
(``Incline``, ``ResetNoise``) make the real start states, the spaces and the task. Only envs
with a task in :mod:`envs.tasks` are accepted (a ``ValueError`` lists them).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import gymnasium as gym
import numpy as np
import torch
from gymnasium.utils import seeding
from gymnasium.vector import AutoresetMode, VectorEnv
from gymnasium.vector.utils import batch_space
from stable_baselines3.common.vec_env import VecEnv as SB3BaseVecEnv

from envs.factory import EnvSpec, env_spec_of, make_env
from envs.timing import TimingSpec
from envs.wrappers import mujoco_base, set_physics_state
from worldmodel.batching import Context, context_batch
from worldmodel.models import WorldModel
from worldmodel.models.base import Generators, RowStreams


def _load(run: str | Path | None, model: WorldModel | None, device: str) -> WorldModel:
    if (run is None) == (model is None):
        raise ValueError("give exactly one of run (a run directory) or model (a loaded WorldModel)")
    if model is None:
        from worldmodel.train import load

        model = load(run, device=device)
    if not getattr(model, "env_id", None):
        raise ValueError("the model has no env_id: load it with worldmodel.load(run_dir)")
    return model.eval()


class ImaginationCore:
    """Batched imagination: ``N`` model states stepped together (no Gymnasium state).

    Args:
        model: a trained model (``worldmodel.load``); its run's env spec picks the task.
        deterministic: use the belief's mean at encoding, and the ensemble's mean step.
        spec: the env (default: the one the model's data was collected in, from its run).

    Raises:
        ValueError: an env without a task in :mod:`envs.tasks` (the supported ids are listed).
    """

    def __init__(
        self, model: WorldModel, *, deterministic: bool = False, spec: EnvSpec | None = None
    ) -> None:
        self.model = model
        self.spec = spec if spec is not None else env_spec_of(model)
        if self.spec.env_id != model.env_id:
            raise ValueError(f"env spec {self.spec.env_id!r} is not the model's {model.env_id!r}")
        self.env_id: str = model.env_id
        self.task = self.spec.task()
        self.deterministic = deterministic
        p = next(model.parameters())
        self.device, self.dtype = p.device, p.dtype

    @torch.no_grad()
    def encode(self, contexts: Sequence[Context], generators: Generators = None) -> torch.Tensor:
        """States ``(N, D)`` for ``N`` real context windows; row ``i`` draws from generator ``i``
        (a sequence of ``N`` generators or :class:`RowStreams`), or all from one."""
        batch = context_batch(contexts, self.model.normalizer).to(self.device)
        if self.deterministic:
            return self.model.encode(batch, 1, mean=True)[0]
        return self.model.encode(batch, 1, generator=generators)[0]

    @torch.no_grad()
    def step(
        self,
        state: torch.Tensor,
        obs: np.ndarray,
        action: np.ndarray,
        dt: np.ndarray,
        generators: Generators = None,
    ) -> tuple[torch.Tensor, np.ndarray, np.ndarray, np.ndarray, np.ndarray, dict[str, np.ndarray]]:
        """One step of every row.

        Args:
            state: ``(N, D)`` model states.
            obs: ``(N, obs_dim)`` current observations (real units; for the reward).
            action: ``(N, act_dim)`` held for ``dt (N,)`` seconds.

        Returns:
            ``(state, next_obs (N, obs_dim) float64, reward (N,), terminated (N,), diverged (N,),
            reward terms {name: (N,)})``.
        """
        a = torch.as_tensor(action, dtype=self.dtype, device=self.device)
        d = torch.as_tensor(dt, dtype=self.dtype, device=self.device)
        sample = getattr(self.model, "sample_step", None)
        if sample is not None and not self.deterministic:
            nxt, o = sample(state, a, d, generators)
        else:
            nxt, o = self.model.step(state, a, d)
        next_obs = self.model.denormalize(o).double().cpu().numpy()
        diverged = ~(torch.isfinite(nxt).all(-1).cpu().numpy() & np.isfinite(next_obs).all(-1))
        next_obs = np.where(diverged[:, None], obs, next_obs)
        nxt = torch.where(
            torch.as_tensor(diverged, device=nxt.device)[:, None], torch.zeros_like(nxt), nxt
        )
        act64 = np.asarray(action, dtype=np.float64)
        dt64 = np.asarray(dt, dtype=np.float64)
        reward, terms = self.task.reward(obs, act64, next_obs, dt64)
        terms = {k: v for k, v in terms.items() if k in self.task.terms}  # arrays only
        terminated = np.asarray(self.task.terminated(obs, act64, next_obs, dt64))
        reward = np.where(diverged, 0.0, reward)
        return nxt, next_obs, reward, terminated | diverged, diverged, terms


class _RealStarts:
    """A real env, built as the data's was, that supplies initial states, spaces and dt."""

    def __init__(self, spec: EnvSpec) -> None:
        self.env = make_env(spec.replace(timing="fixed", max_episode_steps=None))
        base = mujoco_base(self.env)
        self.physics_dt = float(base.model.opt.timestep)
        self.frame_skip = int(base.frame_skip)
        self.dt = self.physics_dt * self.frame_skip
        self.nq, self.nv = int(base.model.nq), int(base.model.nv)
        # the task's registered time limit, not the (often short) one the data was collected with
        self.max_episode_steps = gym.spec(spec.env_id).max_episode_steps

    def start(self, rng: np.random.Generator) -> tuple[Context, float]:
        """A context of the real env's initial observation, and its x position."""
        obs, _ = self.env.reset(seed=int(rng.integers(2**31 - 1)))
        x = float(mujoco_base(self.env).data.qpos[0])
        act_dim = self.env.action_space.shape[0]
        return Context(
            np.zeros(1), np.asarray(obs, dtype=np.float64)[None], np.zeros((0, act_dim))
        ), x


def _context_from_options(
    options: dict[str, Any], obs_space: gym.spaces.Box, act_space: gym.spaces.Box
) -> tuple[Context, float]:
    c = options["context"]
    try:
        t = np.asarray(c["t"], dtype=np.float64).reshape(-1)
        obs = np.asarray(c["obs"], dtype=np.float64)
        actions = np.asarray(c.get("actions", np.zeros((0, act_space.shape[0]))), dtype=np.float64)
    except (KeyError, TypeError) as err:
        raise ValueError(f"options['context'] needs t, obs and actions: {err}") from None
    if obs.ndim != 2 or obs.shape[1:] != obs_space.shape:
        raise ValueError(f"context obs has shape {obs.shape}, expected (T, {obs_space.shape[0]})")
    if actions.ndim != 2 or actions.shape[1:] != act_space.shape:
        raise ValueError(
            f"context actions have shape {actions.shape}, expected (T-1, {act_space.shape[0]})"
        )
    return Context(t, obs, actions), float(options.get("x", 0.0))


def _generator(rng: np.random.Generator) -> torch.Generator:
    return torch.Generator().manual_seed(int(rng.integers(2**63 - 1)))


def _is_real(value: Any, *, scalar: bool = True, finite: bool = False) -> bool:
    """Whether ``value`` is a real number (``scalar``) or an array of them (not text, objects,
    complex or ragged lists)."""
    try:
        arr = np.asarray(value)
    except (ValueError, TypeError):
        return False
    if arr.dtype.kind not in "biuf" or (scalar and arr.ndim):
        return False
    return not finite or bool(np.isfinite(arr).all())


def _check_dt(dt: float) -> float:
    dt = float(dt)
    if not math.isfinite(dt) or dt <= 0:
        raise ValueError(f"dt must be a positive finite number of seconds, got {dt!r}")
    return dt


class ImaginedEnv(gym.Env):
    """The world model as a single Gymnasium env (see the module docstring).

    Args:
        run: a run directory (``worldmodel train --out``), or
        model: a model loaded with ``worldmodel.load``.
        deterministic: mean latent state instead of a sample (and the ensemble's mean step).
        timing: draw each step's dt as in :class:`envs.IrregularTiming` (None: the real dt).
        clip_actions: clip out-of-bounds actions (else raise ``ValueError``).
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
        render_mode: str | None = None,
        width: int = 480,
        height: int = 480,
        device: str = "cpu",
    ) -> None:
        self.core = ImaginationCore(_load(run, model, device), deterministic=deterministic)
        self.real = _RealStarts(self.core.spec)
        self.observation_space = self.real.env.observation_space
        self.action_space = self.real.env.action_space
        if self.observation_space.shape != (self.core.model.obs_dim,):
            raise ValueError(
                f"model observations have {self.core.model.obs_dim} dims, "
                f"{self.core.env_id} has {self.observation_space.shape}"
            )
        self.timing = TimingSpec.parse(timing) if timing else None
        self.clip_actions = clip_actions
        if render_mode not in (None, "rgb_array"):
            raise ValueError(f"render_mode must be None or 'rgb_array', got {render_mode!r}")
        self.render_mode, self.width, self.height = render_mode, width, height
        self.metadata = {**self.metadata, "render_fps": int(round(1.0 / self.real.dt))}
        self._renderer: gym.Env | None = None
        self._state: torch.Tensor | None = None
        self._noise: RowStreams | None = None

    @property
    def dt(self) -> float:
        """The real env's control step in seconds (the default step length)."""
        return self.real.dt

    def reset(
        self, *, seed: int | None = None, options: dict[str, Any] | None = None
    ) -> tuple[np.ndarray, dict[str, Any]]:
        if options is not None and not isinstance(options, dict):
            raise TypeError(f"options must be a dict or None, got {type(options).__name__}")
        if options and "x" in options and not _is_real(options["x"], finite=True):
            raise ValueError(f"options['x'] must be a finite number, got {options['x']!r:.60}")
        if options and "context" in options:
            if not isinstance(options["context"], dict):
                raise TypeError(
                    "options['context'] must be a dict of t, obs and actions, got "
                    f"{type(options['context']).__name__}"
                )
            for key, value in options["context"].items():
                if key in ("t", "obs", "actions") and not _is_real(value, scalar=False):
                    raise TypeError(f"options['context'][{key!r}] is not an array of real numbers")
        super().reset(seed=seed)
        if options and "context" in options:
            ctx, x = _context_from_options(options, self.observation_space, self.action_space)
        else:
            ctx, x = self.real.start(self.np_random)
        # the positions the observation excludes (x; Swimmer, Ant: x, y), integrated for render()
        self._pos = np.zeros(self.core.task.excluded_positions)
        if len(self._pos):
            self._pos[0] = x
        self._noise = RowStreams([_generator(self.np_random)])
        self._state = self.core.encode([ctx], self._noise)
        self._obs = ctx.obs[-1].copy()
        self._t = float(ctx.t[-1])
        return self._obs.copy(), {"t": self._t}

    def step(self, action: Any) -> tuple[np.ndarray, float, bool, bool, dict[str, Any]]:
        if self.timing is None:
            dt = self.real.dt
        else:
            dt = self.timing.sample(self.np_random, self.real.frame_skip) * self.real.physics_dt
        return self.step_dt(action, dt)

    def step_dt(
        self, action: Any, dt: float
    ) -> tuple[np.ndarray, float, bool, bool, dict[str, Any]]:
        """Step holding ``action`` for ``dt`` seconds."""
        if self._state is None:
            raise RuntimeError("call reset() before step()")
        if not _is_real(action, scalar=False):
            raise TypeError(f"action must be an array of real numbers, got {action!r:.60}")
        if not _is_real(dt):
            raise TypeError(f"dt must be a number of seconds, got {dt!r:.60}")
        dt = _check_dt(dt)
        if dt > 1000 * self.real.dt:  # a fixed-step solver takes dt / max_step steps
            raise ValueError(
                f"dt must be at most {1000 * self.real.dt:g} s (1,000 of the env's control "
                f"steps), got {dt!r}"
            )
        a = _check_actions(
            np.asarray(action, dtype=np.float64)[None], self.action_space, self.clip_actions
        )
        state, obs, reward, term, div, terms = self.core.step(
            self._state, self._obs[None], a, np.array([dt]), self._noise
        )
        self._state, self._obs = state, obs[0]
        self._t += dt
        vi = self.core.task.x_velocity_index  # qvel[0:k] are the velocities of qpos[0:k]
        self._pos += dt * self._obs[vi : vi + len(self._pos)]
        info = {
            "t": self._t,
            "dt": dt,
            "model_diverged": bool(div[0]),
            **{k: float(v[0]) for k, v in terms.items()},
            "inexact_terms": self.core.task.inexact_terms,
        }
        return self._obs.copy(), float(reward[0]), bool(term[0]), False, info

    def physics_state(self) -> tuple[np.ndarray, np.ndarray]:
        """``(qpos, qvel)`` implied by the current imagined observation (the excluded x, and y,
        integrated from their predicted velocities)."""
        nq, nv, obs = self.real.nq, self.real.nv, self._obs
        k = len(self._pos)
        qpos = np.concatenate([self._pos, obs[: nq - k]])
        return qpos, obs[nq - k : nq - k + nv].copy()

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


def _check_actions(a: np.ndarray, space: gym.spaces.Box, clip: bool) -> np.ndarray:
    """``(N, act_dim)`` actions: shape and finiteness checked, clipped into the box (or refused)."""
    if a.ndim != 2 or a.shape[1:] != space.shape:
        raise ValueError(
            f"action has shape {a.shape[1:] if a.ndim == 2 else a.shape}, expected {space.shape}"
        )
    if not np.isfinite(a).all():
        raise ValueError("action holds a non-finite value")
    inside = (a >= space.low) & (a <= space.high)
    if not inside.all():
        if not clip:
            raise ValueError(
                f"action {a[~inside.all(1)][0].tolist()} is outside "
                f"[{space.low.tolist()}, {space.high.tolist()}]"
            )
        a = np.clip(a, space.low, space.high)
    return a


class ImaginedVectorEnv(VectorEnv):
    """``num_envs`` imagined envs stepped as one batch (same semantics as :class:`ImaginedEnv`).

    Sub-env ``i`` keeps its own ``np_random`` and latent generator, so it equals an
    :class:`ImaginedEnv` reset with the same seed (``reset(seed=s)`` seeds sub-env ``i`` with
    ``s + i``). Autoreset is ``SAME_STEP``: a finished sub-env is reset within ``step``, its last
    observation and info in ``infos["final_obs"]`` / ``infos["final_info"]``. Episodes are
    truncated after ``max_episode_steps`` (default: the real env's).
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
    ) -> None:
        if num_envs < 1:
            raise ValueError(f"num_envs must be >= 1, got {num_envs}")
        self.core = ImaginationCore(_load(run, model, device), deterministic=deterministic)
        self.real = _RealStarts(self.core.spec)
        self.num_envs = num_envs
        self.single_observation_space = self.real.env.observation_space
        self.single_action_space = self.real.env.action_space
        self.observation_space = batch_space(self.single_observation_space, num_envs)
        self.action_space = batch_space(self.single_action_space, num_envs)
        self.timing = TimingSpec.parse(timing) if timing else None
        self.clip_actions = clip_actions
        self.max_episode_steps = max_episode_steps or self.real.max_episode_steps
        self._rngs: list[np.random.Generator] = [
            seeding.np_random(None)[0] for _ in range(num_envs)
        ]
        self._noise = RowStreams([torch.Generator() for _ in range(num_envs)])
        self._state: torch.Tensor | None = None

    def _start(self, i: int, seed: int | None) -> Context:
        if seed is not None:
            self._rngs[i] = seeding.np_random(seed)[0]
        ctx, _ = self.real.start(self._rngs[i])
        self._noise.reseed(i, _generator(self._rngs[i]))
        return ctx

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
        contexts = [self._start(i, s) for i, s in enumerate(seeds)]
        self._state = self.core.encode(contexts, self._noise)
        self._obs = np.stack([c.obs[-1] for c in contexts])
        self._t = np.zeros(self.num_envs)
        self._steps = np.zeros(self.num_envs, dtype=np.int64)
        return self._obs.copy(), {}

    def step(
        self, actions: Any
    ) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, dict[str, Any]]:
        if self._state is None:
            raise RuntimeError("call reset() before step()")
        if not _is_real(actions, scalar=False):
            raise TypeError(f"actions must be an array of real numbers, got {actions!r:.60}")
        a = _check_actions(
            np.asarray(actions, dtype=np.float64), self.single_action_space, self.clip_actions
        )
        if a.shape[0] != self.num_envs:
            raise ValueError(f"actions for {a.shape[0]} envs, expected {self.num_envs}")
        if self.timing is None:
            dt = np.full(self.num_envs, self.real.dt)
        else:
            dt = (
                np.array([self.timing.sample(r, self.real.frame_skip) for r in self._rngs])
                * self.real.physics_dt
            )
        state, obs, reward, term, div, terms = self.core.step(
            self._state, self._obs, a, dt, self._noise
        )
        self._steps += 1
        self._t += dt
        trunc = (
            ~term & (self._steps >= self.max_episode_steps)
            if self.max_episode_steps
            else np.zeros_like(term)
        )
        infos: dict[str, Any] = {"t": self._t.copy(), "dt": dt, "model_diverged": div, **terms}
        done = np.flatnonzero(term | trunc)
        if len(done):
            for i in done:
                infos = self._add_info(
                    infos,
                    {
                        "final_obs": obs[i].copy(),
                        "final_info": {"t": self._t[i], "model_diverged": bool(div[i])},
                    },
                    int(i),
                )
            contexts = [self._start(int(i), None) for i in done]
            state[torch.as_tensor(done)] = self.core.encode(contexts, self._noise.rows(done))
            obs[done] = np.stack([c.obs[-1] for c in contexts])
            self._steps[done] = 0
            self._t[done] = 0.0
        self._state, self._obs = state, obs
        return obs.copy(), reward, term, trunc, infos

    def close_extras(self, **kwargs: Any) -> None:
        self.real.env.close()


class SB3VecEnv(SB3BaseVecEnv):
    """An :class:`ImaginedVectorEnv` as a stable-baselines3 ``VecEnv``: ``reset() -> obs``,
    ``step_wait() -> (obs, rewards, dones, infos)`` with ``infos[i]["terminal_observation"]``
    and ``"TimeLimit.truncated"`` on finished episodes."""

    def __init__(self, venv: ImaginedVectorEnv) -> None:
        self.venv = venv
        super().__init__(venv.num_envs, venv.single_observation_space, venv.single_action_space)
        self._actions: np.ndarray | None = None

    def reset(self) -> np.ndarray:
        seed = None if self._seeds[0] is None else [int(s) for s in self._seeds]
        obs, _ = self.venv.reset(seed=seed)
        self._reset_seeds()
        return obs

    def step_async(self, actions: np.ndarray) -> None:
        self._actions = actions

    def step_wait(self) -> tuple[np.ndarray, np.ndarray, np.ndarray, list[dict[str, Any]]]:
        obs, reward, term, trunc, infos = self.venv.step(self._actions)
        dones = term | trunc
        out: list[dict[str, Any]] = [{} for _ in range(self.num_envs)]
        for i in np.flatnonzero(dones):
            out[i] = {
                "terminal_observation": infos["final_obs"][i],
                "TimeLimit.truncated": bool(trunc[i] and not term[i]),
            }
        return obs, reward.astype(np.float32), dones, out

    def close(self) -> None:
        self.venv.close()

    def get_attr(self, attr_name: str, indices: Any = None) -> list[Any]:
        return [getattr(self.venv, attr_name)] * len(self._get_indices(indices))

    def set_attr(self, attr_name: str, value: Any, indices: Any = None) -> None:
        setattr(self.venv, attr_name, value)

    def env_method(
        self, method_name: str, *args: Any, indices: Any = None, **kwargs: Any
    ) -> list[Any]:
        return [getattr(self.venv, method_name)(*args, **kwargs)] * len(self._get_indices(indices))

    def env_is_wrapped(self, wrapper_class: type, indices: Any = None) -> list[bool]:
        return [False] * len(self._get_indices(indices))
