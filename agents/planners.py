"""Sampling-based model-predictive planners: CEM and MPPI over a batched objective.

A planner maximises ``objective(actions) -> returns``: ``actions (N, H, act_dim)`` candidate
action sequences, ``returns (N,)``. :func:`model_objective` builds that objective from a world
model (its batched ``step``) and the task's reward and termination, with ``particles`` latent
samples per candidate; any other batched function works too (tests use a closed form).

Both planners keep their mean plan between calls and shift it by one step (warm start). Their
settings, :class:`PlannerConfig`, live in :mod:`agents.config` (importable from here too).
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import torch

from agents.config import PlannerConfig

Objective = Callable[[torch.Tensor], torch.Tensor]


class Planner:
    """Base: a Gaussian over action sequences, refined by :meth:`refit`."""

    name = "planner"

    def __init__(
        self,
        low: torch.Tensor,
        high: torch.Tensor,
        config: PlannerConfig | None = None,
        generator: torch.Generator | None = None,
    ) -> None:
        self.config = config or PlannerConfig()
        c = self.config
        c.check()
        self.low, self.high = (
            torch.as_tensor(low, dtype=torch.float32),
            torch.as_tensor(high, dtype=torch.float32),
        )
        self.generator = generator
        self.reset()

    def reset(self) -> None:
        """Forget the warm-start plan (call at every episode start)."""
        H = self.config.horizon
        self.mean = ((self.low + self.high) / 2).expand(H, -1).clone()

    def _std0(self) -> torch.Tensor:
        return (self.high - self.low) / 2 * self.config.init_std

    def plan(self, objective: Objective, start: torch.Tensor | None = None) -> torch.Tensor:
        """The first action ``(act_dim,)`` of the best plan found, searching from ``start``
        ``(H, act_dim)`` (e.g. a policy's actions along the predicted states; scored first,
        as the mean always is) or else from the warm-started previous plan."""
        c = self.config
        mean = (self.mean if start is None else start.to(self.mean.dtype)).clone()
        if mean.shape != self.mean.shape:
            raise ValueError(f"start must be (horizon, act_dim) {tuple(self.mean.shape)}")
        mean = torch.maximum(torch.minimum(mean, self.high), self.low)
        std = self._std0().expand_as(self.mean).clone()
        for _ in range(c.iterations):
            eps = torch.randn((c.population, *mean.shape), generator=self.generator)
            cand = torch.maximum(torch.minimum(mean + std * eps, self.high), self.low)
            cand[0] = mean  # always score the current mean
            returns = objective(cand)
            new_mean, new_std = self.refit(cand, returns)
            mean = c.momentum * mean + (1 - c.momentum) * new_mean
            std = c.momentum * std + (1 - c.momentum) * new_std
        first = mean[0].clone()
        if c.warm_start:
            self.mean = torch.cat([mean[1:], mean[-1:]])
        return first

    def refit(
        self, candidates: torch.Tensor, returns: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor]:
        raise NotImplementedError


class CEM(Planner):
    """Cross-entropy method: refit the Gaussian to the ``elites`` best candidates."""

    name = "cem"

    def refit(
        self, candidates: torch.Tensor, returns: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor]:
        k = min(self.config.elites, candidates.shape[0])
        elite = candidates[torch.topk(torch.nan_to_num(returns, nan=-torch.inf), k).indices]
        return elite.mean(0), elite.std(0, unbiased=False)


class MPPI(Planner):
    """Model-predictive path integral: the softmax(returns / temperature)-weighted mean."""

    name = "mppi"

    def refit(
        self, candidates: torch.Tensor, returns: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor]:
        r = torch.nan_to_num(returns, nan=-torch.inf)
        w = torch.softmax((r - r.max()) / self.config.temperature, 0)
        mean = (w[:, None, None] * candidates).sum(0)
        var = (w[:, None, None] * (candidates - mean) ** 2).sum(0)
        return mean, var.sqrt()


PLANNERS: dict[str, type[Planner]] = {"cem": CEM, "mppi": MPPI}


def make_planner(
    name: str,
    low,
    high,
    config: PlannerConfig | None = None,
    generator: torch.Generator | None = None,
) -> Planner:
    """A planner by name; an unknown name raises ``ValueError`` listing the valid ones."""
    if name not in PLANNERS:
        raise ValueError(f"unknown planner {name!r}; expected one of {sorted(PLANNERS)}")
    return PLANNERS[name](low, high, config, generator)


def model_objective(
    model,
    task,
    state: torch.Tensor,
    obs: torch.Tensor,
    dt: float,
    particles: int = 1,
    generator: torch.Generator | None = None,
    terminal: Callable[[torch.Tensor], torch.Tensor] | None = None,
    discount: float = 0.99,
) -> Objective:
    """Returns of candidate action sequences under a world model.

    Args:
        model: a :class:`worldmodel.models.WorldModel` (its batched ``step``).
        task: an :class:`envs.tasks.Task` (torch reward and termination).
        state: ``(P, D)`` model states (``P`` latent samples of the belief; reused cyclically
            when ``particles`` differs).
        obs: ``(obs_dim,)`` current real observation.
        dt: seconds each action is held.
        generator: draws of a stochastic model's steps.
        terminal: a value of the last predicted observation ``(M, obs_dim)`` float64 ->
            ``(M,)`` (e.g. a SAC critic, :func:`agents.policies.critic_value`): added, times
            ``discount ** H``, to the return of every particle that has not terminated (TD-MPC's
            terminal value: the plan sees past its horizon).

    With ``particles > 1`` and a model that has a ``sample_step`` (the ensemble: a random member
    per particle and step plus its noise, PETS's TS1 sampling), each particle follows its own
    sampled trajectory and a candidate's return is the mean over them; otherwise the model's
    mean ``step`` (particles then differ only through their latent samples in ``state``).

    Everything the model and the task see is on the model's device (a CUDA model gets CUDA
    tensors); the candidates and the returns stay where the planner keeps them.
    """
    device = next(model.parameters()).device
    state = state.to(device)
    sample = getattr(model, "sample_step", None) if particles > 1 else None

    @torch.no_grad()
    def objective(actions: torch.Tensor) -> torch.Tensor:
        N, H, _ = actions.shape
        P = particles
        idx = torch.arange(N * P, device=device) % state.shape[0]
        s = state[idx]
        a_all = actions.to(device=device, dtype=state.dtype).repeat_interleave(P, 0)
        d = torch.full((N * P,), float(dt), dtype=state.dtype, device=device)
        nxt = []
        for h in range(H):
            if sample is not None:
                s, o_norm = sample(s, a_all[:, h], d, generator)
            else:
                s, o_norm = model.step(s, a_all[:, h], d)
            nxt.append(model.denormalize(o_norm).to(torch.float64))
        o = obs.to(device=device, dtype=torch.float64).expand(N * P, -1)
        total = plan_returns(task, o, a_all, torch.stack(nxt, 1), dt, terminal, discount)
        return total.view(N, P).mean(1).to(device=actions.device, dtype=torch.float32)

    return objective


def plan_returns(
    task,
    obs: torch.Tensor,
    actions: torch.Tensor,
    next_obs: torch.Tensor,
    dt: float,
    terminal: Callable[[torch.Tensor], torch.Tensor] | None = None,
    discount: float = 0.99,
) -> torch.Tensor:
    """Undiscounted task returns ``(M,)`` float64 of ``M`` predicted trajectories: ``obs (M,
    obs_dim)`` the start, ``actions (M, H, act_dim)``, ``next_obs (M, H, obs_dim)`` the
    observation after each action held ``dt`` seconds. A trajectory stops scoring at its first
    terminal or non-finite step; ``terminal`` (see :func:`model_objective`) adds ``discount **
    H`` times its value of the last observation to those still alive."""
    M, H, _ = actions.shape
    d = torch.full((M,), float(dt), dtype=torch.float64, device=obs.device)
    total = torch.zeros(M, dtype=torch.float64, device=obs.device)
    alive = torch.ones(M, dtype=torch.bool, device=obs.device)
    o = obs
    for h in range(H):
        nxt, a64 = next_obs[:, h], actions[:, h].to(torch.float64)
        r, _ = task.reward(o, a64, nxt, d)
        total += torch.where(alive, torch.nan_to_num(r, nan=0.0), torch.zeros_like(r))
        alive &= ~task.terminated(o, a64, nxt, d) & torch.isfinite(nxt).all(-1)
        o = nxt
    if terminal is not None:
        v = terminal(o).to(device=obs.device, dtype=torch.float64)
        total += torch.where(alive, discount**H * torch.nan_to_num(v, nan=0.0), 0.0)
    return total


def simulator_objective(
    env,
    task,
    obs: np.ndarray,
    substeps: int,
    terminal: Callable[[torch.Tensor], torch.Tensor] | None = None,
    discount: float = 0.99,
) -> Objective:
    """Returns of candidate action sequences under the real simulator from ``env``'s current
    physics state (MuJoCo's batched ``rollout``, one thread), scored exactly as
    :func:`model_objective` scores a model's predictions: MPC with a perfect model, the
    ceiling of a planner at its settings.

    Args:
        env: the real MuJoCo env (any wrappers), at the state the plan starts from.
        task: its :class:`envs.tasks.Task` (rebuilds observations from physics states).
        obs: ``(obs_dim,)`` the env's current observation (checked against the rebuilt one).
        substeps: physics steps each action is held.

    Raises:
        ValueError: an env whose observation the task cannot rebuild from its physics state.
    """
    import mujoco
    from mujoco import rollout

    from envs.wrappers import mujoco_base

    base = mujoco_base(env)
    m, data = base.model, base.data
    nq, nv = m.nq, m.nv
    full = mujoco.mjtState.mjSTATE_FULLPHYSICS
    state = np.empty(mujoco.mj_stateSize(m, full))
    mujoco.mj_getState(m, data, state, full)
    warmstart = data.qacc_warmstart.copy()  # what the env's next mj_step starts from
    start = task.obs_from_state(data.qpos, data.qvel)
    if not np.allclose(start, obs, rtol=0.0, atol=1e-9):
        raise ValueError(
            f"simulator planning: {task.env_id}'s observation is not rebuilt from its physics "
            "state (qpos without the excluded positions, then qvel)"
        )
    worker = mujoco.MjData(m)

    @torch.no_grad()
    def objective(actions: torch.Tensor) -> torch.Tensor:
        N, H, _ = actions.shape
        ctrl = np.repeat(actions.double().cpu().numpy(), substeps, axis=1)
        states, _ = rollout.rollout(m, worker, state[None], ctrl, initial_warmstart=warmstart[None])
        after = states[:, substeps - 1 :: substeps]  # (N, H, nstate): time, qpos, qvel, ...
        nxt = task.obs_from_state(after[..., 1 : 1 + nq], after[..., 1 + nq : 1 + nq + nv])
        # after a MuJoCo warning a rollout repeats its last state: not a live trajectory
        frozen = np.diff(states[..., 0], axis=1, prepend=state[0]) <= 0  # (N, H * substeps)
        stopped = frozen.reshape(N, H, substeps).any(-1)
        nxt[np.cumsum(stopped, axis=1) > 0] = np.nan  # scored as ended there
        o = torch.as_tensor(start, dtype=torch.float64).expand(N, -1)
        dt = substeps * float(m.opt.timestep)
        total = plan_returns(task, o, actions, torch.as_tensor(nxt), dt, terminal, discount)
        return total.to(device=actions.device, dtype=torch.float32)

    return objective
