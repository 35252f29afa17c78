"""A run's processes under ``torchrun``: rank, world size and the few collectives the trainer uses.

``torchrun`` sets ``RANK``, ``WORLD_SIZE`` and ``LOCAL_RANK`` (and the rendezvous address); a
process started without them is a world of one, and every method here is then a no-op. The
process group uses gloo for CPU tensors and NCCL for CUDA ones (when torch sees CUDA), so the
trainer's own small collectives run on CPU tensors whatever the device, while DDP's gradient
all-reduce runs on the model's device. The model is wrapped in
:class:`~torch.nn.parallel.DistributedDataParallel` by :func:`wrap_loss`.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, TypeVar

import torch
import torch.distributed as dist
from torch import nn
from torch.nn.parallel import DistributedDataParallel

from worldmodel.batching import Batch
from worldmodel.training.guard import LossFn

T = TypeVar("T")
_CPU = torch.device("cpu")


@dataclass(frozen=True)
class Processes:
    """This process's place in the run: ``rank`` of ``world`` (``local_rank`` on its machine).

    ``owns_group``: the process group was started here (and :meth:`close` ends it).
    """

    rank: int = 0
    world: int = 1
    local_rank: int = 0
    owns_group: bool = False

    @classmethod
    def from_env(cls) -> Processes:
        """Join torchrun's process group when ``WORLD_SIZE`` > 1 (started here unless it already
        is); a world of one otherwise."""
        world = int(os.environ.get("WORLD_SIZE", "1"))
        if world <= 1:
            return cls()
        owns = not dist.is_initialized()
        if owns:
            backend = "cpu:gloo,cuda:nccl" if torch.cuda.is_available() else "gloo"
            dist.init_process_group(backend)
        return cls(
            dist.get_rank(), dist.get_world_size(), int(os.environ.get("LOCAL_RANK", "0")), owns
        )

    @property
    def distributed(self) -> bool:
        return self.world > 1

    @property
    def main(self) -> bool:
        """Rank 0: the one process that writes and shows anything."""
        return self.rank == 0

    def share(self, batch_size: int) -> slice:
        """This rank's rows of a global batch of ``batch_size`` windows (refuses a batch that
        does not split evenly: each rank's loss is a mean over its windows, and DDP averages
        the ranks' gradients, which is the global batch's gradient only for equal shares)."""
        if batch_size % self.world:
            raise ValueError(
                f"batch_size {batch_size} does not split evenly over {self.world} processes; "
                f"choose a multiple of {self.world} (the global batch is batch_size windows)"
            )
        size = batch_size // self.world
        return slice(self.rank * size, (self.rank + 1) * size)

    def agree(self, ok: bool) -> bool:
        """True when ``ok`` on every rank (so that all skip a batch together)."""
        if not self.distributed:
            return ok
        flag = torch.tensor([int(ok)], device=_CPU)
        dist.all_reduce(flag, op=dist.ReduceOp.MIN)
        return bool(flag.item())

    def mean(self, values: dict[str, float]) -> dict[str, float]:
        """Each value averaged over the ranks (every rank has the same keys)."""
        if not self.distributed:
            return values
        t = torch.tensor(list(values.values()), dtype=torch.float64, device=_CPU)
        dist.all_reduce(t)
        return dict(zip(values, (t / self.world).tolist()))

    def from_main(self, compute: Callable[[], T]) -> T:
        """``compute()`` on rank 0, its result (picklable) on every rank; an exception raised
        there is raised on every rank."""
        if not self.distributed:
            return compute()
        box: list[Any] = [None]
        if self.main:
            try:
                box[0] = (True, compute())
            except Exception as err:  # every rank raises it, none waits forever
                box[0] = (False, err)
        dist.broadcast_object_list(box, src=0, device=_CPU)
        ok, value = box[0]
        if not ok:
            raise value
        return value

    def gather(self, value: T) -> list[T]:
        """``value`` of every rank, in rank order (picklable values)."""
        if not self.distributed:
            return [value]
        out: list[Any] = [None] * self.world
        dist.all_gather_object(out, value)
        return out

    def close(self, *, done: bool = True) -> None:
        """End the process group if it was started here: when ``done``, once every rank is (a
        rank that left early could abort the others' connections); after an error, at once
        (the other ranks may never get there)."""
        if self.owns_group and dist.is_initialized():
            if done:
                dist.barrier()
            dist.destroy_process_group()


class _Loss(nn.Module):
    """``forward(batch) = model.loss(batch)``, looked up at call time (tests replace it)."""

    def __init__(self, model: nn.Module) -> None:
        super().__init__()
        self.model = model

    def forward(self, batch: Batch) -> tuple[torch.Tensor, dict[str, float]]:
        return self.model.loss(batch)


def wrap_loss(model: nn.Module, processes: Processes, device: torch.device) -> LossFn:
    """The model's loss through :class:`DistributedDataParallel` (whose backward averages the
    ranks' gradients); the model's own ``loss`` in a world of one. The one place a model is
    wrapped. Unused parameters are allowed (mlp-delta has two): their gradients stay None."""
    if not processes.distributed:
        return lambda batch: model.loss(batch)
    ids = [device.index] if device.type == "cuda" else None
    return DistributedDataParallel(_Loss(model), device_ids=ids, find_unused_parameters=True)
