"""Turn irregular episodes into training batches: windows on a union time grid with masks.

This is the one place where shapes are checked (models never re-check them). A batch of ``B``
windows shares one grid of ``U`` times, the sorted union of every window's own recorded times
(seconds since its window's start). Each window's action switches only at its own recorded
times, so every grid interval has one constant action per window (zero-order hold).

Masks, all ``(B, U)`` bool:

* ``exists``: the window has a recorded observation at ``times[u]``;
* ``context``: the observations the model may see (a fraction ``p`` of the context region);
* ``target``: the observations it is scored on.

Modes (as in Rubanova et al. 2019): ``interp`` scores every recorded point and shows a random
fraction ``p`` of them; ``extrap`` splits each window's points at ``context_fraction``, shows a
fraction ``p`` of the first part and scores the rest.
"""

from __future__ import annotations

import functools
import warnings
from collections.abc import Sequence
from dataclasses import dataclass, fields
from typing import Literal

import numpy as np
import torch

from worldmodel.data import Episode, Moments, episode_lengths, field_chunks

Mode = Literal["interp", "extrap"]
MODES: tuple[str, ...] = ("interp", "extrap")


@dataclass
class Normalizer:
    """Per-dimension affine normalisation of observations, fitted on the training split.

    Attributes:
        mean: ``(obs_dim,)``.
        std: ``(obs_dim,)``, floored (see :meth:`fit`) so that a dimension that is (nearly)
            constant in the training data does not blow up when it moves at test time.
    """

    mean: np.ndarray
    std: np.ndarray

    @classmethod
    def fit(cls, episodes: Sequence[Episode], rel_floor: float = 1e-3) -> Normalizer:
        """Mean and std of every observation of ``episodes``. Each dimension's std is floored
        at ``rel_floor * max(1, mean |x|)`` of that dimension: a floor relative to its own
        magnitude (a dimension near 100 that moves by 1e-4 is constant), and never below
        ``rel_floor`` in the data's units, so that a dimension constant in training (a joint
        that never moved) amplifies a test-time deviation by at most ``1 / rel_floor``
        (1e-6 allowed 1e6). Warns naming the floored dimensions; refuses non-finite values.
        Streams over ``episodes`` in chunks of ``worldmodel.data.CHUNK_ROWS`` observations (a
        sharded dataset need not fit in memory; up to that size, one chunk as before)."""
        stats, seen = Moments(), 0
        for obs in field_chunks(episodes, "obs"):
            obs = np.asarray(obs, dtype=np.float64)
            bad = ~np.isfinite(obs)
            if bad.any():
                row, dim = (int(i) for i in np.argwhere(bad)[0])
                raise ValueError(
                    f"cannot fit the normaliser: observation {seen + row} (of all episodes, in "
                    f"order) has a non-finite value ({obs[row, dim]}) in dimension {dim}"
                )
            stats.add(obs)
            seen += len(obs)
        if not seen:
            raise ValueError("cannot fit the normaliser: no observations")
        mean, std = stats.mean, stats.std
        floor = rel_floor * np.maximum(1.0, stats.abs_mean)
        low = np.flatnonzero(std < floor)
        if low.size:
            warnings.warn(
                f"observation dimensions {low.tolist()} are (nearly) constant in the training "
                f"data (std {np.array2string(std[low], precision=2)}); their std is floored at "
                f"{np.array2string(floor[low], precision=2)} ({rel_floor:g} x max(1, mean |x|))",
                stacklevel=2,
            )
        return cls(mean, np.maximum(std, floor))

    def normalize(self, x: np.ndarray) -> np.ndarray:
        return (x - self.mean) / self.std

    def denormalize(self, x: np.ndarray) -> np.ndarray:
        return x * self.std + self.mean


@dataclass
class Window:
    """Observations ``[start, stop)`` of one episode (``stop - start >= 2``)."""

    episode: int
    start: int
    stop: int


