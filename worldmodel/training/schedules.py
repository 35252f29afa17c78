"""Per-step schedules: learning rate (a ``torch.optim.lr_scheduler.LambdaLR``), KL weight and
the open-loop horizon scored in training.

All are functions of the step count alone (``TrainState["step"]``, skipped batches included),
so a resumed run rebuilds them from it: nothing but the step is checkpointed, and a resume with
more ``epochs`` stretches the cosine over the new total, as a run started with them would.
"""

from __future__ import annotations

import math
import re
import warnings
from typing import Literal

import torch
from torch.optim.lr_scheduler import LambdaLR


def lr_factor(schedule: Literal["cosine", "constant"], step: int, total_steps: int) -> float:
    """Factor of the peak learning rate at ``step`` of ``total_steps``: 1, or a half cosine from
    1 down to 0.05 at the last step (and 0.05 after it)."""
    if schedule == "constant":
        return 1.0
    frac = min(1.0, step / total_steps)
    return 0.05 + 0.95 * 0.5 * (1 + math.cos(math.pi * frac))


def open_loop_horizon(
    step: int, total_steps: int, start: int | None, ramp: float, full: int
) -> int | None:
    """Points scored past each training window's anchor at ``step`` (a horizon schedule,
    :func:`worldmodel.batching.cut_horizon`): ``start`` at step 0, growing linearly to ``full``
    (the most a window scores) over the first ``ramp`` of ``total_steps``; None (score the
    whole window) once it reaches ``full``, or always when ``start`` is None. Like the learning
    rate, a resume with more epochs stretches it over the new total."""
    if start is None:
        return None
    frac = min(1.0, step / max(1.0, ramp * total_steps))
    horizon = int(round(start + (full - start) * frac))
    return None if horizon >= full else horizon


def kl_weight(step: int, warmup_steps: int, beta: float = 1.0) -> float:
    """KL weight at ``step``: rises linearly from 0 to ``beta`` over ``warmup_steps`` (0: always
    ``beta``)."""
    return beta * (min(1.0, step / warmup_steps) if warmup_steps else 1.0)


class LearningRate:
    """Sets the optimiser's learning rate for every step:
    ``peak * lr_factor(schedule, step, total_steps) * scale``, where ``scale`` is the
    non-finite guard's factor (``TrainState["lr_scale"]``).

    The schedule is a ``LambdaLR`` positioned at ``step`` when built (a resumed run passes its
    step count); :meth:`advance` after every batch, skipped or not, moves it on by one.
    """

    def __init__(
        self,
        optimizer: torch.optim.Optimizer,
        peak: float,
        schedule: Literal["cosine", "constant"],
        total_steps: int,
        *,
        step: int = 0,
        scale: float = 1.0,
    ) -> None:
        self.optimizer = optimizer
        for group in optimizer.param_groups:  # the peak, also after loading a saved optimiser
            group["initial_lr"] = peak
        self.scheduler = LambdaLR(
            optimizer, lambda s: lr_factor(schedule, s, total_steps), last_epoch=step - 1
        )
        self._apply(scale)

    def _apply(self, scale: float) -> None:
        for group in self.optimizer.param_groups:
            group["lr"] = group["lr"] * scale

    def advance(self, scale: float) -> None:
        """Move to the next step, with the guard's current ``scale``."""
        with warnings.catch_warnings():
            # a skipped batch (no optimiser step) advances the schedule too, by design
            warnings.filterwarnings("ignore", re.escape("Detected call of `lr_scheduler.step()`"))
            self.scheduler.step()
        self._apply(scale)

    @property
    def value(self) -> float:
        """The learning rate of the next step."""
        return float(self.optimizer.param_groups[0]["lr"])
