"""Deterministic filtering baselines: ODE-RNN and GRU-Δt.

A hidden state ``h`` runs forward in time over the batch grid. Between grid points it follows
a transition under the held action (``ode-rnn``: ``dh/dt = f(h, a)`` solved by torchdiffeq;
``gru-dt``: one GRU step with ``(a, dt)`` as input, the paper's "RNN Δt"); at a context
observation a GRU folds it in. The prediction at a grid point decodes ``h`` *before* the
observation there is folded in (the original code shifts its filters' outputs by one point for
the same reason), so a filter never scores a point it has just been shown; ``encode`` returns the
state after the last context observation.
"""

from __future__ import annotations

import torch
from torch import nn

from worldmodel.batching import Batch
from worldmodel.models.base import (
    Generators,
    ModelConfig,
    Prediction,
    WorldModel,
    gaussian_logpdf,
    masked_mse,
    mlp,
)
from worldmodel.models.integrate import step_zoh
from worldmodel.models.latent import ActionField, GRUTransition


class FilterModel(WorldModel):
    """Shared skeleton of ``ode-rnn`` and ``gru-dt`` (state: ``h (N, latent_dim)``)."""

    def __init__(self, obs_dim: int, act_dim: int, config: ModelConfig) -> None:
        super().__init__(obs_dim, act_dim, config)
        H = self.latent_dim
        self.update = nn.GRUCell(obs_dim, H)
        out = obs_dim if config.obs_std is not None else 2 * obs_dim  # mean (and raw std)
        self.decoder = mlp(H, config.dec_units, 1 if config.dec_units else 0, out)

    def transition(self, h: torch.Tensor, a: torch.Tensor, dt: torch.Tensor) -> torch.Tensor:
        """``h (N, H)``, held ``a (N, A)``, ``dt (N,)`` model units -> ``h``."""
        raise NotImplementedError

    def _decode(self, h: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Mean and std ``(N, O)``: the std is ``config.obs_std`` when fixed, else predicted."""
        if self.config.obs_std is not None:
            mean = self.decoder(h)
            return mean, torch.full_like(mean, max(self.config.obs_std, self.config.min_std))
        mean, raw = self.decoder(h).chunk(2, -1)
        std = torch.nn.functional.softplus(raw) + self.config.min_std
        return mean, std

    def _run(self, batch: Batch) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """Filter each window over its own points: predicted means and stds ``(B, U, O)`` (each
        from the state before that point's own observation), and hidden states ``(B, U, H)``
        after it, on the batch grid."""
        own = batch.own_steps()
        B, K = own.pos.shape
        ctx = own.context
        x = own.gather(batch.obs)
        dt = self.tau(own.dt)
        h = batch.obs.new_zeros(B, self.latent_dim)
        means, stds, hs = [], [], []
        for k in range(K):
            if k > 0:
                moved = self.transition(h, own.actions[:, k - 1], dt[:, k - 1])
                h = torch.where(own.valid[:, k : k + 1], moved, h)
            mean, std = self._decode(h)  # before the observation at k is folded in
            means.append(mean)
            stds.append(std)
            if bool(ctx[:, k].any()):
                h = torch.where(ctx[:, k : k + 1], self.update(x[:, k], h), h)
            hs.append(h)
        grid = own.to_grid
        return grid(torch.stack(means, 1)), grid(torch.stack(stds, 1)), grid(torch.stack(hs, 1))

    def loss(self, batch: Batch) -> tuple[torch.Tensor, dict[str, float]]:
        mean, std, _ = self._run(batch)
        mask = batch.target.to(mean.dtype)
        n = (mask.sum(1) * self.obs_dim).clamp(min=1)
        nll = -((gaussian_logpdf(batch.obs, mean, std).sum(-1) * mask).sum(-1) / n).mean()
        with torch.no_grad():
            mse = masked_mse(mean, batch.obs, batch.target)
        return nll, {"loss": nll.item(), "nll": nll.item(), "mse": mse.item()}

    def predict(self, batch: Batch, samples: int = 1) -> Prediction:
        mean, std, _ = self._run(batch)
        return Prediction(
            mean.unsqueeze(0).expand(samples, *mean.shape),
            std.unsqueeze(0).expand(samples, *std.shape),
        )

    def encode(
        self, batch: Batch, samples: int = 1, *, mean: bool = False, generator: Generators = None
    ) -> torch.Tensor:
        _, _, hs = self._run(batch)
        last = batch.last_context().clamp(min=0)
        h = hs[torch.arange(batch.size), last]
        return h.unsqueeze(0).expand(samples, *h.shape).contiguous()

    def step_with_std(
        self, state: torch.Tensor, action: torch.Tensor, dt: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """The transition, then the decoded mean and std (the std depends on ``h``)."""
        h = self.transition(state, action, self.tau(dt).to(state.dtype))
        return h, *self._decode(h)

    def step(
        self, state: torch.Tensor, action: torch.Tensor, dt: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor]:
        h, mean, _ = self.step_with_std(state, action, dt)
        return h, mean


class ODERNN(FilterModel):
    """ODE-RNN (Rubanova et al. 2019) with the held action as an input of the ODE."""

    name = "ode-rnn"

    def __init__(self, obs_dim: int, act_dim: int, config: ModelConfig) -> None:
        super().__init__(obs_dim, act_dim, config)
        self.field = ActionField(self.latent_dim, act_dim, config.units, config.layers)

    def transition(self, h: torch.Tensor, a: torch.Tensor, dt: torch.Tensor) -> torch.Tensor:
        return step_zoh(self.field, h, a, dt, **self.solver_options())


class GRUDelta(FilterModel):
    """GRU with the time gap as an input (the paper's "RNN Δt")."""

    name = "gru-dt"

    def __init__(self, obs_dim: int, act_dim: int, config: ModelConfig) -> None:
        super().__init__(obs_dim, act_dim, config)
        self.gru = GRUTransition(self.latent_dim, act_dim)

    def transition(self, h: torch.Tensor, a: torch.Tensor, dt: torch.Tensor) -> torch.Tensor:
        return self.gru(h, a, dt)