@dataclass
class Batch:
    """Windows on a union time grid (see module docstring). Observations are normalised.

    Attributes:
        times: ``(U,)`` float32 seconds since each window's start; ``times[0] == 0``.
        obs: ``(B, U, obs_dim)`` normalised observations, zero where not ``exists``.
        actions: ``(B, U, act_dim)``: the action held on ``[times[u], times[u+1])``
            (zero after a window's last point).
        exists, context, target: ``(B, U)`` bool masks.
    """

    times: torch.Tensor
    obs: torch.Tensor
    actions: torch.Tensor
    exists: torch.Tensor
    context: torch.Tensor
    target: torch.Tensor

    @property
    def size(self) -> int:
        return int(self.obs.shape[0])

    def to(self, device: torch.device | str) -> Batch:
        return Batch(**{f.name: getattr(self, f.name).to(device) for f in fields(self)})

    def own_steps(self, start: torch.Tensor | None = None) -> OwnSteps:
        """Each window's own points as a padded sequence (see :class:`OwnSteps`), from grid
        index ``start (B,)`` on (None: from its first point); earlier points map to the first."""
        B, U = self.exists.shape
        idx = torch.arange(U, device=self.times.device).expand(B, U)
        own = self.exists if start is None else self.exists & (idx >= start.unsqueeze(1))
        K = max(1, int(own.sum(1).max()))
        order = torch.where(own, idx, U).sort(1).values[:, :K]
        valid = order < U
        last = order.masked_fill(~valid, -1).amax(1, keepdim=True)
        pos = torch.where(valid, order, last)
        t = self.times[pos]
        dt = torch.zeros_like(t)
        dt[:, :-1] = (t[:, 1:] - t[:, :-1]) * valid[:, 1:]
        actions = self.actions.gather(1, pos.unsqueeze(-1).expand(B, K, self.actions.shape[-1]))
        actions = actions * (dt > 0).unsqueeze(-1)
        inv = torch.zeros(B, U + 1, dtype=torch.long, device=pos.device)
        inv.scatter_(
            1,
            torch.where(valid, pos, U),
            torch.arange(K, device=pos.device).expand(B, K).contiguous(),
        )
        context = self.context.gather(1, pos) & valid
        return OwnSteps(
            pos=pos, valid=valid, t=t, dt=dt, actions=actions, inverse=inv[:, :U], context=context
        )

    def anchor(self) -> torch.Tensor:
        """``(B,)`` long: grid index of the point whose latent state a latent model infers
        (its z0): each window's last context point, or its first target if that comes earlier.

        Interpolation: the window's start. Extrapolation: the last observed point, so that the
        model integrates only over what it must predict (the original code likewise starts
        its extrapolation ODE at the first predicted time). Context-only batches: the last
        observation, the state an imagined rollout starts from.
        """
        U = self.times.shape[0]
        idx = torch.arange(U, device=self.times.device).expand_as(self.target)
        first_target = torch.where(self.target, idx, U).amin(1)
        return torch.minimum(self.last_context(), first_target)

    def last_context(self) -> torch.Tensor:
        """``(B,)`` long: grid index of each window's last context point."""
        U = self.times.shape[0]
        idx = torch.arange(U, device=self.times.device).expand_as(self.context)
        return torch.where(self.context, idx, -1).amax(1)


def cut_horizon(batch: Batch, horizon: int) -> Batch:
    """``batch`` without each window's points past its ``horizon``-th target after its anchor
    (:meth:`Batch.anchor`), for open-loop training on the first ``horizon`` scored points only
    (a horizon schedule); the grid's trailing points that no window keeps are dropped. A window
    whose cut would keep no context point (interpolation's context spreads over the window) is
    kept whole. ``batch`` itself when no point is cut."""
    if horizon < 1:
        raise ValueError(f"horizon must be >= 1 scored point, got {horizon}")
    B, U = batch.exists.shape
    idx = torch.arange(U, device=batch.exists.device).expand(B, U)
    scored = batch.target & (idx > batch.anchor().unsqueeze(1))
    # the grid index of each window's horizon-th scored point (U: it has no more than that)
    nth = torch.where(scored & (scored.cumsum(1) == horizon), idx, U).amin(1, keepdim=True)
    keep = batch.exists & (idx <= nth)
    keep = torch.where((keep & batch.context).any(1, keepdim=True), keep, batch.exists)
    if torch.equal(keep, batch.exists):
        return batch
    last = torch.where(keep, idx, -1).amax(1, keepdim=True)  # (B, 1) each window's last point
    end = int(last.max()) + 1
    keep = keep[:, :end]
    held = (idx[:, :end] < last).unsqueeze(-1)  # actions stop at a window's last point
    return Batch(
        times=batch.times[:end],
        obs=batch.obs[:, :end] * keep.unsqueeze(-1),
        actions=batch.actions[:, :end] * held,
        exists=keep,
        context=batch.context[:, :end] & keep,
        target=batch.target[:, :end] & keep,
    )


