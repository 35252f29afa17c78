"""Probabilistic MLP ensemble (PETS / MBPO style) of discrete-time delta models with dt input.

Each of ``E`` members maps ``(x, a, dt)`` (normalised observation, action, dt in model units)
to a Gaussian over ``x' - x``, with PETS's soft bounds on the log-variance. All members train
on the same recorded transitions (consecutive recorded points of each window, whatever the
observed fraction: this model is fully observed) from different initialisations.

Prediction on a batch walks forward through each window's own points: a context observation
resets the state, other points are predicted by stepping the member from the previous point
(points before the first context point repeat it). ``predict`` gives one rollout per member.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from worldmodel.batching import Batch
from worldmodel.models.base import Generators, ModelConfig, Prediction, WorldModel, randn_rows


class EnsembleLinear(nn.Module):
    """``E`` independent linear layers applied as one batched matmul: ``(E, N, i) -> (E, N, o)``."""

    def __init__(self, members: int, inp: int, out: int) -> None:
        super().__init__()
        self.weight = nn.Parameter(torch.empty(members, inp, out))
        self.bias = nn.Parameter(torch.zeros(members, 1, out))
        bound = inp**-0.5  # torch.nn.Linear's default initialisation
        nn.init.uniform_(self.weight, -bound, bound)

    def forward(self, x: torch.Tensor, members: slice = slice(None)) -> torch.Tensor:
        """``x (E', N, i)`` through the members ``members`` (all by default; ``E'`` of them)."""
        return torch.baddbmm(self.bias[members], x, self.weight[members])


class MLPEnsemble(WorldModel):
    """``mlp-ensemble``; state: the normalised observation ``(N, obs_dim)``."""

    name = "mlp-ensemble"
    # interpolation only re-reads observed points (0 error at p = 1): select on extrapolation
    scored_modes = ("extrap",)

    def __init__(self, obs_dim: int, act_dim: int, config: ModelConfig) -> None:
        super().__init__(obs_dim, act_dim, config)
        E, H = config.ensemble_size, config.ensemble_units
        dims = [obs_dim + act_dim + 1] + [H] * config.ensemble_layers
        self.layers = nn.ModuleList(EnsembleLinear(E, i, o) for i, o in zip(dims[:-1], dims[1:]))
        self.head = EnsembleLinear(E, H, 2 * obs_dim)
        self.max_logvar = nn.Parameter(torch.full((1, 1, obs_dim), 0.5))
        self.min_logvar = nn.Parameter(torch.full((1, 1, obs_dim), -10.0))

    def forward_members(
        self, x: torch.Tensor, a: torch.Tensor, dt: torch.Tensor, members: slice = slice(None)
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """``x (E, N, O)``, ``a (E, N, A)``, ``dt (E, N)`` model units -> mean, log-variance of
        the next normalised observation, each ``(E, N, O)``; ``members``: a slice of ``E`` of
        the ensemble's members (all by default)."""
        h = torch.cat([x, a, dt.unsqueeze(-1)], -1)
        for layer in self.layers:
            h = F.silu(layer(h, members))
        delta, logvar = self.head(h, members).chunk(2, -1)
        logvar = self.max_logvar - F.softplus(self.max_logvar - logvar)
        logvar = self.min_logvar + F.softplus(logvar - self.min_logvar)
        return x + delta, logvar

    def all_members(
        self, x: torch.Tensor, a: torch.Tensor, dt: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """Every member on the same ``x (N, O)``, ``a (N, A)``, ``dt (N,)`` seconds: mean and
        log-variance ``(E, N, O)`` (:meth:`forward_members`)."""
        E = self.config.ensemble_size
        return self.forward_members(
            x.expand(E, *x.shape), a.expand(E, *a.shape), self.tau(dt).expand(E, *dt.shape)
        )

    @staticmethod
    def transitions(batch: Batch) -> tuple[torch.Tensor, ...]:
        """Consecutive recorded points of every window: ``x, a, dt (s), x'`` flattened."""
        B, U = batch.exists.shape
        idx = torch.arange(U, device=batch.exists.device).expand(B, U)
        nxt = torch.where(batch.exists, idx, U).flip(1).cummin(1).values.flip(1)  # next index >= u
        after = torch.cat([nxt[:, 1:], torch.full_like(nxt[:, :1], U)], 1)  # next index > u
        valid = batch.exists & (after < U)
        b, u = valid.nonzero(as_tuple=True)
        v = after[b, u]
        return (
            batch.obs[b, u],
            batch.actions[b, u],
            batch.times[v] - batch.times[u],
            batch.obs[b, v],
        )

    def loss(self, batch: Batch) -> tuple[torch.Tensor, dict[str, float]]:
        x, a, dt, y = self.transitions(batch)
        mean, logvar = self.all_members(x, a, dt)
        nll = (((mean - y) ** 2) * torch.exp(-logvar) + logvar).mean()
        loss = nll + 0.01 * (self.max_logvar.sum() - self.min_logvar.sum())
        mse = ((mean - y) ** 2).mean()
        return loss, {"loss": loss.item(), "nll": nll.item(), "mse_1step": mse.item()}

    def _walk(self, batch: Batch) -> tuple[torch.Tensor, torch.Tensor]:
        """Member-wise walk over each window's own points (see module docstring):
        means and stds ``(E, B, U, O)`` on the batch grid."""
        E = self.config.ensemble_size
        own = batch.own_steps()
        B, K = own.pos.shape
        ctx = own.context
        x = own.gather(batch.obs)
        dt = self.tau(own.dt)
        first = (
            torch.where(ctx, torch.arange(K, device=ctx.device).expand(B, K), K)
            .amin(1)
            .clamp(max=K - 1)
        )
        state = x[torch.arange(B), first].expand(E, B, self.obs_dim)
        var = torch.zeros_like(state)
        means, stds = [], []
        for k in range(K):
            if k > 0:
                mean, logvar = self.forward_members(
                    state, own.actions[:, k - 1].expand(E, B, -1), dt[:, k - 1].expand(E, B)
                )
                upd = (own.valid[:, k] & (first < k)).view(1, B, 1)
                state = torch.where(upd, mean, state)
                var = torch.where(upd, logvar.exp(), var)
            c = ctx[:, k].view(1, B, 1)
            state = torch.where(c, x[:, k].expand(E, B, self.obs_dim), state)
            var = torch.where(c, torch.zeros_like(var), var)
            means.append(state)
            stds.append(var.sqrt().clamp(min=self.config.min_std))
        return own.to_grid(torch.stack(means, 2)), own.to_grid(torch.stack(stds, 2))

    def predict(self, batch: Batch, samples: int = 1) -> Prediction:
        mean, std = self._walk(batch)
        return Prediction(mean, std)

    def encode(
        self, batch: Batch, samples: int = 1, *, mean: bool = False, generator: Generators = None
    ) -> torch.Tensor:
        last = batch.last_context().clamp(min=0)
        x = batch.obs[torch.arange(batch.size), last]
        return x.unsqueeze(0).expand(samples, *x.shape).contiguous()

    def step(
        self, state: torch.Tensor, action: torch.Tensor, dt: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """Ensemble-mean step (deterministic); see :meth:`sample_step` for a stochastic one."""
        mean, _ = self.all_members(state, action, dt)
        nxt = self.bound_obs(mean.mean(0))
        return nxt, nxt

    def member_spread(
        self, state: torch.Tensor, action: torch.Tensor, dt: torch.Tensor
    ) -> torch.Tensor:
        """How much the members disagree on the next observation from ``state (N, O)`` under
        ``action (N, A)`` held ``dt (N,)`` seconds: the std over members of their means,
        normalised units, averaged over dimensions, ``(N,)`` (the epistemic part of the
        ensemble's uncertainty)."""
        if self.config.ensemble_size < 2:
            raise ValueError(f"{self.name} has one member: there is no disagreement to measure")
        mean, _ = self.all_members(state, action, dt)
        return mean.std(0).mean(-1)

    def sample_step(
        self,
        state: torch.Tensor,
        action: torch.Tensor,
        dt: torch.Tensor,
        generator: Generators = None,
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """MBPO-style step: a random member per row, plus its Gaussian noise (``generator``:
        one, or one per row, so that row ``i`` depends on its own generator only)."""
        E, N = self.config.ensemble_size, state.shape[0]
        u = randn_rows((N, self.obs_dim + 1), generator, like=state)  # column 0 picks the member
        pick = (torch.special.ndtr(u[:, 0]) * E).long().clamp(max=E - 1)
        # each row through its own member only (1/E of the work of running all of them)
        m, lv = torch.empty_like(state), torch.empty_like(state)
        tau = self.tau(dt)
        for e in pick.unique().tolist():
            rows = (pick == e).nonzero().squeeze(1)
            me, lve = self.forward_members(
                state[rows][None], action[rows][None], tau[rows][None], slice(e, e + 1)
            )
            m[rows], lv[rows] = me[0], lve[0]
        nxt = self.bound_obs(m + u[:, 1:] * (0.5 * lv).exp())
        return nxt, nxt


class MLPDelta(MLPEnsemble):
    """``mlp-delta``: one deterministic delta MLP ``(x, a, dt) -> x'`` trained on one-step
    squared error (the plain discrete-time baseline; the ensemble's network with one member)."""

    name = "mlp-delta"

    def __init__(self, obs_dim: int, act_dim: int, config: ModelConfig) -> None:
        from dataclasses import replace

        super().__init__(obs_dim, act_dim, replace(config, ensemble_size=1))

    def loss(self, batch: Batch) -> tuple[torch.Tensor, dict[str, float]]:
        x, a, dt, y = self.transitions(batch)
        mean, _ = self.all_members(x, a, dt)  # the one member
        mse = ((mean - y) ** 2).mean()
        return mse, {"loss": mse.item(), "mse_1step": mse.item()}

    def sample_step(
        self,
        state: torch.Tensor,
        action: torch.Tensor,
        dt: torch.Tensor,
        generator: Generators = None,
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """Deterministic: the same as :meth:`step`."""
        return self.step(state, action, dt)
