"""The training loop, composed of the units beside it: run directory, batches, schedules,
non-finite guard, validation, checkpoints and writers."""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch

from worldmodel.batching import Batch
from worldmodel.config import TrainConfig
from worldmodel.data import Dataset
from worldmodel.models import WorldModel, make_model
from worldmodel.training import guard
from worldmodel.training.checkpointing import (
    checkpoint_meta,
    last_good,
    restore_last,
    torch_rng_state,
)
from worldmodel.training.device import resolve_device
from worldmodel.training.run_dir import run_config, settle_config
from worldmodel.training.sampling import (
    TrainBatches,
    fit_normalizer,
    observation_bounds,
    split_episodes,
    steps_per_epoch,
)
from worldmodel.training.schedules import LearningRate, kl_weight
from worldmodel.training.state import TrainState, new_state, out_of_patience, record_score
from worldmodel.training.validation import Validator
from worldmodel.training.writers import RunWriters

Callback = Callable[["Trainer", int, dict[str, float]], bool | None]
"""``callback(trainer, epoch, metrics)`` after each epoch; returning True stops training."""


class Trainer:
    """Train one model on one dataset into ``run_dir``.

    Args:
        config: the settings (on ``resume``, the run's saved config is used instead, with
            this config's ``epochs``).
        dataset: episodes of one env; split by episode with ``config.split``.
        run_dir: where everything is written.
        resume: continue from ``run_dir/last.safetensors``.
        callbacks: called after every epoch (see :data:`Callback`).
        dataset_path: recorded in ``config.json``.
    """

    def __init__(
        self,
        config: TrainConfig,
        dataset: Dataset,
        run_dir: str | Path,
        *,
        resume: bool = False,
        callbacks: Sequence[Callback] = (),
        dataset_path: str | Path | None = None,
    ) -> None:
        self.run_dir = Path(run_dir)
        config = settle_config(config, dataset, self.run_dir, resume=resume)
        self.config, self.callbacks, self.dataset = config, list(callbacks), dataset
        split = split_episodes(dataset, config)
        self.train_eps, self.val_eps = split.train, split.val
        self.device = resolve_device(config.device)
        torch.manual_seed(config.seed)
        self.rng = np.random.default_rng(config.seed)
        # the one place the model is built and placed (a distributed run would wrap it here)
        self.model: WorldModel = make_model(
            config.model, dataset.obs_dim, dataset.act_dim, config.net
        )
        self.normalizer = fit_normalizer(self.train_eps, config.normalize_obs)
        self.model.set_normalizer(self.normalizer)
        self.model.set_obs_bounds(*observation_bounds(self.normalizer, self.train_eps))
        self.model.to(self.device)
        self.optimizer = torch.optim.Adam(
            self.model.parameters(), lr=config.lr, weight_decay=config.weight_decay
        )
        self.steps_per_epoch = steps_per_epoch(config, self.train_eps)
        self.state: TrainState = new_state()
        self.batches = TrainBatches(self.train_eps, self.normalizer, config, self.rng, self.device)
        self.validator = Validator(self.val_eps, self.normalizer, config, self.device)
        self.writers = RunWriters(
            self.run_dir, tensorboard=config.tensorboard, progress=config.progress
        )
        if resume:
            self.state = restore_last(
                self.run_dir / "last.safetensors", self.model, self.optimizer, self.rng, self.device
            )
            self.writers.truncate(self.state["epoch"])
        else:
            self.writers.write_config(run_config(config, dataset, dataset_path))
        self.lr = LearningRate(  # positioned at the (restored) step: nothing else to restore
            self.optimizer,
            config.lr,
            config.lr_schedule,
            max(1, config.epochs * self.steps_per_epoch),
            step=self.state["step"],
            scale=self.state["lr_scale"],
        )

    # -- one step -----------------------------------------------------------------------------
    def _train_batch(self) -> Batch:
        return self.batches.draw()

    def train_step(self, batch: Batch) -> dict[str, float] | None:
        """One optimiser step; ``None`` when the batch gave a non-finite loss or gradient, or
        torchdiffeq's adaptive solver blew up (the step is skipped and the learning rate
        halved). Any other exception propagates: it is a bug, not a bad batch."""
        self.model.kl_weight = kl_weight(self.state["step"], self.config.kl_warmup_steps)
        self.optimizer.zero_grad(set_to_none=True)
        metrics = guard.backward(
            self.model.loss, batch, self.model.parameters(), self.config.grad_clip
        )
        self.state["step"] += 1
        if metrics is None:
            self.optimizer.zero_grad(set_to_none=True)
        else:
            self.optimizer.step()
        guard.record(self.state, ok=metrics is not None)
        self.lr.advance(self.state["lr_scale"])
        return metrics

    # -- evaluation -----------------------------------------------------------------------------
    def validate(self) -> dict[str, float]:
        """``val/{mode}_{mse,nll}`` for each trained mode on the fixed validation batches, and
        ``val/score`` (see :class:`~worldmodel.training.validation.Validator`)."""
        return self.validator(self.model)

    # -- the loop ---------------------------------------------------------------------------------
    def _last_good(self) -> str:
        return last_good(self.run_dir, self.state["best_epoch"])

    def _train_epoch(self, epoch: int) -> tuple[dict[str, float], int]:
        """``steps_per_epoch`` batches: the mean of each training metric over the good ones
        (``train/...``) and the number skipped."""
        c = self.config
        sums: dict[str, float] = {}
        good = skipped = 0
        bar = self.writers.progress(self.steps_per_epoch, f"{c.model} epoch {epoch}/{c.epochs}")
        for _ in bar:
            metrics = self.train_step(self._train_batch())
            if metrics is None:
                skipped += 1
                guard.check_diverged(self.state, c.max_bad_batches, self._last_good)
                continue
            good += 1
            for k, v in metrics.items():
                sums[k] = sums.get(k, 0.0) + v
            bar.set_postfix(loss=f"{metrics['loss']:.4g}")
        guard.check_epoch(epoch, good, skipped, self._last_good)
        return {f"train/{k}": v / max(good, 1) for k, v in sums.items()}, skipped

    def fit(self) -> dict[str, float]:
        """Train until ``epochs``, early stopping or a callback stops it; returns the last
        epoch's metrics. The best model is in ``run_dir/model.safetensors``."""
        c = self.config
        last: dict[str, float] = {}
        for epoch in range(self.state["epoch"] + 1, c.epochs + 1):
            start = time.perf_counter()
            row, skipped = self._train_epoch(epoch)
            self.state["epoch"] = epoch
            row.update(self.validate())
            row.update(
                {
                    "train/lr": self.lr.value,
                    "train/skipped_batches": skipped,
                    "time/epoch_s": time.perf_counter() - start,
                }
            )
            improved = record_score(self.state, epoch, row["val/score"])
            if improved:
                self.writers.save("model.safetensors", self.model, self._meta())
            self.writers.log(epoch, self.state["step"], row)
            self.writers.save(
                "last.safetensors",  # the RNGs too: a resumed run draws what this one would
                self.model,
                self._meta(),
                self.optimizer,
                torch_rng_state(self.device),
            )
            self.writers.epoch_line(epoch, row, improved, skipped)
            last = row
            stop = any(cb(self, epoch, row) for cb in self.callbacks)
            if stop or out_of_patience(self.state, c.patience):
                break
        self.writers.close()
        return last

    def _meta(self) -> dict[str, Any]:
        return checkpoint_meta(self.config.model, self.state, self.rng)
