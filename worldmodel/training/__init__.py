"""Training in parts; :mod:`worldmodel.train` is the public entry point.

* ``trainer.py``: :class:`Trainer`, the loop that composes the units below.
* ``run_dir.py``: ``config.json`` (settings, merged on resume; env and dataset) and :func:`load`.
* ``sampling.py``: the episode split, the normaliser, the training batches (:class:`TrainBatches`).
* ``schedules.py``: learning rate (a torch ``LambdaLR``) and KL weight per step.
* ``guard.py``: the non-finite policy (skipped batches, divergence).
* ``validation.py``: fixed validation batches and the score.
* ``checkpointing.py``: the trainer state and RNG states in checkpoints; resuming.
* ``writers.py``: everything written or shown (:class:`RunWriters`, off on non-zero ranks).
* ``state.py``: :class:`TrainState`, early stopping.
* ``device.py``: :func:`resolve_device` (``cuda:LOCAL_RANK`` in a distributed run).
* ``distributed.py``: the processes of a ``torchrun`` run, their collectives, the DDP wrapper.
* ``loader.py``: batches built ahead in ``DataLoader`` workers (``loader_workers`` > 0).
"""

from worldmodel.training.device import resolve_device
from worldmodel.training.run_dir import RUN_FORMAT, load
from worldmodel.training.state import TrainState
from worldmodel.training.trainer import Callback, Trainer

__all__ = ["RUN_FORMAT", "Callback", "TrainState", "Trainer", "load", "resolve_device"]