@dataclass
class OwnSteps:
    """A batch's windows on their own step clocks: ``K`` = most points of any window.

    Attributes:
        pos: ``(B, K)`` grid index of each window's ``k``-th own point (padding repeats the last).
        valid: ``(B, K)`` False on padding.
        t: ``(B, K)`` seconds of each own point.
        dt: ``(B, K)`` seconds from own point ``k`` to ``k+1`` (0 after the last).
        actions: ``(B, K, act_dim)`` held from own point ``k`` (0 after the last).
        inverse: ``(B, U)`` own index of each grid point (0 where the window has no point).
        context: ``(B, K)`` the own point is a context observation.
    """

    pos: torch.Tensor
    valid: torch.Tensor
    t: torch.Tensor
    dt: torch.Tensor
    actions: torch.Tensor
    inverse: torch.Tensor
    context: torch.Tensor

    def gather(self, x: torch.Tensor) -> torch.Tensor:
        """Grid values ``(B, U, F)`` -> own-point values ``(B, K, F)``."""
        return x.gather(1, self.pos.unsqueeze(-1).expand(*self.pos.shape, x.shape[-1]))

    def to_grid(self, y: torch.Tensor) -> torch.Tensor:
        """Own-point values ``(..., B, K, F)`` -> grid values ``(..., B, U, F)`` (differentiable;
        grid points a window does not have get its first value: mask them)."""
        idx = self.inverse.unsqueeze(-1).expand(*self.inverse.shape, y.shape[-1])
        return y.gather(-2, idx.expand(*y.shape[:-3], *idx.shape))


@functools.lru_cache(maxsize=4096)
def _cumulative_targets(n: int, length: int, shortest: int) -> np.ndarray:
    """Running total of the targets scored by the window at each start of an ``n``-point
    episode whose windows of up to ``length`` points keep ``shortest - 1`` context points (at
    least 1 target); cached, as every training batch asks for the same few lengths."""
    starts = np.arange(max(n - shortest, 0) + 1)
    out = np.cumsum(np.maximum(np.minimum(length, n - starts) - (shortest - 1), 1))
    out.flags.writeable = False
    return out


def sample_windows(
    episodes: Sequence[Episode],
    count: int,
    length: int,
    rng: np.random.Generator,
    shortest: int | None = None,
) -> list[Window]:
    """``count`` windows of up to ``length`` observations.

    ``shortest`` None: each start drawn uniformly over the starts where a whole window fits
    (an episode drawn by how many it has), so the last ``length - 1`` points of an episode lie
    in fewer windows than the rest (its last point in one for every ``length`` a mid-episode
    point is in: the falls at the end of an episode are seldom trained on).

    ``shortest`` k (extrapolation with a context of ``k - 1`` points): a window may also start
    closer to its episode's end, cut short there, down to ``k`` points, each start drawn in
    proportion to the targets its window scores. The open-loop losses average over a window's
    targets, so every point after the first ``length - 1`` then weighs the same in the loss,
    whole windows or cut ones (one-step models, which train on every pair of a window, get the
    end's pairs less often than the rest, but far more than with whole windows only). An
    episode shorter than the shortest window is one window either way."""
    if length < 2:
        raise ValueError(f"window length must be >= 2 observations, got {length}")
    if shortest is not None and not 2 <= shortest <= length:
        raise ValueError(f"shortest window must be in [2, {length}] observations, got {shortest}")
    lens = episode_lengths(episodes)  # a lazy (sharded) sequence knows them without loading
    if shortest is None:
        weights = np.maximum(lens - length, 0) + 1
        eps = rng.choice(len(episodes), size=count, p=weights / weights.sum())
        starts = (rng.random(count) * weights[eps]).astype(int)
    else:
        cum = {int(n): _cumulative_targets(int(n), length, shortest) for n in set(lens)}
        weights = np.array([cum[int(n)][-1] for n in lens], dtype=np.float64)
        eps = rng.choice(len(episodes), size=count, p=weights / weights.sum())
        u = rng.random(count) * weights[eps]
        starts = [int(np.searchsorted(cum[int(lens[e])], x, side="right")) for e, x in zip(eps, u)]
    return [Window(int(e), int(s), int(min(s + length, lens[e]))) for e, s in zip(eps, starts)]


