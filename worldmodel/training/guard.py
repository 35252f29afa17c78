"""The non-finite policy: a batch whose loss or gradient is not finite is skipped, never stepped on.

A skipped batch halves the learning rate (``TrainState["lr_scale"]``, floored at 1e-3);
``max_bad_batches`` consecutive ones, or an epoch of nothing but skipped batches, stop training
with a :class:`~worldmodel.errors.TrainingError` naming the last good checkpoint. Any exception
other than torchdiffeq's solver blow-ups is a bug and propagates with its own traceback.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable

import torch

from worldmodel.batching import Batch
from worldmodel.errors import TrainingError
from worldmodel.training.state import TrainState

LossFn = Callable[[Batch], tuple[torch.Tensor, dict[str, float]]]
"""``model.loss``: ``batch -> (scalar loss, metrics)``."""

# torchdiffeq's adaptive solvers (rk_common.py) assert these when the state blows up: the step
# size underflows, or the state is no longer finite. They are a non-finite batch; any other
# AssertionError (or RuntimeError) is a bug and propagates.
_SOLVER_BLOW_UPS = ("underflow in dt", "non-finite values in state")


def is_solver_blow_up(err: AssertionError) -> bool:
    """Whether ``err`` is torchdiffeq's assertion that its adaptive solver blew up."""
    return str(err).startswith(_SOLVER_BLOW_UPS)


def backward(
    loss_fn: LossFn,
    batch: Batch,
    parameters: Iterable[torch.nn.Parameter],
    grad_clip: float,
    agree: Callable[[bool], bool] = bool,
) -> dict[str, float] | None:
    """Loss, backward and gradient clipping (global norm ``grad_clip``); the batch's metrics,
    or None when the loss or the gradient norm is not finite or the solver blew up (the
    gradients are then unusable: zero them before the next step).

    ``agree(ok)`` is True when the loss is finite on every process of a distributed run (all
    skip a batch together, or none does: a process that skipped the backward pass would leave
    the others waiting in DDP's gradient all-reduce); the gradients, averaged over the
    processes, then have the same norm on every one."""
    try:
        loss, metrics = loss_fn(batch)
        finite = bool(torch.isfinite(loss))
    except AssertionError as err:
        if not is_solver_blow_up(err):  # a bug: surface it with its own traceback
            raise
        loss, metrics, finite = None, None, False
    if not agree(finite):
        return None
    try:
        loss.backward()
        norm = torch.nn.utils.clip_grad_norm_(parameters, grad_clip)
        return metrics if bool(torch.isfinite(norm)) else None
    except AssertionError as err:
        if not is_solver_blow_up(err):
            raise
        return None


def record(state: TrainState, ok: bool) -> None:
    """Count a good batch (resets the run of bad ones) or a skipped one (halves the lr scale)."""
    if ok:
        state["bad_batches"] = 0
    else:
        state["bad_batches"] += 1
        state["lr_scale"] = max(state["lr_scale"] * 0.5, 1e-3)


def check_diverged(state: TrainState, max_bad_batches: int, last_good: Callable[[], str]) -> None:
    """Raise once ``max_bad_batches`` consecutive batches were skipped (``last_good()`` says
    where the best checkpoint is)."""
    if state["bad_batches"] >= max_bad_batches:
        raise TrainingError(
            f"training diverged: {max_bad_batches} consecutive batches gave a"
            f" non-finite loss or gradient; {last_good()}"
        )


def check_epoch(epoch: int, good: int, skipped: int, last_good: Callable[[], str]) -> None:
    """Raise when no batch of ``epoch`` was trained: it is never reported (or saved) as one."""
    if not good:
        raise TrainingError(
            f"epoch {epoch}: all {skipped} batches gave a non-finite loss or gradient,"
            f" nothing was trained; {last_good()}"
        )
