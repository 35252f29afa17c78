"""The batched core under every imagined env: the model and the task (:class:`ImaginationCore`,
after mbrl-lib's ``ModelEnv``), the real env that supplies start states (:class:`RealStarts`),
and ``N`` imagined episodes stepped together (:class:`ImaginedBatch`).

:class:`ImaginedBatch` holds all per-episode state and is the one place where an imagined step
is taken: actions checked and clipped, ``dt`` drawn from the timing, the model stepped, reward
and termination scored by the task, time and the excluded positions advanced. The Gymnasium
adapters (:mod:`envs.imagined.single`, :mod:`envs.imagined.vector`) are views on it: the single
env is a batch of one row.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import gymnasium as gym
import numpy as np
import torch

from envs.factory import EnvSpec, env_spec_of, make_env
from envs.imagined.checks import check_actions
from envs.timing import TimingSpec
from envs.wrappers import control_clock, default_dt, mujoco_base
from worldmodel.batching import Context, context_batch
from worldmodel.models import WorldModel
from worldmodel.models.base import Generators, RowStreams
from worldmodel.models.latent import has_vector_field, hidden_precision

PRECISIONS = {"fp32": None, "bf16": torch.bfloat16}  # ImaginationCore's precision choices


def load_model(run: str | Path | None, model: WorldModel | None, device: str) -> WorldModel:
    """The model of ``run`` (a run directory) or ``model`` itself, in eval mode (exactly one)."""
    if (run is None) == (model is None):
        raise ValueError("give exactly one of run (a run directory) or model (a loaded WorldModel)")
    if model is None:
        from worldmodel.train import load

        model = load(run, device=device)
    if not getattr(model, "env_id", None):
        raise ValueError("the model has no env_id: load it with worldmodel.load(run_dir)")
    return model.eval()


class ImaginationCore:
    """Batched imagination without episode state: ``N`` given model states stepped together.

    Args:
        model: a trained model (``worldmodel.load``); its run's env spec picks the task.
        deterministic: use the belief's mean at encoding, and the ensemble's mean step.
        spec: the env (default: the one the model's data was collected in, from its run).
        precision: ``"bf16"`` runs the hidden layers of an ODE model's vector field
            (latent-ode, ode-rnn; refused for others) in bfloat16 when stepping
            (:func:`worldmodel.models.latent.hidden_precision`; the state update stays
            float32): faster on CPUs with bf16 matrix units, at the open-loop error
            ``benchmarks/imagination.py --accuracy`` measures. ``"fp32"``: as trained.

    Raises:
        ValueError: an env without a task in :mod:`envs.tasks` (the supported ids are listed);
            an unknown precision, or bf16 for a model without a vector field.
    """

    def __init__(
        self,
        model: WorldModel,
        *,
        deterministic: bool = False,
        spec: EnvSpec | None = None,
        precision: str = "fp32",
    ) -> None:
        if precision not in PRECISIONS:
            raise ValueError(
                f"unknown precision {precision!r}; expected one of {sorted(PRECISIONS)}"
            )
        if PRECISIONS[precision] is not None and not has_vector_field(model):
            raise ValueError(
                f"precision {precision!r} applies to the ODE models' vector field; "
                f"{model.name} has none (use 'fp32')"
            )
        self.hidden_dtype = PRECISIONS[precision]
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
        with hidden_precision(self.model, self.hidden_dtype):
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


class RealStarts:
    """A real env, built as the data's was, that supplies initial states, spaces and dt."""

    def __init__(self, spec: EnvSpec) -> None:
        self.env = make_env(spec.replace(timing="fixed", max_episode_steps=None))
        self.frame_skip, self.physics_dt = control_clock(self.env)
        self.dt = default_dt(self.env)
        base = mujoco_base(self.env)
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


def _generator(rng: np.random.Generator) -> torch.Generator:
    return torch.Generator().manual_seed(int(rng.integers(2**63 - 1)))


@dataclass
class Transition:
    """What one step of ``N`` rows gave: ``obs (N, obs_dim)`` float64 (the batch's own array:
    copy it before handing it out), ``reward (N,)``, ``terminated (N,)`` (a diverged row is
    terminated), ``diverged (N,)``, ``dt (N,)`` seconds and the task's reward ``terms``."""

    obs: np.ndarray
    reward: np.ndarray
    terminated: np.ndarray
    diverged: np.ndarray
    dt: np.ndarray
    terms: dict[str, np.ndarray]


class ImaginedBatch:
    """``n`` imagined episodes stepped together; the Gymnasium adapters view its rows.

    Per row it holds the model state ``state (n, D)``, the observation ``obs (n, obs_dim)``, the
    time ``t (n,)`` [s] on the context's clock (0 at a real start), the steps taken
    ``steps (n,)``, the excluded positions ``pos (n, k)`` (x; Swimmer, Ant: x, y), integrated
    from their predicted velocities, and a latent noise stream. Random numbers (start states,
    latent seeds, dt) come from the per-row ``numpy`` generators the caller passes, so each
    adapter keeps Gymnasium's seeding.

    Args:
        model: a loaded world model (:func:`load_model`).
        n: the number of rows.
        deterministic: mean latent state instead of a sample (and the ensemble's mean step).
        timing: draw each step's dt as in :class:`envs.IrregularTiming` (None: the real dt).
        clip_actions: clip out-of-bounds actions (else raise ``ValueError``).
        precision: ``"fp32"`` or ``"bf16"`` (:class:`ImaginationCore`).
    """

    def __init__(
        self,
        model: WorldModel,
        n: int,
        *,
        deterministic: bool = False,
        timing: str | None = None,
        clip_actions: bool = True,
        precision: str = "fp32",
    ) -> None:
        self.core = ImaginationCore(model, deterministic=deterministic, precision=precision)
        self.real = RealStarts(self.core.spec)
        env = self.real.env
        dims = {"observations": (model.obs_dim, env.observation_space.shape)}
        dims["actions"] = (model.act_dim, env.action_space.shape)
        for what, (ours, theirs) in dims.items():
            if theirs != (ours,):
                raise ValueError(f"model {what} have {ours} dims, {self.core.env_id} has {theirs}")
        self.n = n
        self.timing = TimingSpec.parse(timing) if timing else None
        self.clip_actions = clip_actions
        self.noise = RowStreams([torch.Generator() for _ in range(n)])
        self.state: torch.Tensor | None = None  # None until the first start of every row
        k = self.core.task.excluded_positions
        self.obs = np.zeros((n, model.obs_dim))
        self.t, self.steps, self.pos = np.zeros(n), np.zeros(n, dtype=np.int64), np.zeros((n, k))

    def start(
        self,
        rows: Sequence[int],
        rngs: Sequence[np.random.Generator],
        given: Sequence[tuple[Context, float] | None] | None = None,
    ) -> None:
        """(Re)start the episodes of ``rows``: from ``given[i] = (context, x)``, or from the real
        env's initial state drawn with ``rngs[i]``; row ``rows[i]``'s latent stream is reseeded
        from ``rngs[i]``. Starting every row replaces ``state``; otherwise its rows are written."""
        rows = [int(r) for r in rows]
        starts = []
        for i, (row, rng) in enumerate(zip(rows, rngs, strict=True)):
            start = given[i] if given is not None else None
            ctx, x = start if start is not None else self.real.start(rng)
            self.pos[row] = 0.0
            if self.pos.shape[1]:
                self.pos[row, 0] = x
            self.noise.reseed(row, _generator(rng))
            starts.append(ctx)
        z = self.core.encode(starts, self.noise.rows(rows))
        if rows == list(range(self.n)):
            self.state = z
        else:
            self.state[torch.as_tensor(rows)] = z
        self.obs[rows] = np.stack([c.obs[-1] for c in starts])
        self.t[rows] = [c.t[-1] for c in starts]
        self.steps[rows] = 0

    def draw_dt(self, rngs: Sequence[np.random.Generator]) -> np.ndarray:
        """``(len(rngs),)`` step lengths [s]: the real env's dt, or drawn from the timing with
        one generator per row."""
        if self.timing is None:
            return np.full(len(rngs), self.real.dt)
        substeps = [self.timing.sample(r, self.real.frame_skip) for r in rngs]
        return np.array(substeps) * self.real.physics_dt

    def check_actions(self, actions: np.ndarray) -> np.ndarray:
        """``(N, act_dim)`` float actions checked and clipped into the action space."""
        return check_actions(actions, self.real.env.action_space, self.clip_actions)

    def check_started(self) -> None:
        """Refuse to step before the first start (a ``RuntimeError``)."""
        if self.state is None:
            raise RuntimeError("call reset() before step()")

    def step(self, actions: np.ndarray, dt: np.ndarray) -> Transition:
        """Step every row holding checked ``actions (n, act_dim)`` for ``dt (n,)`` seconds."""
        self.check_started()
        state, obs, reward, term, div, terms = self.core.step(
            self.state, self.obs, actions, dt, self.noise
        )
        self.state, self.obs = state, obs
        self.t += dt
        self.steps += 1
        vi, k = self.core.task.x_velocity_index, self.pos.shape[1]
        self.pos += dt[:, None] * obs[:, vi : vi + k]  # qvel[0:k] are the velocities of qpos[0:k]
        return Transition(obs, reward, term, div, dt, terms)


class BatchView:
    """What the Gymnasium adapters share: the :class:`ImaginedBatch` they view (``batch``), its
    core (the model and the task) and its real env (start states, spaces, dt)."""

    batch: ImaginedBatch

    @property
    def core(self) -> ImaginationCore:
        return self.batch.core

    @property
    def real(self) -> RealStarts:
        return self.batch.real
