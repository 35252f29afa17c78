"""Training: :class:`Trainer` (validation, checkpoints, resume, NaN safety), :func:`train` and
:func:`load`. The parts live in :mod:`worldmodel.training`.

A run directory ``runs/NAME/`` holds ``config.json`` (this config, the dataset, the env and its
spaces), ``model.safetensors`` (best validation score), ``last.safetensors`` (weights,
optimizer and trainer state of the last finished epoch: ``resume`` continues from it),
``metrics.csv`` and ``tb/`` (TensorBoard). Resuming reproduces the uninterrupted run exactly
(RNG states are checkpointed); an epoch cut short (even by ``kill -9``) is redone. Under
``torchrun -m worldmodel train`` the processes train one run with DistributedDataParallel (see
``docs/distributed.md``).
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from worldmodel.config import TrainConfig
from worldmodel.data import Dataset
from worldmodel.errors import TrainingError
from worldmodel.models import WorldModel
from worldmodel.training import RUN_FORMAT, Callback, Trainer, load, resolve_device

__all__ = [
    "RUN_FORMAT",
    "Callback",
    "TrainConfig",
    "Trainer",
    "TrainingError",
    "load",
    "resolve_device",
    "train",
]


def train(
    dataset: Dataset | str | Path,
    config: TrainConfig | None = None,
    out: str | Path = "runs/latest",
    *,
    resume: bool = False,
    callbacks: Sequence[Callback] = (),
) -> WorldModel:
    """Train a model and return the best one (loaded from ``out/model.safetensors``)."""
    from worldmodel.data import load_dataset

    if config is not None and not isinstance(config, TrainConfig):
        raise TypeError(
            f"config must be a TrainConfig (TrainConfig.from_dict turns a dict into one), "
            f"got {type(config).__name__}"
        )
    path = None
    if not isinstance(dataset, Dataset):
        path, dataset = dataset, load_dataset(dataset)
    Trainer(
        config or TrainConfig(), dataset, out, resume=resume, callbacks=callbacks, dataset_path=path
    ).fit()
    return load(out)
