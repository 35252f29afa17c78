"""Training batches built ahead in worker processes (``TrainConfig.loader_workers`` > 0).

A :class:`torch.utils.data.DataLoader` over :class:`StepBatches`: worker ``w`` of ``n`` builds
the batches of steps ``start + w``, ``start + w + n``, ... and the loader hands them out in step
order, ``prefetch_factor`` per worker ahead, in pinned memory when the run is on a GPU. The batch
of step ``k`` is drawn from ``numpy.random.default_rng([seed, k])``: a function of the seed and
the step alone, so the sequence is the same for any number of workers and of processes, and
after a resume. It is not the sequence of ``loader_workers=0``, which draws every batch from one
stream (the one-process default, kept bit for bit).
"""

from __future__ import annotations

import itertools
from collections.abc import Iterator
from dataclasses import fields

import numpy as np
import torch
from torch.utils.data import DataLoader, IterableDataset, get_worker_info

from worldmodel.batching import Batch
from worldmodel.training.sampling import TrainBatches


def step_rng(seed: int, step: int) -> np.random.Generator:
    """The generator of step ``step``'s batch."""
    return np.random.default_rng([seed, step])


class StepBatches(IterableDataset):
    """This process's share of the batches of steps ``start, start + 1, ...`` (endless), split
    over the loader's workers by step; each item a dict of the :class:`Batch` fields."""

    def __init__(self, batches: TrainBatches, start: int) -> None:
        self.batches, self.start = batches, start

    def __iter__(self) -> Iterator[dict[str, torch.Tensor]]:
        info = get_worker_info()
        worker, workers = (info.id, info.num_workers) if info is not None else (0, 1)
        seed = self.batches.config.seed
        for step in itertools.count(self.start + worker, workers):
            batch = self.batches.share(self.batches.global_batch(step_rng(seed, step)))
            yield {f.name: getattr(batch, f.name) for f in fields(batch)}


class PrefetchedBatches:
    """The batches of steps ``start, start + 1, ...`` from ``workers`` worker processes, on
    ``batches.device``. :meth:`close` stops the workers."""

    def __init__(self, batches: TrainBatches, start: int, workers: int) -> None:
        self.device = batches.device
        loader = DataLoader(
            StepBatches(batches, start),
            batch_size=None,
            num_workers=workers,
            pin_memory=self.device.type == "cuda",
            # the workers' base seed comes from here, not from the global torch RNG (whose
            # stream the latent models' samples use)
            generator=torch.Generator().manual_seed(batches.config.seed),
        )
        self._items: Iterator[dict[str, torch.Tensor]] | None = iter(loader)

    def next(self) -> Batch:
        assert self._items is not None, "closed"
        item = next(self._items)
        return Batch(**{k: v.to(self.device, non_blocking=True) for k, v in item.items()})

    def close(self) -> None:
        self._items = None  # the loader's iterator shuts its workers down when collected
