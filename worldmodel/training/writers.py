"""Everything a run writes or shows: config.json, checkpoints, metrics.csv, steps.csv, TensorBoard,
progress.

One object, so that a distributed run can build it with ``enabled=False`` on every rank but 0:
then nothing is written and nothing is shown.
"""

from __future__ import annotations

import csv
from pathlib import Path
from typing import Any

import torch
from tqdm.auto import tqdm

from worldmodel.checkpoint import save_checkpoint
from worldmodel.io import append_csv, atomic_write_csv, atomic_write_json
from worldmodel.metrics import MetricsLogger


class RunWriters:
    """The writers of ``run_dir``.

    Args:
        run_dir: the run directory.
        tensorboard: also write TensorBoard events under ``tb/``.
        progress: show a progress bar per epoch and one line per finished epoch.
        enabled: False writes and shows nothing.
    """

    def __init__(
        self, run_dir: Path, *, tensorboard: bool, progress: bool, enabled: bool = True
    ) -> None:
        self.run_dir, self.enabled = run_dir, enabled
        self.show = progress and enabled
        self.logger = MetricsLogger(run_dir, tensorboard=tensorboard) if enabled else None

    def write_config(self, run_config: dict[str, Any]) -> None:
        """Create the run directory and write ``config.json``."""
        if self.enabled:
            self.run_dir.mkdir(parents=True, exist_ok=True)
            atomic_write_json(self.run_dir / "config.json", run_config)

    def truncate(self, last_epoch: int, last_step: int) -> None:
        """Forget the metrics of epochs after ``last_epoch`` and of steps after ``last_step``
        (an epoch cut short, on resume)."""
        if self.logger is not None:
            self.logger.truncate(last_epoch)
        steps = self.run_dir / "steps.csv"
        if self.enabled and steps.exists():
            with steps.open(newline="") as f:
                reader = csv.DictReader(f)
                rows = [r for r in reader if int(r["step"]) <= last_step]
                columns = list(reader.fieldnames or [])
            if columns:
                atomic_write_csv(steps, rows, columns)
            else:
                steps.unlink()

    def log_step(self, step: int, metrics: dict[str, float]) -> None:
        """Append a step's training metrics to ``steps.csv`` (``step`` counts from 1)."""
        if self.enabled:
            row = {"step": step, **{k: repr(float(v)) for k, v in metrics.items()}}
            append_csv(self.run_dir / "steps.csv", [row])

    def progress(self, steps: int, desc: str) -> tqdm:
        """A bar over ``range(steps)`` (a plain iteration when progress is off)."""
        return tqdm(range(steps), desc=desc, disable=not self.show, leave=False)

    def save(
        self,
        name: str,
        model: torch.nn.Module,
        meta: dict[str, Any],
        optimizer: torch.optim.Optimizer | None = None,
        extra: dict[str, torch.Tensor] | None = None,
    ) -> None:
        """Write checkpoint ``run_dir/name`` (see :func:`worldmodel.checkpoint.save_checkpoint`)."""
        if self.enabled:
            save_checkpoint(self.run_dir / name, model, meta, optimizer, extra)

    def log(self, epoch: int, step: int, row: dict[str, float]) -> None:
        """Append an epoch's metrics to ``metrics.csv`` (and TensorBoard)."""
        if self.logger is not None:
            self.logger.log(epoch, step, row)

    def epoch_line(self, epoch: int, row: dict[str, float], improved: bool, skipped: int) -> None:
        """One line per finished epoch under the progress bars."""
        if self.show:
            tqdm.write(
                f"epoch {epoch}: train/loss {row.get('train/loss', float('nan')):.4g}  "
                f"val/score {row['val/score']:.4g}"
                + ("  (best)" if improved else "")
                + (f"  skipped {skipped}" if skipped else "")
            )

    def close(self) -> None:
        if self.logger is not None:
            self.logger.close()
