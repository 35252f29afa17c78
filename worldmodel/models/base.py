"""The model contract shared by every world model, and the pieces they share.

Every model works on normalised observations (see :class:`worldmodel.batching.Normalizer`,
whose statistics the model stores as buffers and saves with its weights) and on time in
seconds (it divides by ``config.time_unit`` internally).

* ``loss(batch) -> (loss, metrics)``: the training objective; metrics are plain floats.
* ``predict(batch, samples) -> Prediction``: every grid point of a batch, for evaluation.
* ``encode(batch, samples, mean, generator) -> state``: ``(S, B, D)`` belief at each window's
  last context point (samples, or the mean).
* ``rollout(state, actions, dts) -> Prediction``: open loop under zero-order-hold actions.
* ``step(state, action, dt) -> (state, obs)``: one batched step, for imagination.
"""

from __future__ import annotations

import math
from abc import ABC, abstractmethod
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, ClassVar, TypeVar

import numpy as np
import torch
from torch import nn

from worldmodel.batching import Batch, Normalizer
from worldmodel.config import ModelConfig, auto_latent_dim

LOG_2PI = math.log(2 * math.pi)
T = TypeVar("T", torch.Tensor, float)


@dataclass
class Prediction:
    """Predicted observations (normalised units).

    Attributes:
        mean: ``(S, B, H, obs_dim)``, one rollout per latent sample / ensemble member.
        std: ``(S, B, H, obs_dim)``, the observation model's standard deviation.
    """

    mean: torch.Tensor
    std: torch.Tensor

    def spread(self) -> torch.Tensor:
        """``(B, H, obs_dim)`` total std: observation noise plus the spread of the samples."""
        var = self.std.pow(2).mean(0) + self.mean.var(0, unbiased=False)
        return var.sqrt()


ACTIVATIONS: dict[str, type[nn.Module]] = {"tanh": nn.Tanh, "silu": nn.SiLU}


def mlp(
    inp: int,
    units: int,
    layers: int,
    out: int,
    act: type[nn.Module] = nn.Tanh,
    dropout: float = 0.0,
) -> nn.Sequential:
    """``layers`` hidden layers of ``units``, each followed by dropout of probability
    ``dropout`` when it is above 0; ``layers == 0`` gives a linear map."""
    if not 0.0 <= dropout < 1.0:
        raise ValueError(f"dropout must be in [0, 1), got {dropout}")
    mods: list[nn.Module] = []
    d = inp
    for _ in range(layers):
        mods += [nn.Linear(d, units), act()] + ([nn.Dropout(dropout)] if dropout else [])
        d = units
    mods.append(nn.Linear(d, out))
    return nn.Sequential(*mods)


def model_time(seconds: T, time_unit: float) -> T:
    """Seconds (a tensor or a float) to model time units: ``seconds / time_unit``."""
    return seconds / time_unit


def gaussian_logpdf(x: torch.Tensor, mean: torch.Tensor, std: torch.Tensor) -> torch.Tensor:
    """Elementwise log N(x; mean, std^2)."""
    return -0.5 * ((x - mean) / std).pow(2) - std.log() - 0.5 * LOG_2PI


class RowStreams:
    """One standard-normal stream per row, each drawn from its own ``torch.Generator``.

    Row ``b``'s draws depend on generator ``b`` and on the widths asked of it only, so ``N``
    rows in one batch draw exactly what ``N`` batches of one row would (a vector env equals its
    single envs). Each row is refilled ``block`` values at a time, so the Python loop over rows
    runs once per ``block`` values rather than at every draw (the cost of a plain list of
    generators at thousands of rows). Draws come back on the device of the last draw's ``like``.
    """

    def __init__(self, generators: Sequence[torch.Generator], block: int = 1024) -> None:
        if block < 1:
            raise ValueError(f"block must be >= 1, got {block}")
        self.generators = list(generators)
        self.block = block
        self._buf = torch.empty((len(self.generators), block))
        self._pos = np.full(len(self.generators), block)  # all empty: filled at the first draw

    def __len__(self) -> int:
        return len(self.generators)

    def reseed(self, row: int, generator: torch.Generator) -> None:
        """Give ``row`` a new generator (a sub-env's reset); its unread draws are dropped."""
        self.generators[row] = generator
        self._pos[row] = self.block

    def rows(self, index: Sequence[int]) -> _RowView:
        """The streams of the rows in ``index`` (they advance here too)."""
        return _RowView(self, np.asarray(index, dtype=np.int64))

    def draw(self, width: int, like: torch.Tensor, index: np.ndarray | None = None) -> torch.Tensor:
        """``(len(index), width)`` draws, row ``i`` from stream ``index[i]`` (all rows: None)."""
        idx = np.arange(len(self)) if index is None else index
        if width > self.block:  # wider than a block: straight from the generators
            rows = [torch.randn(width, generator=self.generators[i]) for i in idx]
            return torch.stack(rows).to(like.device, like.dtype)
        if self._buf.device != like.device or self._buf.dtype != like.dtype:
            self._buf = self._buf.to(like.device, like.dtype)
        empty = idx[self._pos[idx] + width > self.block]
        if len(empty):
            fresh = [torch.randn(self.block, generator=self.generators[i]) for i in empty]
            self._buf[torch.as_tensor(empty, device=like.device)] = torch.stack(fresh).to(
                like.device, like.dtype
            )
            self._pos[empty] = 0
        cols = torch.as_tensor(self._pos[idx], device=like.device)[:, None] + torch.arange(
            width, device=like.device
        )
        out = self._buf[torch.as_tensor(idx, device=like.device)[:, None], cols]
        self._pos[idx] += width
        return out


