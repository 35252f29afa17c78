"""Training: a config dataclass, a trainer with validation, checkpoints, resume and NaN safety.

A run directory ``runs/NAME/`` holds ``config.json`` (this config, the dataset, the env and its
spaces), ``model.safetensors`` (best validation score), ``last.safetensors`` (weights,
optimizer and trainer state of the last finished epoch: ``resume`` continues from it),
``metrics.csv`` and ``tb/`` (TensorBoard). Resuming reproduces the uninterrupted run exactly
(RNG states are checkpointed); an epoch cut short (even by ``kill -9``) is redone.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Sequence
from dataclasses import replace
from pathlib import Path
from typing import Any, Literal

import numpy as np
import torch
from tqdm.auto import tqdm

from worldmodel.batching import Batch, Normalizer, make_batch, sample_windows, tile_windows
from worldmodel.checkpoint import (
    CheckpointError,
    load_model_weights,
    load_optimizer_state,
    read_checkpoint,
    save_checkpoint,
)
from worldmodel.config import TrainConfig
from worldmodel.data import Dataset, library_versions
from worldmodel.errors import TrainingError
from worldmodel.io import atomic_write_json
from worldmodel.metrics import MetricsLogger
from worldmodel.models import WorldModel, make_model

RUN_FORMAT = 1


Callback = Callable[["Trainer", int, dict[str, float]], bool | None]
"""``callback(trainer, epoch, metrics)`` after each epoch; returning True stops training."""


def resolve_device(name: str) -> torch.device:
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if name == "cuda" and not torch.cuda.is_available():
        raise ValueError("device 'cuda' asked for, but torch sees no CUDA device")
    return torch.device(name)


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
        config_path = self.run_dir / "config.json"
        if resume:
            if not (self.run_dir / "last.safetensors").exists():
                raise FileNotFoundError(f"{self.run_dir}: nothing to resume (no last.safetensors)")
            saved = _read_json(config_path)
            if saved.get("env_id") != dataset.env_id:
                raise ValueError(
                    f"{self.run_dir} was trained on {saved.get('env_id')!r}, "
                    f"the dataset is {dataset.env_id!r}"
                )
            config = TrainConfig.from_dict({**saved["train"], "epochs": config.epochs})
        elif config_path.exists():
            raise FileExistsError(
                f"{self.run_dir} already holds a run; resume it or choose another directory"
            )
        config.check()
        if config.net.max_step == "env-dt":  # the env's own control step (None if unknown)
            step = dataset.metadata.get("default_dt")
            config = replace(config, net=replace(config.net, max_step=step and float(step)))
        self.config, self.callbacks = config, list(callbacks)
        self.dataset = dataset
        splits = dataset.split(config.split, config.split_seed)
        if splits["train"] is None or splits["val"] is None:
            raise ValueError(
                f"dataset of {len(dataset)} episodes leaves no train or validation episodes "
                f"with split {config.split}"
            )
        self.train_eps, self.val_eps = splits["train"].episodes, splits["val"].episodes
        self.device = resolve_device(config.device)
        torch.manual_seed(config.seed)
        self.rng = np.random.default_rng(config.seed)
        self.model: WorldModel = make_model(
            config.model, dataset.obs_dim, dataset.act_dim, config.net
        )
        self.normalizer = Normalizer.fit(self.train_eps)
        if not config.normalize_obs:
            self.normalizer = Normalizer(np.zeros(dataset.obs_dim), np.ones(dataset.obs_dim))
        self.model.set_normalizer(self.normalizer)
        seen = self.normalizer.normalize(np.concatenate([ep.obs for ep in self.train_eps]))
        lo, hi = seen.min(0), seen.max(0)
        self.model.set_obs_bounds(lo - 0.1 * (hi - lo), hi + 0.1 * (hi - lo))
        self.model.to(self.device)
        self.optimizer = torch.optim.Adam(
            self.model.parameters(), lr=config.lr, weight_decay=config.weight_decay
        )
        transitions = sum(len(ep) - 1 for ep in self.train_eps)
        self.steps_per_epoch = config.steps_per_epoch or max(
            1, math.ceil(transitions / (config.batch_size * (config.window - 1)))
        )
        self.state: dict[str, Any] = {
            "epoch": 0,
            "step": 0,
            "best": None,
            "best_epoch": -1,
            "stale": 0,
            "lr_scale": 1.0,
            "bad_batches": 0,
        }
        self.val_batches = self._validation_batches()
        self.logger = MetricsLogger(self.run_dir, tensorboard=config.tensorboard)
        if resume:
            self._load_last()
            self.logger.truncate(self.state["epoch"])
        else:
            self.run_dir.mkdir(parents=True, exist_ok=True)
            atomic_write_json(config_path, self._run_config(dataset_path))

    # -- set-up -------------------------------------------------------------------------------
    def _run_config(self, dataset_path: str | Path | None) -> dict[str, Any]:
        meta = self.dataset.metadata
        return {
            "format_version": RUN_FORMAT,
            "model": self.config.model,
            "env_id": self.dataset.env_id,
            "obs_dim": self.dataset.obs_dim,
            "act_dim": self.dataset.act_dim,
            "action_low": meta.get("action_low"),
            "action_high": meta.get("action_high"),
            "default_dt": meta.get("default_dt"),
            "train": self.config.to_dict(),
            "dataset": {
                "path": None if dataset_path is None else str(dataset_path),
                "episodes": len(self.dataset),
                "metadata": {k: v for k, v in meta.items() if k != "merged_from"},
            },
            "library_versions": library_versions(),
        }

    def _modes(self) -> tuple[str, ...]:
        """Modes whose validation mse makes the score: trained, and meaningful for the model."""
        trained = ("interp", "extrap") if self.config.mode == "both" else (self.config.mode,)
        return tuple(m for m in trained if m in self.model.scored_modes) or trained

    def _validation_batches(self) -> dict[str, list[Batch]]:
        c = self.config
        windows = tile_windows(self.val_eps, c.window)
        pick = np.random.default_rng(c.eval_seed)
        if len(windows) > c.eval_windows:
            windows = [
                windows[i] for i in sorted(pick.choice(len(windows), c.eval_windows, replace=False))
            ]
        out = {}
        for mode in ("interp", "extrap") if c.mode == "both" else (c.mode,):  # only what is trained
            rng = np.random.default_rng([c.eval_seed, len(mode)])
            out[mode] = [
                make_batch(
                    self.val_eps,
                    windows[i : i + 2 * c.batch_size],
                    self.normalizer,
                    mode=mode,
                    observed=c.eval_observed,
                    context_fraction=c.context_fraction,
                    rng=rng,
                ).to(self.device)
                for i in range(0, len(windows), 2 * c.batch_size)
            ]
        return out

    # -- one step -----------------------------------------------------------------------------
    def _train_batch(self) -> Batch:
        c = self.config
        mode = c.mode if c.mode != "both" else ("interp", "extrap")[int(self.rng.integers(2))]
        observed = float(self.rng.uniform(c.observed_min, c.observed_max))
        windows = sample_windows(self.train_eps, c.batch_size, c.window, self.rng)
        return make_batch(
            self.train_eps,
            windows,
            self.normalizer,
            mode=mode,
            observed=observed,
            context_fraction=c.context_fraction,
            rng=self.rng,
        ).to(self.device)

    def _lr(self) -> float:
        c = self.config
        total = max(1, c.epochs * self.steps_per_epoch)
        frac = min(1.0, self.state["step"] / total)
        shape = (
            1.0
            if c.lr_schedule == "constant"
            else 0.05 + 0.95 * 0.5 * (1 + math.cos(math.pi * frac))
        )
        return c.lr * shape * self.state["lr_scale"]

    def train_step(self, batch: Batch) -> dict[str, float] | None:
        """One optimiser step; ``None`` when the batch gave a non-finite loss or gradient, or
        torchdiffeq's adaptive solver blew up (the step is skipped and the learning rate
        halved). Any other exception propagates: it is a bug, not a bad batch."""
        c = self.config
        for group in self.optimizer.param_groups:
            group["lr"] = self._lr()
        self.model.kl_weight = (
            min(1.0, self.state["step"] / c.kl_warmup_steps) if c.kl_warmup_steps else 1.0
        )
        self.optimizer.zero_grad(set_to_none=True)
        try:
            loss, metrics = self.model.loss(batch)
            ok = bool(torch.isfinite(loss))
            if ok:
                loss.backward()
                norm = torch.nn.utils.clip_grad_norm_(self.model.parameters(), c.grad_clip)
                ok = bool(torch.isfinite(norm))
        except AssertionError as err:
            if not _is_solver_blow_up(err):  # a bug: surface it with its own traceback
                raise
            ok = False
        self.state["step"] += 1
        if not ok:
            self.optimizer.zero_grad(set_to_none=True)
            self.state["bad_batches"] += 1
            self.state["lr_scale"] = max(self.state["lr_scale"] * 0.5, 1e-3)
            return None
        self.optimizer.step()
        self.state["bad_batches"] = 0
        return metrics

    # -- evaluation -----------------------------------------------------------------------------
    def validate(self) -> dict[str, float]:
        """``val/{mode}_{mse,nll}`` for each trained mode on the fixed validation batches, and
        ``val/score`` (the mean mse over the trained modes that the model is scored on, see
        ``WorldModel.scored_modes``: the best checkpoint minimises it)."""
        self.model.eval()
        out: dict[str, float] = {}
        with torch.no_grad():
            for mode, batches in self.val_batches.items():
                weights = [float(b.target.sum()) for b in batches]
                ms = [self.model.metrics(b) for b in batches]
                for key in ("mse", "nll"):
                    out[f"val/{mode}_{key}"] = float(
                        np.average([m[key] for m in ms], weights=weights)
                    )
        self.model.train()
        out["val/score"] = float(np.mean([out[f"val/{m}_mse"] for m in self._modes()]))
        return out

    # -- checkpoints ----------------------------------------------------------------------------
    def _meta(self) -> dict[str, Any]:
        return {
            "model": self.config.model,
            "epoch": self.state["epoch"],
            "step": self.state["step"],
            "state": self.state,
            "numpy_rng": self.rng.bit_generator.state,
        }

    def _save(self, name: str, optimizer: bool) -> None:
        extra = None
        if optimizer:  # the RNGs too, so that a resumed run draws what the straight one would
            extra = {"torch_rng": torch.get_rng_state()}
            if self.device.type == "cuda":  # latent samples are drawn on the GPU
                extra["cuda_rng"] = torch.cuda.get_rng_state(self.device)
        save_checkpoint(
            self.run_dir / name,
            self.model,
            self._meta(),
            self.optimizer if optimizer else None,
            extra,
        )

    def _load_last(self) -> None:
        path = self.run_dir / "last.safetensors"
        tensors, meta, header = read_checkpoint(path)
        load_model_weights(self.model, tensors, path)
        load_optimizer_state(self.optimizer, tensors, header)
        self.state = meta["state"]
        self.rng.bit_generator.state = meta["numpy_rng"]
        torch.set_rng_state(tensors["extra/torch_rng"])
        if self.device.type == "cuda" and "extra/cuda_rng" in tensors:
            torch.cuda.set_rng_state(tensors["extra/cuda_rng"], self.device)

    # -- the loop ---------------------------------------------------------------------------------
    def _last_good(self) -> str:
        best = self.run_dir / "model.safetensors"
        if best.exists():
            return f"the last good checkpoint is {best} (epoch {self.state['best_epoch']})"
        return "no checkpoint was saved"

    def fit(self) -> dict[str, float]:
        """Train until ``epochs``, early stopping or a callback stops it; returns the last
        epoch's metrics. The best model is in ``run_dir/model.safetensors``."""
        c = self.config
        last: dict[str, float] = {}
        for epoch in range(self.state["epoch"] + 1, c.epochs + 1):
            start = time.perf_counter()
            sums: dict[str, float] = {}
            good = skipped = 0
            bar = tqdm(
                range(self.steps_per_epoch),
                desc=f"{c.model} epoch {epoch}/{c.epochs}",
                disable=not c.progress,
                leave=False,
            )
            for _ in bar:
                metrics = self.train_step(self._train_batch())
                if metrics is None:
                    skipped += 1
                    if self.state["bad_batches"] >= c.max_bad_batches:
                        raise TrainingError(
                            f"training diverged: {c.max_bad_batches} consecutive batches gave a"
                            f" non-finite loss or gradient; {self._last_good()}"
                        )
                    continue
                good += 1
                for k, v in metrics.items():
                    sums[k] = sums.get(k, 0.0) + v
                bar.set_postfix(loss=f"{metrics['loss']:.4g}")
            if not good:  # nothing was trained: never report (or save) it as an epoch
                raise TrainingError(
                    f"epoch {epoch}: all {skipped} batches gave a non-finite loss or gradient,"
                    f" nothing was trained; {self._last_good()}"
                )
            self.state["epoch"] = epoch
            row = {f"train/{k}": v / max(good, 1) for k, v in sums.items()}
            row.update(self.validate())
            row.update(
                {
                    "train/lr": self._lr(),
                    "train/skipped_batches": skipped,
                    "time/epoch_s": time.perf_counter() - start,
                }
            )
            score, best = row["val/score"], self.state["best"]
            improved = math.isfinite(score) and (best is None or score < best)
            if improved:
                self.state.update(best=row["val/score"], best_epoch=epoch, stale=0)
                self._save("model.safetensors", optimizer=False)
            else:
                self.state["stale"] += 1
            self.logger.log(epoch, self.state["step"], row)
            self._save("last.safetensors", optimizer=True)
            if c.progress:
                tqdm.write(
                    f"epoch {epoch}: train/loss {row.get('train/loss', float('nan')):.4g}  "
                    f"val/score {row['val/score']:.4g}"
                    + ("  (best)" if improved else "")
                    + (f"  skipped {skipped}" if skipped else "")
                )
            last = row
            stop = any(cb(self, epoch, row) for cb in self.callbacks)
            if stop or (c.patience and self.state["stale"] >= c.patience):
                break
        self.logger.close()
        return last


