"""The training loop, composed of the units beside it: run directory, batches, schedules,
non-finite guard, validation, checkpoints, writers and the processes of a distributed run."""

from __future__ import annotations

import gc
import time
from collections.abc import Callable, Sequence
from functools import partial
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch.optim.swa_utils import AveragedModel, get_ema_multi_avg_fn

from worldmodel.batching import Batch, context_points, cut_horizon
from worldmodel.config import TrainConfig
from worldmodel.data import Dataset
from worldmodel.models import WorldModel, make_model
from worldmodel.training import guard
from worldmodel.training.checkpointing import (
    checkpoint_meta,
    ema_extras,
    last_good,
    rank_rng_extras,
    restore_last,
    seed_rank_stream,
    torch_rng_state,
)
from worldmodel.training.device import resolve_device
from worldmodel.training.distributed import Processes, wrap_loss
from worldmodel.training.loader import PrefetchedBatches
from worldmodel.training.run_dir import resumed_run_config, run_config, settle_config
from worldmodel.training.sampling import (
    TrainBatches,
    fit_normalizer,
    observation_bounds,
    split_episodes,
    steps_per_epoch,
)
from worldmodel.training.schedules import LearningRate, kl_weight, open_loop_horizon
from worldmodel.training.state import TrainState, new_state, out_of_patience, record_score
from worldmodel.training.validation import Validator
from worldmodel.training.writers import RunWriters

Callback = Callable[["Trainer", int, dict[str, float]], bool | None]
"""``callback(trainer, epoch, metrics)`` after each epoch; returning True stops training."""