class _RowView:
    def __init__(self, streams: RowStreams, index: np.ndarray) -> None:
        self.streams, self.index = streams, index

    def __len__(self) -> int:
        return len(self.index)

    def draw(self, width: int, like: torch.Tensor) -> torch.Tensor:
        return self.streams.draw(width, like, self.index)


Generators = torch.Generator | Sequence[torch.Generator] | RowStreams | _RowView | None


def randn_rows(
    shape: tuple[int, ...], generator: Generators, *, like: torch.Tensor
) -> torch.Tensor:
    """Standard normal draws of ``shape = (..., B, D)``; with one generator or stream per row
    ``b`` (a sequence of ``B`` generators, or :class:`RowStreams`), row ``b`` depends on its
    own only."""
    if generator is None:
        return torch.randn(shape, dtype=like.dtype, device=like.device)
    if isinstance(generator, torch.Generator):  # drawn where the generator lives, then moved:
        # a CPU generator gives the same draws for a model on any device
        out = torch.randn(shape, generator=generator, dtype=like.dtype, device=generator.device)
        return out.to(like.device)
    B, D = shape[-2], shape[-1]
    if len(generator) != B:
        raise ValueError(f"{len(generator)} generators for {B} rows")
    lead = int(np.prod(shape[:-2])) if len(shape) > 2 else 1
    if isinstance(generator, (RowStreams, _RowView)):
        return generator.draw(lead * D, like).reshape(B, lead, D).transpose(0, 1).reshape(shape)
    rows = [torch.randn((lead, D), generator=g, dtype=like.dtype) for g in generator]
    return torch.stack(rows, -2).reshape(shape).to(like.device)