def tile_windows(episodes: Sequence[Episode], length: int) -> list[Window]:
    """Windows covering every point of every episode (for deterministic evaluation): an
    episode of up to ``length`` observations is one window; a longer one gets the fewest
    full-length windows that cover it, their starts spread evenly (no short tail window)."""
    out = []
    for e, n in enumerate(episode_lengths(episodes).tolist()):
        if n <= length:
            out.append(Window(e, 0, n))
            continue
        count = -(-(n - 1) // (length - 1))  # ceil: windows sharing their end points would tile
        starts = np.round(np.linspace(0, n - length, count)).astype(int)
        out.extend(Window(e, int(s), int(s) + length) for s in starts)
    return out


def _refuse_non_finite(episodes: Sequence[Episode], windows: Sequence[Window]) -> None:
    """Name the first window with a non-finite time, observation or action: a NaN must never
    reach a model as a number (datasets and contexts are validated when made, but episodes
    built or changed by hand are not)."""
    for b, w in enumerate(windows):
        ep = episodes[w.episode]
        for name, arr in (
            ("t", ep.t[w.start : w.stop]),
            ("obs", ep.obs[w.start : w.stop]),
            ("actions", ep.actions[w.start : w.stop - 1]),
        ):
            bad = ~np.isfinite(arr)
            if bad.any():
                idx = tuple(int(i) for i in np.argwhere(bad)[0])
                raise ValueError(
                    f"window {b} (episode {w.episode}, points {w.start}-{w.stop - 1}): {name} "
                    f"has a non-finite value ({arr[idx]}) at window index {idx}"
                )
    raise ValueError("the normaliser turned finite observations into non-finite ones")


def context_points(n: int, context_fraction: float) -> int:
    """How many of an extrapolation window's ``n`` points are its context region (the rest are
    scored): at least 1, at most ``n - 1``."""
    return min(max(1, int(round(context_fraction * n))), n - 1)


def make_batch(
    episodes: Sequence[Episode],
    windows: Sequence[Window],
    normalizer: Normalizer,
    *,
    mode: Mode = "interp",
    observed: float = 1.0,
    context_fraction: float = 0.5,
    context_count: int | None = None,
    rng: np.random.Generator,
) -> Batch:
    """Build a :class:`Batch` from windows of episodes.

    Args:
        observed: fraction ``p`` of the context region's points shown to the model (>= 1 point).
        context_fraction: ``extrap`` only, the share of each window's points that is context.
        context_count: ``extrap`` only, instead: this many context points in every window (at
            most all but one of a window's points, so a window cut short by its episode's end
            keeps it too).
        rng: draws the observed subset (a fixed seed gives a fixed evaluation mask).
    """
    if mode not in MODES:
        raise ValueError(f"unknown batch mode {mode!r}; expected one of {MODES}")
    if not 0.0 < observed <= 1.0:
        raise ValueError(f"observed fraction must be in (0, 1], got {observed}")
    if not windows:
        raise ValueError("no windows to batch")
    rel = [
        episodes[w.episode].t[w.start : w.stop] - episodes[w.episode].t[w.start] for w in windows
    ]
    if not all(np.isfinite(r).all() for r in rel):
        _refuse_non_finite(episodes, windows)
    span = max((float(np.abs(r).max()) for r in rel if r.size), default=0.0)
    if span > 9e9:  # 1 ns keys in int64 hold about 292 years; beyond, they wrap around
        raise ValueError(
            f"a window's times span {span:.3g} s, more than the 1 ns grid holds (9e9 s)"
        )
    # quantise to 1 ns so that equal times from different episodes share one grid point
    keys = [np.round(r * 1e9).astype(np.int64) for r in rel]
    grid_keys, inverse = np.unique(np.concatenate(keys), return_inverse=True)
    times = grid_keys.astype(np.float64) * 1e-9
    B, U = len(windows), len(grid_keys)
    ep0 = episodes[windows[0].episode]
    obs = np.zeros((B, U, ep0.obs.shape[1]), dtype=np.float32)
    actions = np.zeros((B, U, ep0.actions.shape[1]), dtype=np.float32)
    exists = np.zeros((B, U), dtype=bool)
    context = np.zeros((B, U), dtype=bool)
    target = np.zeros((B, U), dtype=bool)
    offset = 0
    for b, w in enumerate(windows):
        ep = episodes[w.episode]
        n = w.stop - w.start
        idx = inverse[offset : offset + n]
        offset += n
        obs[b, idx] = normalizer.normalize(ep.obs[w.start : w.stop])
        exists[b, idx] = True
        actions[b, idx[0] : idx[-1]] = np.repeat(
            ep.actions[w.start : w.stop - 1], np.diff(idx), axis=0
        )
        if mode == "interp":
            region, scored = idx, idx
        else:
            n_ctx = (
                context_points(n, context_fraction)
                if context_count is None
                else min(max(1, context_count), n - 1)
            )
            region, scored = idx[:n_ctx], idx[n_ctx:]
        k = max(1, int(round(observed * len(region))))
        context[b, rng.choice(region, size=k, replace=False)] = True
        target[b, scored] = True
    if not (np.isfinite(obs).all() and np.isfinite(actions).all()):
        _refuse_non_finite(episodes, windows)
    return Batch(
        times=torch.as_tensor(times, dtype=torch.float32),
        obs=torch.from_numpy(obs),
        actions=torch.from_numpy(actions),
        exists=torch.from_numpy(exists),
        context=torch.from_numpy(context),
        target=torch.from_numpy(target),
    )


@dataclass
class Context:
    """A context window in real units: ``t (T,)`` seconds, ``obs (T, obs_dim)``,
    ``actions (T-1, act_dim)`` (``T >= 1``: one observation is a valid context)."""

    t: np.ndarray
    obs: np.ndarray
    actions: np.ndarray


def context_window(
    t: np.ndarray, obs: np.ndarray, actions: np.ndarray, end: int, length: int
) -> Context:
    """The context of the (at most) ``length`` recorded points up to and including ``end``.

    ``t (T,)`` seconds, ``obs (T, obs_dim)``, ``actions (T-1, act_dim)``: one recording (an
    episode, or the steps so far); times in the context are relative to ``t[end]`` (its last
    point is at 0) and its actions float64 copies.
    """
    start = max(0, end - length + 1)
    return Context(
        t[start : end + 1] - t[end], obs[start : end + 1], actions[start:end].astype(np.float64)
    )


def context_batch(contexts: Sequence[Context], normalizer: Normalizer) -> Batch:
    """A batch whose every point is observed context and none a target (for encoding real
    observations: latent models infer the state at the last one)."""
    for i, c in enumerate(contexts):
        T = len(c.t)
        if T < 1 or c.obs.shape[0] != T or c.actions.shape[0] != T - 1:
            raise ValueError(
                f"context {i}: need t (T,), obs (T, dim), actions (T-1, dim) with T >= 1, got "
                f"{np.shape(c.t)}, {np.shape(c.obs)}, {np.shape(c.actions)}"
            )
        if not (
            np.isfinite(c.t).all() and np.isfinite(c.obs).all() and np.isfinite(c.actions).all()
        ):
            raise ValueError(f"context {i} holds a non-finite value")
        if T > 1 and (np.diff(c.t) <= 0).any():
            raise ValueError(f"context {i}: t is not strictly increasing")
    windows = [Window(i, 0, len(c.t)) for i, c in enumerate(contexts)]
    batch = make_batch(
        contexts, windows, normalizer, mode="interp", observed=1.0, rng=np.random.default_rng(0)
    )
    batch.target = torch.zeros_like(batch.target)
    return batch
