"""Validation: fixed batches of the validation episodes, their mse/nll per mode, and the score."""

from __future__ import annotations

import numpy as np
import torch

from worldmodel.batching import Batch, Normalizer, make_batch, tile_windows
from worldmodel.config import TrainConfig
from worldmodel.data import Episode
from worldmodel.models import WorldModel


def trained_modes(config: TrainConfig) -> tuple[str, ...]:
    """The modes training draws from: ``interp``, ``extrap`` or both."""
    return ("interp", "extrap") if config.mode == "both" else (config.mode,)


def scored_modes(config: TrainConfig, model: WorldModel) -> tuple[str, ...]:
    """Modes whose validation mse makes the score: trained, and meaningful for the model."""
    trained = trained_modes(config)
    return tuple(m for m in trained if m in model.scored_modes) or trained


class Validator:
    """The same validation batches at every epoch: at most ``config.eval_windows`` tiled windows
    of ``config.eval_window`` (default ``config.window``) observations (picked with
    ``config.eval_seed``), at ``config.eval_observed``, in batches of ``2 * config.batch_size``,
    for each trained mode."""

    def __init__(
        self,
        episodes: list[Episode],
        normalizer: Normalizer,
        config: TrainConfig,
        device: torch.device,
    ) -> None:
        self.config = config
        self.batches = self._batches(episodes, normalizer, device)

    def _batches(
        self, episodes: list[Episode], normalizer: Normalizer, device: torch.device
    ) -> dict[str, list[Batch]]:
        c = self.config
        windows = tile_windows(episodes, c.eval_window or c.window)
        pick = np.random.default_rng(c.eval_seed)
        if len(windows) > c.eval_windows:
            windows = [
                windows[i] for i in sorted(pick.choice(len(windows), c.eval_windows, replace=False))
            ]
        out = {}
        for mode in trained_modes(c):  # only what is trained
            rng = np.random.default_rng([c.eval_seed, len(mode)])
            out[mode] = [
                make_batch(
                    episodes,
                    windows[i : i + 2 * c.batch_size],
                    normalizer,
                    mode=mode,
                    observed=c.eval_observed,
                    context_fraction=c.context_fraction,
                    rng=rng,
                ).to(device)
                for i in range(0, len(windows), 2 * c.batch_size)
            ]
        return out

    def __call__(self, model: WorldModel) -> dict[str, float]:
        """``val/{mode}_{mse,nll}`` for each trained mode (means over the batches weighted by
        their target points) and ``val/score``: the mean mse over :func:`scored_modes` (the
        best checkpoint minimises it). Leaves ``model`` in training mode."""
        model.eval()
        out: dict[str, float] = {}
        with torch.no_grad():
            for mode, batches in self.batches.items():
                weights = [float(b.target.sum()) for b in batches]
                ms = [model.metrics(b) for b in batches]
                for key in ("mse", "nll"):
                    out[f"val/{mode}_{key}"] = float(
                        np.average([m[key] for m in ms], weights=weights)
                    )
        model.train()
        out["val/score"] = float(
            np.mean([out[f"val/{m}_mse"] for m in scored_modes(self.config, model)])
        )
        return out
