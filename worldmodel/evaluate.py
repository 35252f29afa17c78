"""Evaluation of trained models.

``heldout_error``: interpolation and extrapolation MSE (normalised units, the model's own
normalisation) on held-out episodes at several observed fractions, with masks fixed by seed so
that every model is scored on the same points.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import torch

from worldmodel.batching import make_batch, tile_windows
from worldmodel.data import Dataset
from worldmodel.models import WorldModel


def heldout_split(model: WorldModel, dataset: Dataset, split: str = "test") -> Dataset:
    """The split of ``dataset`` that the model's run held out (its saved split settings)."""
    train = model.run_config["train"]
    part = dataset.split(tuple(train["split"]), train["split_seed"])[split]
    if part is None:
        raise ValueError(
            f"the run's split {train['split']} leaves no {split!r} episodes in this dataset"
        )
    return part


def heldout_error(
    model: WorldModel,
    episodes: Dataset,
    *,
    observed: Sequence[float] = (0.1, 0.3, 0.5, 1.0),
    modes: Sequence[str] = ("interp", "extrap"),
    window: int = 50,
    context_fraction: float = 0.5,
    samples: int = 1,
    batch_size: int = 64,
    seed: int = 0,
) -> list[dict[str, Any]]:
    """MSE and NLL per (mode, observed fraction) over non-overlapping windows of every episode.

    Returns rows ``{"mode", "observed", "mse", "nll", "points"}``; ``mse`` is averaged over every
    scored (point, dimension) entry.
    """
    windows = tile_windows(episodes.episodes, window)
    norm = model.normalizer
    device = next(model.parameters()).device
    rows = []
    for mode in modes:
        for p in observed:
            rng = np.random.default_rng([seed, int(p * 1000), len(mode)])
            sq = nl = n = 0.0
            for i in range(0, len(windows), batch_size):
                batch = make_batch(episodes.episodes, windows[i : i + batch_size], norm, mode=mode, observed=p,
                                   context_fraction=context_fraction, rng=rng).to(device)  # fmt: skip
                with torch.no_grad():
                    m = model.metrics(batch, samples=samples)
                k = float(batch.target.sum()) * model.obs_dim
                sq, nl, n = sq + m["mse"] * k, nl + m["nll"] * k, n + k
            rows.append(
                {
                    "mode": mode,
                    "observed": p,
                    "mse": sq / n,
                    "nll": nl / n,
                    "points": int(n / model.obs_dim),
                }
            )
    return rows