# torchdiffeq's adaptive solvers (rk_common.py) assert these when the state blows up: the step
# size underflows, or the state is no longer finite. They are a non-finite batch; any other
# AssertionError (or RuntimeError) is a bug and propagates.
_SOLVER_BLOW_UPS = ("underflow in dt", "non-finite values in state")


def _is_solver_blow_up(err: AssertionError) -> bool:
    return str(err).startswith(_SOLVER_BLOW_UPS)


def _read_json(path: Path) -> dict[str, Any]:
    import json

    try:
        return json.loads(path.read_text())
    except FileNotFoundError:
        raise FileNotFoundError(f"{path}: no such run config") from None
    except json.JSONDecodeError as err:
        raise ValueError(f"{path}: not valid JSON ({err})") from None


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

    path = None
    if not isinstance(dataset, Dataset):
        path, dataset = dataset, load_dataset(dataset)
    Trainer(
        config or TrainConfig(), dataset, out, resume=resume, callbacks=callbacks, dataset_path=path
    ).fit()
    return load(out)


def load(
    run_dir: str | Path,
    *,
    which: Literal["best", "last"] = "best",
    env_id: str | None = None,
    obs_dim: int | None = None,
    device: str = "cpu",
) -> WorldModel:
    """Load a trained model from a run directory, ready to use (eval mode).

    ``env_id`` / ``obs_dim``, when given, must match the run's (a clear error otherwise).
    The model gains ``env_id`` and ``run_config`` attributes. Never unpickles anything.
    """
    run_dir = Path(run_dir)
    cfg = _read_json(run_dir / "config.json")
    if cfg.get("format_version") != RUN_FORMAT:
        raise CheckpointError(
            f"{run_dir / 'config.json'}: unknown run format {cfg.get('format_version')!r}"
        )
    if env_id is not None and env_id != cfg["env_id"]:
        raise CheckpointError(f"{run_dir}: model was trained on {cfg['env_id']!r}, not {env_id!r}")
    if obs_dim is not None and obs_dim != cfg["obs_dim"]:
        raise CheckpointError(
            f"{run_dir}: model observations have {cfg['obs_dim']} dims, not {obs_dim}"
        )
    train_cfg = TrainConfig.from_dict(cfg["train"])
    model = make_model(cfg["model"], cfg["obs_dim"], cfg["act_dim"], train_cfg.net)
    path = run_dir / ("model.safetensors" if which == "best" else "last.safetensors")
    tensors, meta, _ = read_checkpoint(path)
    if meta.get("model") != cfg["model"]:
        raise CheckpointError(
            f"{path}: holds a {meta.get('model')!r} model, config.json says {cfg['model']!r}"
        )
    load_model_weights(model, tensors, path)
    model.env_id, model.run_config = cfg["env_id"], cfg
    return model.to(resolve_device(device)).eval()
