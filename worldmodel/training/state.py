"""The trainer's progress: a plain dict, saved as JSON in every ``last.safetensors``."""

from __future__ import annotations

import math
from typing import TypedDict


class TrainState(TypedDict):
    """What a resumed run needs besides weights, optimiser and RNGs (key order is the saved one)."""

    epoch: int
    """Last finished epoch (0 before the first)."""
    step: int
    """Batches drawn so far, skipped ones included: the position in the schedules."""
    best: float | None
    """Best ``val/score`` so far (None before the first finite one)."""
    best_epoch: int
    """Epoch of ``best`` (-1 before the first)."""
    stale: int
    """Epochs since the score last improved (early stopping counts them)."""
    lr_scale: float
    """Learning-rate factor of the non-finite guard: halved per skipped batch, never below 1e-3."""
    bad_batches: int
    """Consecutive skipped batches (the guard stops training at ``max_bad_batches``)."""


def new_state() -> TrainState:
    """The state of a run that has not trained yet."""
    return {
        "epoch": 0,
        "step": 0,
        "best": None,
        "best_epoch": -1,
        "stale": 0,
        "lr_scale": 1.0,
        "bad_batches": 0,
    }


def record_score(state: TrainState, epoch: int, score: float) -> bool:
    """Note an epoch's ``val/score``; True when it is the best so far (a finite improvement)."""
    best = state["best"]
    improved = math.isfinite(score) and (best is None or score < best)
    if improved:
        state.update(best=score, best_epoch=epoch, stale=0)
    else:
        state["stale"] += 1
    return improved


def out_of_patience(state: TrainState, patience: int) -> bool:
    """Early stopping: ``patience`` epochs without improvement (``patience=0``: never)."""
    return bool(patience) and state["stale"] >= patience
