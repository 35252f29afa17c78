"""Latent-variable world models: the action-conditioned Latent ODE and the RNN-VAE.

Generative model (Rubanova, Chen & Duvenaud 2019, extended with controls):
``z0 ~ N(0, I)``; ``dz/dt = f(z, a(t))`` with zero-order-hold actions (latent-ode) or a GRU
stepping over each interval with ``(a, dt)`` as input (rnn-vae); ``x(t) ~ N(g(z(t)), s^2)``
with a learned per-dimension ``s``.

Recognition: an RNN runs *backward* in time over the context points of each window (inputs:
observation, mask, the action held from that point, the time gap) and gives
``q(z0) = N(mu, sigma)`` at the window's anchor: its start when interpolating, its last
observed point when extrapolating or encoding a context for imagination. Between context
points its hidden state is evolved by an autonomous ODE (``encoder="ode-rnn"``, Euler steps)
or kept (``"rnn"``).
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from contextlib import contextmanager

import torch
import torch.nn.functional as F
from torch import nn

from worldmodel._compat.torchdiffeq import FIXED_SOLVERS
from worldmodel.batching import Batch, OwnSteps
from worldmodel.models.base import (
    ACTIVATIONS,
    Generators,
    ModelConfig,
    Prediction,
    WorldModel,
    gaussian_logpdf,
    masked_mse,
    mlp,
    model_time,
    randn_rows,
)
from worldmodel.models.integrate import held_steps, odeint_zoh, step_zoh

ENCODERS = ("ode-rnn", "rnn")


class ActionField(nn.Module):
    """``f(z, a)``: an MLP of the latent state and the held action (``activation``: one of
    :data:`ACTIVATIONS`; ``dropout``: after each hidden layer, in training mode only)."""

    def __init__(
        self,
        dim: int,
        act_dim: int,
        units: int,
        layers: int,
        activation: str = "tanh",
        dropout: float = 0.0,
    ) -> None:
        super().__init__()
        if activation not in ACTIVATIONS:
            raise ValueError(
                f"unknown activation {activation!r}; expected one of {sorted(ACTIVATIONS)}"
            )
        self.net = mlp(dim + act_dim, units, layers, dim, ACTIVATIONS[activation], dropout)
        # the hidden layers cast to a lower precision (set by hidden_precision): a weight and
        # bias per linear layer, the activation (and dropout) modules as they are; None: as trained
        self.low: list[tuple[torch.Tensor, torch.Tensor] | nn.Module] | None = None

    def forward(self, z: torch.Tensor, a: torch.Tensor) -> torch.Tensor:
        x = torch.cat([z, a], -1)
        if self.low is None:
            return self.net(x)
        h = x.to(self.low[0][0].dtype) if self.low else x  # layers=0: no hidden layer
        for layer in self.low:
            h = F.linear(h, *layer) if isinstance(layer, tuple) else layer(h)
        return self.net[-1](h.to(x.dtype))


def has_vector_field(model: nn.Module) -> bool:
    """Whether ``model`` has an :class:`ActionField` (what :func:`hidden_precision` changes)."""
    return any(isinstance(m, ActionField) for m in model.modules())


@contextmanager
def hidden_precision(model: nn.Module, dtype: torch.dtype | None) -> Iterator[None]:
    """While inside, the hidden layers of every :class:`ActionField` in ``model`` (the ODE
    models' vector fields) compute in ``dtype`` (e.g. ``torch.bfloat16``; None: as trained)
    from copies of their weights made on entry; the output layers and the integrator's state
    update stay in the parameters' dtype. For imagination, not training (the copies do not
    follow weight updates)."""
    fields = [m for m in model.modules() if isinstance(m, ActionField)]
    before = [f.low for f in fields]
    try:
        for f in fields:
            f.low = None
            if dtype is not None:
                f.low = [
                    (m.weight.detach().to(dtype), m.bias.detach().to(dtype))
                    if isinstance(m, nn.Linear)
                    else m
                    for m in f.net[:-1]
                ]
        yield
    finally:
        for f, low in zip(fields, before):
            f.low = low


class GRUTransition(nn.Module):
    """Discrete transition ``z' = GRU([a, dt], z)`` (the RNN-VAE's generative model)."""

    def __init__(self, dim: int, act_dim: int) -> None:
        super().__init__()
        self.cell = nn.GRUCell(act_dim + 1, dim)

    def forward(self, z: torch.Tensor, a: torch.Tensor, dt: torch.Tensor) -> torch.Tensor:
        return self.cell(torch.cat([a, dt.reshape(-1, 1)], -1), z)


class Encoder(nn.Module):
    """ODE-RNN (or RNN) over each window's own context points toward its anchor
    (:meth:`Batch.anchor`) -> ``(mu, sigma)`` of z0 there.

    Each window's context points are gathered into a padded sequence, latest first when the
    anchor is the window's start (backward in time, as in the paper) and earliest first when it
    is the last context point (forward, a filter), so the loop runs over the largest number of
    context points in the batch, not over the union grid. Between points the hidden state
    follows ``dh/dt = g(h)`` by Euler steps of at most one model time unit (``ode-rnn``), or is
    kept (``rnn``); the GRU input is the observation, the action held from that point and the
    signed time gap.
    """

    def __init__(self, obs_dim: int, act_dim: int, latent: int, config: ModelConfig) -> None:
        super().__init__()
        if config.encoder not in ENCODERS:
            raise ValueError(f"unknown encoder {config.encoder!r}; expected one of {ENCODERS}")
        h = config.rec_dim
        self.kind, self.time_unit = config.encoder, config.time_unit
        self.cell = nn.GRUCell(obs_dim + act_dim + 1, h)
        self.ode = mlp(h, config.units, config.rec_layers, h) if self.kind == "ode-rnn" else None
        self.out = mlp(h, config.units, 1, 2 * latent)
        self.min_std = config.min_std

    def _evolve(self, h: torch.Tensor, gap: torch.Tensor) -> torch.Tensor:
        """Euler steps over per-row ``gap (B,)`` model units (negative: backward)."""
        longest = float(gap.abs().max())
        if self.ode is None or longest == 0.0:
            return h
        n = max(1, math.ceil(longest))
        step = (gap / n).unsqueeze(-1)
        for _ in range(n):
            h = h + step * self.ode(h)
        return h

    def forward(self, batch: Batch) -> tuple[torch.Tensor, torch.Tensor]:
        B, U = batch.context.shape
        K = max(1, int(batch.context.sum(1).max()))
        grid = model_time(batch.times, self.time_unit)
        idx = torch.arange(U, device=grid.device).expand(B, U)
        anchor = batch.anchor()
        # run toward the anchor: backward (latest first) when it is at or before the first
        # context point, forward (earliest first) when it is the last one
        fwd = (anchor == batch.last_context()).unsqueeze(1) & (
            batch.context.sum(1, keepdim=True) > 1
        )
        key = torch.where(batch.context, torch.where(fwd, U - 1 - idx, idx), -1)
        key = key.sort(1, descending=True).values[:, :K]  # (B, K)
        valid = key >= 0
        pos = torch.where(fwd, U - 1 - key, key).clamp(0, U - 1)
        t = grid[pos]
        x = batch.obs.gather(1, pos.unsqueeze(-1).expand(B, K, batch.obs.shape[-1]))
        a = batch.actions.gather(1, pos.unsqueeze(-1).expand(B, K, batch.actions.shape[-1]))
        h = batch.obs.new_zeros(B, self.cell.hidden_size)
        prev = t[:, 0]
        for k in range(K):
            m = valid[:, k]
            gap = torch.where(m, t[:, k] - prev, torch.zeros_like(prev))  # < 0 when backward
            h = self._evolve(h, gap)
            new = self.cell(torch.cat([x[:, k], a[:, k], gap.unsqueeze(-1)], -1), h)
            h = torch.where(m.unsqueeze(-1), new, h)
            prev = torch.where(m, t[:, k], prev)
        h = self._evolve(h, grid[anchor] - prev)
        mu, raw = self.out(h).chunk(2, -1)
        # no nan_to_num here: a non-finite input must reach the trainer's guard as such
        sigma = F.softplus(raw).clamp(min=self.min_std, max=1e3)
        return mu, sigma


class LatentModel(WorldModel):
    """Latent ODE (``dynamics="ode"``) or RNN-VAE (``dynamics="gru"``).

    With ``config.carry_obs`` (the latent-ode default) the state is ``z = [x, h]``: ``x`` the
    normalised observation (``obs_dim``), ``h`` ``latent_dim`` augmented dimensions. At an
    observed anchor ``x`` starts at the observation itself and only ``h`` is inferred (and
    KL-regularised), so horizon 0 is exact; the decoder reads ``x``. The vector field
    ``f(z, a)`` never sees the time step: the integrator handles time, so a control interval
    never seen in training is more integration, not an unseen input. Without ``carry_obs``
    the whole state is latent and an MLP decodes it (the paper's model).
    """

    name = "latent-ode"
    stochastic_state = True
    dynamics = "ode"

    def __init__(self, obs_dim: int, act_dim: int, config: ModelConfig) -> None:
        super().__init__(obs_dim, act_dim, config)
        self.carry = bool(config.carry_obs) and self.dynamics == "ode"
        nobs, L = obs_dim, self.latent_dim
        self.state_dim = nobs + L if self.carry else L
        self.encoder = Encoder(obs_dim, act_dim, self.state_dim, config)
        if self.dynamics == "ode":
            self.field = ActionField(
                self.state_dim,
                act_dim,
                config.units,
                config.layers,
                config.field_activation,
                config.field_dropout or 0.0,
            )
        else:
            self.transition = GRUTransition(L, act_dim)
        self.decoder = (
            None if self.carry else mlp(L, config.dec_units, 1 if config.dec_units else 0, nobs)
        )
        if not config.input_noise >= 0:  # NaN too
            raise ValueError(f"input_noise must be >= 0, got {config.input_noise}")
        fixed = config.obs_std is not None
        if config.obs_noise not in ("dim", "shared"):
            raise ValueError(f"unknown obs_noise {config.obs_noise!r}; expected 'dim' or 'shared'")
        levels = 1 if config.obs_noise == "shared" and not fixed else obs_dim
        self.log_std = nn.Parameter(
            torch.full((levels,), math.log(config.obs_std if fixed else 0.5)),
            requires_grad=not fixed,
        )
        if config.noise_horizons and not fixed:
            self.log_std_h = nn.Parameter(torch.zeros(config.noise_horizons))
        else:
            self.log_std_h = None

    # -- pieces ----------------------------------------------------------------------------------
    def decode(self, z: torch.Tensor) -> torch.Tensor:
        """State ``(..., state_dim)`` -> normalised observation mean ``(..., obs_dim)``."""
        return z[..., : self.obs_dim] if self.decoder is None else self.decoder(z)

    def decode_std(
        self, obs_mean: torch.Tensor, horizon: torch.Tensor | None = None
    ) -> torch.Tensor:
        """Observation std for ``obs_mean (..., O)``; with ``horizon`` (``obs_mean.shape[:-1]``,
        intervals past the anchor) and ``config.noise_horizons``, scaled per horizon."""
        log = self.log_std.clamp(-7.0, 2.0)
        if horizon is not None and self.log_std_h is not None:
            h = horizon.clamp(0, self.log_std_h.shape[0] - 1)
            log = log + self.log_std_h.clamp(-7.0, 7.0)[h].unsqueeze(-1)
        return log.exp().clamp(min=self.config.min_std).expand_as(obs_mean)

    def evolve(self, z0: torch.Tensor, batch: Batch, own: OwnSteps | None = None) -> torch.Tensor:
        """``z0 (S, B, D)`` at each window's anchor (:meth:`Batch.anchor`) -> ``(S, B, U, D)`` on
        the batch grid (points before the anchor get z0).

        Each window is integrated from its anchor on its own step clock ``s = 0, 1, ..., K-1``
        (its own points) with ``dz/ds = dt_k * f(z, a_k)``: every window's action switches fall
        on the same integers, so the solver takes steps per own point, not per union-grid point
        (fixed-step solvers: :func:`held_steps`, one interval at a time; adaptive ones and the
        adjoint: one :func:`odeint_zoh` call on that clock).
        ``own``: ``batch.own_steps(batch.anchor())`` when the caller already has it.
        """
        own = batch.own_steps(batch.anchor()) if own is None else own
        return own.to_grid(self.evolve_own(z0, own))

    def evolve_own(self, z0: torch.Tensor, own: OwnSteps) -> torch.Tensor:
        """:meth:`evolve` at each window's own points ``(S, B, K, D)`` (before
        :meth:`OwnSteps.to_grid`)."""
        S, B, L = z0.shape
        K, N = own.pos.shape[1], S * B
        if K == 1:
            return z0.unsqueeze(2)
        acts = own.actions.unsqueeze(0).expand(S, *own.actions.shape).reshape(N, K, -1)
        scale = self.tau(own.dt).unsqueeze(0).expand(S, B, K).reshape(N, K)
        z = z0.reshape(N, L)
        options = self.solver_options()
        if (
            self.dynamics == "ode"
            and options["method"] in FIXED_SOLVERS
            and not self.config.adjoint
        ):
            zs = held_steps(
                self.field,
                z,
                acts[:, :-1],
                scale[:, :-1],
                method=options["method"],
                max_step=options["max_step"],
            )
        elif self.dynamics == "ode":
            clock = torch.arange(K, dtype=z0.dtype, device=z0.device)
            zs = odeint_zoh(
                self.field, z, clock, acts, adjoint=self.config.adjoint, scale=scale, **options
            ).transpose(0, 1)
        else:
            out = [z]
            for k in range(K - 1):
                moved = self.transition(z, acts[:, k], scale[:, k])
                z = torch.where((scale[:, k] > 0).unsqueeze(-1), moved, z)
                out.append(z)
            zs = torch.stack(out, 1)
        return zs.reshape(S, B, K, L)

    def posterior(self, batch: Batch) -> torch.distributions.Normal:
        """``q(z0)`` at each window's anchor, ``(B, state_dim)``. With ``carry_obs``, the
        observation part of a row whose anchor is observed is that observation (std
        ``min_std``); otherwise it is the encoder's estimate."""
        mu, sigma = self.encoder(batch)
        if self.carry:
            anchor = batch.anchor()
            rows = torch.arange(batch.size, device=mu.device)
            seen = batch.context[rows, anchor].unsqueeze(-1)
            no = self.obs_dim
            x = torch.where(seen, batch.obs[rows, anchor], mu[:, :no])
            sx = torch.where(seen, torch.full_like(x, self.config.min_std), sigma[:, :no])
            mu, sigma = torch.cat([x, mu[:, no:]], -1), torch.cat([sx, sigma[:, no:]], -1)
        return torch.distributions.Normal(mu, sigma)

    def _kl(self, q: torch.distributions.Normal, z0: torch.Tensor):
        """``(kl (B,), log p(z0) - log q(z0) (S, B))`` over the inferred dimensions (with
        ``carry_obs``: the augmented ones; the observation part is data, not a latent)."""
        first = self.obs_dim if self.carry else 0
        loc, scale = q.loc[..., first:], q.scale[..., first:]
        q = torch.distributions.Normal(loc, scale)
        prior = torch.distributions.Normal(torch.zeros_like(loc), torch.ones_like(scale))
        kl = torch.distributions.kl_divergence(q, prior).sum(-1)
        z = z0[..., first:]
        return kl, (prior.log_prob(z) - q.log_prob(z)).sum(-1)

    def _noisy(self, x: torch.Tensor) -> torch.Tensor:
        """``x`` (observations the model predicts from, normalised) with ``input_noise`` added
        in training mode; as it is otherwise."""
        sd = self.config.input_noise
        return x + sd * torch.randn_like(x) if self.training and sd > 0 else x

    def _with_observed(self, q: torch.distributions.Normal, z0: torch.Tensor) -> torch.Tensor:
        """Samples ``z0 (S, B, D)`` with their observation part set to ``q``'s mean (with
        ``carry_obs``): the observed part exactly, not within ``min_std`` of it."""
        if not self.carry:
            return z0
        no = self.obs_dim
        return torch.cat([q.loc[..., :no].expand_as(z0[..., :no]), z0[..., no:]], -1)

    # -- the contract ----------------------------------------------------------------------------
    def loss(self, batch: Batch) -> tuple[torch.Tensor, dict[str, float]]:
        q = self.posterior(batch)
        S = self.config.samples
        z0 = self._with_observed(q, q.rsample((S,)))  # (S, B, D)
        if self.carry and self.training and self.config.input_noise > 0:
            z0 = torch.cat([self._noisy(z0[..., : self.obs_dim]), z0[..., self.obs_dim :]], -1)
        own = batch.own_steps(batch.anchor())
        zs = self.evolve_own(z0, own)  # (S, B, K, D)
        mean = self.decode(own.to_grid(zs))  # (S, B, U, O)
        # own.inverse: (B, U) intervals past the anchor
        std = self.decode_std(mean, own.inverse.expand(mean.shape[:-1]))
        mask = batch.target.to(mean.dtype)
        n = (mask.sum(1) * self.obs_dim).clamp(min=1)  # scored entries per window
        loglik = (gaussian_logpdf(batch.obs, mean, std).sum(-1) * mask).sum(-1)  # (S, B)
        kl, log_ratio = self._kl(q, z0)
        if self.config.iwae:
            logw = loglik + self.kl_weight * log_ratio
            bound = torch.logsumexp(logw, 0) - math.log(S)
        else:
            bound = loglik.mean(0) - self.kl_weight * kl
        loss = -(bound / n).mean()
        extra = {}
        if self.carry and self.config.one_step_weight > 0:
            one_step = self.one_step_nll(batch, own, zs)
            loss = loss + self.config.one_step_weight * one_step
            extra["one_step_nll"] = one_step.item()
        with torch.no_grad():
            mse = masked_mse(mean.mean(0), batch.obs, batch.target)
            nll = -(loglik.mean(0) / n).mean()
        return loss, {
            "loss": loss.item(),
            "nll": nll.item(),
            "kl": kl.mean().item(),
            "mse": mse.item(),
            "kl_weight": float(self.kl_weight),
            **extra,
        }

    def one_step_nll(self, batch: Batch, own: OwnSteps, zs: torch.Tensor) -> torch.Tensor:
        """Teacher-forced one-step NLL per scored entry (``carry_obs`` only): each scored own
        point ``k + 1`` predicted by one :meth:`step` from ``[x_k, h_k]``, the observation at
        ``k`` with the augmented part of the open-loop states ``zs (S, B, K, D)``; scored with
        the horizon-1 noise."""
        S, B, K, D = zs.shape
        no = self.obs_dim
        if K < 2:
            return zs.new_zeros(())
        x = own.gather(batch.obs)  # (B, K, O)
        scored = own.gather(batch.target.unsqueeze(-1).to(x.dtype)).squeeze(-1) > 0
        pair = scored[:, 1:] & own.valid[:, 1:] & (own.dt[:, :-1] > 0)  # (B, K-1)
        start = torch.cat([self._noisy(x[:, :-1].expand(S, B, K - 1, no)), zs[:, :, :-1, no:]], -1)
        acts = own.actions[:, :-1].expand(S, B, K - 1, own.actions.shape[-1])
        dt = own.dt[:, :-1].expand(S, B, K - 1)
        nxt = step_zoh(  # unscored pairs (padding, dt 0) are masked below
            self.field,
            start.reshape(-1, D),
            acts.reshape(S * B * (K - 1), acts.shape[-1]),  # A may be 0 (passive dynamics)
            self.tau(dt.reshape(-1)),
            **self.solver_options(),
        ).reshape(S, B, K - 1, D)[..., :no]
        horizon = torch.ones(nxt.shape[:-1], dtype=torch.long, device=nxt.device)
        ll = gaussian_logpdf(x[:, 1:], nxt, self.decode_std(nxt, horizon)).sum(-1)
        m = pair.to(ll.dtype).expand_as(ll)
        return -(ll * m).sum() / (m.sum() * no).clamp(min=1)

    def predict(self, batch: Batch, samples: int = 1) -> Prediction:
        q = self.posterior(batch)
        z0 = self._with_observed(q, q.sample((samples,))) if samples > 1 else q.loc.unsqueeze(0)
        mean = self.decode(self.evolve(z0, batch))
        return Prediction(mean, self.decode_std(mean))

    def encode(
        self, batch: Batch, samples: int = 1, *, mean: bool = False, generator: Generators = None
    ) -> torch.Tensor:
        """Latent states at each window's last context point, ``(S, B, D)``: samples of the
        posterior (or its mean), carried from the anchor when that comes earlier."""
        q = self.posterior(batch)
        if mean:
            z0 = q.loc.unsqueeze(0).expand(samples, *q.loc.shape)
        else:
            z0 = q.loc + q.scale * randn_rows((samples, *q.loc.shape), generator, like=q.loc)
            z0 = self._with_observed(q, z0)
        last = batch.last_context().clamp(min=0)
        if bool((batch.anchor() == last).all()):  # every row's z0 is at its last context point
            return z0.contiguous()  # (an imagined start: nothing to carry)
        zs = self.evolve(z0, batch)  # (S, B, U, D)
        idx = last.view(1, -1, 1, 1).expand(zs.shape[0], -1, 1, zs.shape[-1])
        return zs.gather(2, idx).squeeze(2)

    def step(
        self, state: torch.Tensor, action: torch.Tensor, dt: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor]:
        tau = self.tau(dt).to(state.dtype)
        if self.dynamics == "ode":
            z = step_zoh(self.field, state, action, tau, **self.solver_options())
            if self.carry:  # imagination stays inside the training range (see bound_obs)
                z = torch.cat([self.bound_obs(z[:, : self.obs_dim]), z[:, self.obs_dim :]], -1)
        else:
            z = self.transition(state, action, tau)
        return z, self.decode(z)


class RNNVAE(LatentModel):
    """The paper's RNN-VAE: an RNN encoder and a GRU generative model with ``(a, dt)`` input."""

    name = "rnn-vae"
    dynamics = "gru"

    def __init__(self, obs_dim: int, act_dim: int, config: ModelConfig) -> None:
        from dataclasses import replace

        super().__init__(obs_dim, act_dim, replace(config, encoder="rnn"))
