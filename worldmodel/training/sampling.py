"""The episodes a run trains on, their normalisation, and the training batches drawn from them."""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import torch

from worldmodel.batching import Batch, Normalizer, context_points, make_batch, sample_windows
from worldmodel.config import TrainConfig
from worldmodel.data import Dataset, Episode, episode_lengths, field_chunks


@dataclass(frozen=True)
class Split:
    """Training and validation episodes (the test split is never touched while training)."""

    train: list[Episode]
    val: list[Episode]


def split_episodes(dataset: Dataset, config: TrainConfig) -> Split:
    """Split by episode with ``config.split`` and ``config.split_seed``; refuses a dataset that
    leaves no training or no validation episode."""
    splits = dataset.split(config.split, config.split_seed)
    if splits["train"] is None or splits["val"] is None:
        raise ValueError(
            f"dataset of {len(dataset)} episodes leaves no train or validation episodes "
            f"with split {config.split}"
        )
    return Split(splits["train"].episodes, splits["val"].episodes)


def fit_normalizer(episodes: list[Episode], normalize: bool) -> Normalizer:
    """The training split's statistics (fitted, and so checked, either way); the identity when
    ``normalize`` is False."""
    normalizer = Normalizer.fit(episodes)
    if not normalize:
        dim = normalizer.mean.shape[0]
        normalizer = Normalizer(np.zeros(dim), np.ones(dim))
    return normalizer


def observation_bounds(
    normalizer: Normalizer, episodes: list[Episode]
) -> tuple[np.ndarray, np.ndarray]:
    """``(low, high)``, each ``(obs_dim,)`` in normalised units: the range seen in ``episodes``
    widened by 10 % on each side (imagined observations are kept inside it)."""
    # streamed raw extremes, normalised after: the normalisation is increasing in each
    # dimension (std > 0), so this is the min/max of the normalised data exactly, without
    # holding every observation of a sharded dataset at once
    lo = hi = None
    for chunk in field_chunks(episodes, "obs"):
        lo = chunk.min(0) if lo is None else np.minimum(lo, chunk.min(0))
        hi = chunk.max(0) if hi is None else np.maximum(hi, chunk.max(0))
    lo, hi = normalizer.normalize(lo), normalizer.normalize(hi)
    return lo - 0.1 * (hi - lo), hi + 0.1 * (hi - lo)


def steps_per_epoch(config: TrainConfig, episodes: list[Episode]) -> int:
    """``config.steps_per_epoch``, or (None) about one pass over the training transitions."""
    transitions = int(episode_lengths(episodes).sum()) - len(episodes)  # opens no shard
    return config.steps_per_epoch or max(
        1, math.ceil(transitions / (config.batch_size * (config.window - 1)))
    )


def take_rows(batch: Batch, rows: slice) -> Batch:
    """Windows ``rows`` of ``batch`` on the batch's whole time grid (the grid points only other
    windows have stay: each kept window is the same tensor rows as in the whole batch)."""
    return Batch(
        times=batch.times,
        obs=batch.obs[rows],
        actions=batch.actions[rows],
        exists=batch.exists[rows],
        context=batch.context[rows],
        target=batch.target[rows],
    )


class TrainBatches:
    """Random training batches of ``config.batch_size`` windows, drawn with ``rng`` alone.

    Every draw (the mode when ``mode="both"``, the observed fraction, the windows, their masks)
    comes from ``rng``, whose state the checkpoints carry, so the sequence of batches is a
    function of the seed and the step. This is the one place batches are drawn. A process of a
    distributed run draws the same global batch as every other (the same ``rng`` stream as a
    one-process run) and keeps its ``rows`` of it.
    """

    def __init__(
        self,
        episodes: list[Episode],
        normalizer: Normalizer,
        config: TrainConfig,
        rng: np.random.Generator,
        device: torch.device,
        rows: slice | None = None,
    ) -> None:
        self.episodes, self.normalizer, self.config = episodes, normalizer, config
        self.rng, self.device, self.rows = rng, device, rows

    def global_batch(self, rng: np.random.Generator) -> Batch:
        """The next global batch drawn from ``rng``, on the CPU."""
        c = self.config
        mode = c.mode if c.mode != "both" else ("interp", "extrap")[int(rng.integers(2))]
        observed = float(rng.uniform(c.observed_min, c.observed_max))
        length, count, shortest = c.window, None, None
        if c.window_starts == "any":
            # windows cut short by their episode's end keep a whole window's context points
            count = context_points(c.window, c.context_fraction)
            shortest = count + 1
        if c.long_window is not None and rng.uniform() < c.long_share:
            # a long window keeps a short one's context points and scores the longer rest
            # (a window cut short by its episode's end too)
            length, count = c.long_window, context_points(c.window, c.context_fraction)
        windows = sample_windows(self.episodes, c.batch_size, length, rng, shortest)
        return make_batch(
            self.episodes,
            windows,
            self.normalizer,
            mode=mode,
            observed=observed,
            context_fraction=c.context_fraction,
            context_count=count,
            rng=rng,
        )

    def share(self, batch: Batch) -> Batch:
        """This process's windows of a global batch (all of them in a one-process run)."""
        return batch if self.rows is None else take_rows(batch, self.rows)

    def draw(self) -> Batch:
        """The next batch (this process's share), on ``device``."""
        return self.share(self.global_batch(self.rng)).to(self.device)