class Trainer:
    """Train one model on one dataset into ``run_dir``.

    Under ``torchrun`` (``WORLD_SIZE`` > 1) each process trains on its share of every global
    batch of ``config.batch_size`` windows through DistributedDataParallel; rank 0 alone
    validates, writes and shows anything, and its decisions (best epoch, early stopping,
    callbacks) are every rank's. The process group is started here unless it already was, and
    then ended at the end of :meth:`fit`.

    Args:
        config: the settings (on ``resume``, the run's saved config is used instead, with
            this config's epochs and run options; see
            :func:`~worldmodel.training.run_dir.settle_config`).
        dataset: episodes of one env; split by episode with ``config.split``.
        run_dir: where everything is written.
        resume: continue from ``run_dir/last.safetensors``.
        callbacks: called after every epoch (see :data:`Callback`; on rank 0 only).
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
        self.processes = procs = Processes.from_env()
        try:
            self._build(config, dataset, resume, callbacks, dataset_path)
        except BaseException:
            procs.close(done=False)
            raise

    def _build(
        self,
        config: TrainConfig,
        dataset: Dataset,
        resume: bool,
        callbacks: Sequence[Callback],
        dataset_path: str | Path | None,
    ) -> None:
        procs = self.processes
        # rank 0 alone checks the run directory (the others would find its config.json)
        config = procs.from_main(
            lambda: settle_config(config, dataset, self.run_dir, resume=resume)
        )
        rows = procs.share(config.batch_size) if procs.distributed else None
        self.config, self.callbacks, self.dataset = config, list(callbacks), dataset
        split = split_episodes(dataset, config)
        self.train_eps, self.val_eps = split.train, split.val
        self.device = resolve_device(config.device, procs.local_rank if procs.distributed else None)
        torch.manual_seed(config.seed)
        self.rng = np.random.default_rng(config.seed)
        # the one place the model is built, placed and (in a distributed run) wrapped
        self.model: WorldModel = make_model(
            config.model, dataset.obs_dim, dataset.act_dim, config.net
        )
        self.normalizer = fit_normalizer(self.train_eps, config.normalize_obs)
        self.model.set_normalizer(self.normalizer)
        self.model.set_obs_bounds(*observation_bounds(self.normalizer, self.train_eps))
        self.model.to(self.device)
        self._loss = wrap_loss(self.model, procs, self.device)
        if procs.rank:  # the same initial weights everywhere, each rank its own samples
            seed_rank_stream(config.seed, procs.rank)
        self.optimizer = torch.optim.Adam(
            self.model.parameters(), lr=config.lr, weight_decay=config.weight_decay
        )
        self.ema = (
            AveragedModel(
                self.model,
                multi_avg_fn=get_ema_multi_avg_fn(config.ema_decay),
                use_buffers=True,
            )
            if config.ema_decay is not None
            else None
        )
        self.steps_per_epoch = steps_per_epoch(config, self.train_eps)
        self.state: TrainState = new_state()
        self.batches = TrainBatches(
            self.train_eps, self.normalizer, config, self.rng, self.device, rows
        )
        self._prefetched: PrefetchedBatches | None = None
        self.validator = Validator(self.val_eps, self.normalizer, config, self.device)
        self.writers = RunWriters(
            self.run_dir,
            tensorboard=config.tensorboard,
            progress=config.progress,
            enabled=procs.main,
        )
        if resume:
            self.state = restore_last(
                self.run_dir / "last.safetensors",
                self.model,
                self.optimizer,
                self.rng,
                self.device,
                procs.rank,
                self.ema,
            )
            self.writers.truncate(self.state["epoch"], self.state["step"])
            if procs.main:
                self.writers.write_config(resumed_run_config(self.run_dir, config))
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
        """The next training batch, cut to the horizon schedule's horizon at this step."""
        c = self.config
        if not c.loader_workers:
            batch = self.batches.draw()
        else:
            if self._prefetched is None:  # from the step about to be trained on
                self._prefetched = PrefetchedBatches(
                    self.batches, self.state["step"], c.loader_workers
                )
            batch = self._prefetched.next()
        # the most points a window scores past its anchor: extrapolation's scored region, or
        # (interpolation scores every point) all but the first
        full = c.window - (
            context_points(c.window, c.context_fraction) if c.mode == "extrap" else 1
        )
        horizon = open_loop_horizon(
            self.state["step"],
            c.epochs * self.steps_per_epoch,
            c.horizon_start,
            c.horizon_ramp,
            full,
        )
        return batch if horizon is None else cut_horizon(batch, horizon)

    def train_step(self, batch: Batch) -> dict[str, float] | None:
        """One optimiser step; ``None`` when the batch gave a non-finite loss or gradient, or
        torchdiffeq's adaptive solver blew up (the step is skipped and the learning rate
        halved). Any other exception propagates: it is a bug, not a bad batch. The metrics are
        averaged over the processes of a distributed run."""
        self.model.kl_weight = kl_weight(
            self.state["step"], self.config.kl_warmup_steps, self.config.kl_beta
        )
        self.optimizer.zero_grad(set_to_none=True)
        loss_fn = self._loss if self.processes.distributed else self.model.loss
        metrics = guard.backward(
            loss_fn,
            batch,
            self.model.parameters(),
            self.config.grad_clip,
            agree=self.processes.agree,
        )
        if self.processes.distributed and self.processes.agree(metrics is not None):
            metrics = self.processes.mean(metrics)
        self.state["step"] += 1
        if metrics is None:
            self.optimizer.zero_grad(set_to_none=True)
        else:
            self.optimizer.step()
            if self.ema is not None:
                self.ema.update_parameters(self.model)
        guard.record(self.state, ok=metrics is not None)
        self.lr.advance(self.state["lr_scale"])
        return metrics

    # -- evaluation -----------------------------------------------------------------------------
    @property
    def evaluated_model(self) -> WorldModel:
        """The model that is validated and saved: the weight average when there is one."""
        return self.model if self.ema is None else self.ema.module

    def validate(self) -> dict[str, float]:
        """``val/{mode}_{mse,nll}`` for each trained mode on the fixed validation batches, and
        ``val/score`` (see :class:`~worldmodel.training.validation.Validator`), of
        :attr:`evaluated_model`."""
        return self.validator(self.evaluated_model)

    # -- the loop ---------------------------------------------------------------------------------
    def _last_good(self) -> str:
        # rank 0 wrote its checkpoints before the collective that ended the epoch
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
            if c.step_log:
                self.writers.log_step(self.state["step"], metrics)
            bar.set_postfix(loss=f"{metrics['loss']:.4g}")
        guard.check_epoch(epoch, good, skipped, self._last_good)
        return {f"train/{k}": v / max(good, 1) for k, v in sums.items()}, skipped

    def fit(self) -> dict[str, float]:
        """Train until ``epochs``, early stopping or a callback stops it; returns the last
        epoch's metrics. The best model is in ``run_dir/model.safetensors``."""
        done = False
        try:
            last = self._fit()
            done = True
            return last
        finally:
            if self._prefetched is not None:
                self._prefetched.close()
                self._prefetched = None
            self.writers.close()
            if self.processes.distributed:
                # DDP holds the process group: release it before the group ends, or its gloo
                # threads may be torn down at exit ("terminate called without an active
                # exception", seen in about one run of four)
                self._loss = None
                gc.collect()
            self.processes.close(done=done)

    def _fit(self) -> dict[str, float]:
        c = self.config
        last: dict[str, float] = {}
        for epoch in range(self.state["epoch"] + 1, c.epochs + 1):
            start = time.perf_counter()
            row, skipped = self._train_epoch(epoch)
            self.state["epoch"] = epoch
            rng_states = self.processes.gather(torch_rng_state(self.device))
            end = partial(self._end_epoch, epoch, row, skipped, start, rng_states)
            row, stop = self.processes.from_main(end)
            if not self.processes.main:  # rank 0's decisions, from its row
                record_score(self.state, epoch, row["val/score"])
            last = row
            if stop or out_of_patience(self.state, c.patience):
                break
        return last

    def _end_epoch(
        self,
        epoch: int,
        row: dict[str, float],
        skipped: int,
        start: float,
        rng_states: list[dict[str, torch.Tensor]],
    ) -> tuple[dict[str, float], bool]:
        """Rank 0's end of an epoch: validate, save, log and ask the callbacks; the epoch's
        metrics and whether a callback stops training."""
        row = {**row, **self.validate()}
        row.update(
            {
                "train/lr": self.lr.value,
                "train/skipped_batches": skipped,
                "time/epoch_s": time.perf_counter() - start,
            }
        )
        improved = record_score(self.state, epoch, row["val/score"])
        if improved:
            self.writers.save("model.safetensors", self.evaluated_model, self._meta())
        self.writers.log(epoch, self.state["step"], row)
        self.writers.save(
            "last.safetensors",  # the RNGs too: a resumed run draws what this one would
            self.model,
            self._meta(),
            self.optimizer,
            rank_rng_extras(rng_states) | ema_extras(self.ema),
        )
        self.writers.epoch_line(epoch, row, improved, skipped)
        stop = any(cb(self, epoch, row) for cb in self.callbacks)
        return row, stop

    def _meta(self) -> dict[str, Any]:
        return checkpoint_meta(self.config.model, self.state, self.rng)