def masked_mse(mean: torch.Tensor, obs: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """Mean squared error over the ``(B, U)`` mask and every dimension: a scalar."""
    err = (mean - obs).pow(2).sum(-1) * mask
    return err.sum() / (mask.sum() * obs.shape[-1]).clamp(min=1)


# the buffers a trainer sets from its data (normalisation, then the observation range in the
# normalised units): a warm start onto other data keeps the new fit's, not the old model's
DATA_BUFFERS = ("obs_mean", "obs_std", "obs_low", "obs_high")


class WorldModel(nn.Module, ABC):
    """Base class of every model name in :data:`worldmodel.models.MODELS`."""

    name: ClassVar[str] = "model"
    stochastic_state: ClassVar[bool] = False
    # the batch modes whose scores say something about this model (model selection uses them)
    scored_modes: ClassVar[tuple[str, ...]] = ("interp", "extrap")

    def __init__(self, obs_dim: int, act_dim: int, config: ModelConfig) -> None:
        super().__init__()
        self.obs_dim, self.act_dim, self.config = obs_dim, act_dim, config
        self.latent_dim = config.latent_dim or auto_latent_dim(obs_dim)
        self.register_buffer("obs_mean", torch.zeros(obs_dim))
        self.register_buffer("obs_std", torch.ones(obs_dim))
        # the range of the training observations (normalised, with a margin): imagined
        # observations are kept inside it (see ``bound_obs``); +-inf until the trainer sets it
        self.register_buffer("obs_low", torch.full((obs_dim,), -math.inf))
        self.register_buffer("obs_high", torch.full((obs_dim,), math.inf))
        self.kl_weight = 1.0  # set by the trainer's annealing schedule

    # -- normalisation -------------------------------------------------------------------------
    def set_normalizer(self, normalizer: Normalizer) -> None:
        self.obs_mean.copy_(torch.as_tensor(normalizer.mean, dtype=torch.float32))
        self.obs_std.copy_(torch.as_tensor(normalizer.std, dtype=torch.float32))

    @property
    def normalizer(self) -> Normalizer:
        return Normalizer(
            self.obs_mean.cpu().numpy().astype(np.float64),
            self.obs_std.cpu().numpy().astype(np.float64),
        )

    def set_obs_bounds(self, low: np.ndarray, high: np.ndarray) -> None:
        """Range ``(obs_dim,)`` each, normalised units, that imagined observations stay in."""
        self.obs_low.copy_(torch.as_tensor(low, dtype=torch.float32))
        self.obs_high.copy_(torch.as_tensor(high, dtype=torch.float32))

    def bound_obs(self, x: torch.Tensor) -> torch.Tensor:
        """Clamp normalised observations ``(..., obs_dim)`` to the training range: an
        open-loop rollout that leaves every state the data ever showed is extrapolating, and
        the real observations are bounded too (MuJoCo envs clip velocities)."""
        return torch.maximum(torch.minimum(x, self.obs_high), self.obs_low)

    def normalize(self, obs: torch.Tensor) -> torch.Tensor:
        return (obs - self.obs_mean) / self.obs_std

    def denormalize(self, obs: torch.Tensor) -> torch.Tensor:
        return obs * self.obs_std + self.obs_mean

    def tau(self, seconds: T) -> T:
        """Seconds to model time units (:func:`model_time` with ``config.time_unit``)."""
        return model_time(seconds, self.config.time_unit)

    def max_step_units(self) -> float | None:
        """``config.max_step`` in model time units (None: one solver step per interval; an
        unresolved ``"data"`` or ``"env-dt"`` counts as None, see ``ModelConfig.max_step``)."""
        m = self.config.max_step
        return None if m is None or isinstance(m, str) else self.tau(m)

    def solver_options(self) -> dict[str, Any]:
        """The ODE solver settings of ``config`` as keyword arguments of
        :func:`~worldmodel.models.integrate.odeint_zoh` and ``step_zoh`` (``max_step`` in model
        time units)."""
        c = self.config
        return {
            "method": c.solver,
            "max_step": self.max_step_units(),
            "rtol": c.rtol,
            "atol": c.atol,
        }

    # -- the contract ----------------------------------------------------------------------------
    @abstractmethod
    def loss(self, batch: Batch) -> tuple[torch.Tensor, dict[str, float]]:
        """Scalar training loss and flat float metrics (``nll``, ``mse``, ...)."""

    @abstractmethod
    def predict(self, batch: Batch, samples: int = 1) -> Prediction:
        """Predictions at every grid point of ``batch``: ``(S, B, U, obs_dim)``."""

    @abstractmethod
    def encode(
        self, batch: Batch, samples: int = 1, *, mean: bool = False, generator: Generators = None
    ) -> torch.Tensor:
        """``(S, B, state_dim)`` state at each window's last context point: ``samples`` draws
        from the belief (with ``generator``: one, or one per window), or its mean ``samples``
        times (``mean=True``). Deterministic models return their one state."""

    @abstractmethod
    def step(
        self, state: torch.Tensor, action: torch.Tensor, dt: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """One step. ``state (N, D)``, ``action (N, A)``, ``dt (N,)`` seconds > 0 ->
        ``(next state (N, D), predicted normalised observation (N, obs_dim))``."""

    def decode_std(self, obs_mean: torch.Tensor) -> torch.Tensor:
        """Observation std for predicted means (models with a learned noise override this)."""
        return torch.full_like(obs_mean, self.config.min_std)

    def step_with_std(
        self, state: torch.Tensor, action: torch.Tensor, dt: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """:meth:`step` plus the std ``(N, obs_dim)`` of its predicted observation
        (:meth:`decode_std` of the mean; models whose std depends on the state override this)."""
        z, obs = self.step(state, action, dt)
        return z, obs, self.decode_std(obs)

    def rollout(self, state: torch.Tensor, actions: torch.Tensor, dts: torch.Tensor) -> Prediction:
        """Open-loop prediction from ``state (S, B, D)`` under ``actions (B, H, A)``, action
        ``k`` held for ``dts[:, k]`` seconds; predictions at the end of each interval,
        ``(S, B, H, obs_dim)``. To query inside an interval, split it (repeat the action)."""
        S, B, D = state.shape
        z = state.reshape(S * B, D)
        a = actions.unsqueeze(0).expand(S, *actions.shape).reshape(S * B, *actions.shape[1:])
        d = dts.unsqueeze(0).expand(S, *dts.shape).reshape(S * B, -1)
        means, stds = [], []
        for k in range(actions.shape[1]):
            z, mean, std = self.step_with_std(z, a[:, k], d[:, k])
            means.append(mean)
            stds.append(std)
        shape = (S, B, actions.shape[1], self.obs_dim)
        return Prediction(torch.stack(means, 1).reshape(shape), torch.stack(stds, 1).reshape(shape))

    def metrics(self, batch: Batch, samples: int = 1) -> dict[str, float]:
        """Evaluation metrics on ``batch``: ``mse`` (of the mean over samples, on the target
        points, normalised units) and ``nll`` (Gaussian, per scored entry)."""
        with torch.no_grad():
            pred = self.predict(batch, samples)
            mean = pred.mean.mean(0)
            mse = masked_mse(mean, batch.obs, batch.target)
            std = pred.spread().clamp(min=self.config.min_std)
            ll = gaussian_logpdf(batch.obs, mean, std).sum(-1) * batch.target
            nll = -ll.sum() / (batch.target.sum() * self.obs_dim).clamp(min=1)
        return {"mse": float(mse), "nll": float(nll)}
