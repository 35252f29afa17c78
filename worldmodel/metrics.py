"""One logger for namespaced metrics (``train/loss``, ``val/extrap_mse``): CSV and TensorBoard."""

from __future__ import annotations

import csv
import io
from pathlib import Path

from worldmodel.io import atomic_write_text


def trained_seconds(run_dir: Path) -> float:
    """Wall-clock of every epoch in ``run_dir/metrics.csv`` (training + validation), summed over
    resumed sessions."""
    with (Path(run_dir) / "metrics.csv").open(newline="") as f:
        return sum(float(r["time/epoch_s"]) for r in csv.DictReader(f))


class MetricsLogger:
    """Append one row per epoch to ``metrics.csv`` (and TensorBoard under ``tb/``).

    On resume, :meth:`truncate` drops rows after the checkpoint's epoch, so that an epoch
    interrupted before its checkpoint is not logged twice.
    """

    def __init__(self, run_dir: Path, tensorboard: bool = True) -> None:
        self.path = Path(run_dir) / "metrics.csv"
        self._tb = None
        if tensorboard:
            from torch.utils.tensorboard import SummaryWriter

            self._tb = SummaryWriter(log_dir=str(Path(run_dir) / "tb"))

    def rows(self) -> list[dict[str, str]]:
        if not self.path.exists():
            return []
        with self.path.open(newline="") as f:
            return list(csv.DictReader(f))

    def truncate(self, last_epoch: int) -> None:
        rows = [r for r in self.rows() if int(r["epoch"]) <= last_epoch]
        self._write(rows, list(rows[0]) if rows else [])

    def _write(self, rows: list[dict], columns: list[str]) -> None:
        buf = io.StringIO()
        w = csv.DictWriter(buf, fieldnames=columns, extrasaction="ignore")
        if columns:
            w.writeheader()
            w.writerows(rows)
        atomic_write_text(self.path, buf.getvalue())

    def log(self, epoch: int, step: int, values: dict[str, float]) -> None:
        row = {"epoch": epoch, "step": step, **{k: f"{v:.6g}" for k, v in values.items()}}
        rows = self.rows()
        columns = list(rows[0]) if rows else list(row)
        columns += [k for k in row if k not in columns]
        self._write([*rows, row], columns)
        if self._tb is not None:
            for k, v in values.items():
                self._tb.add_scalar(k, v, step)
            self._tb.flush()

    def close(self) -> None:
        if self._tb is not None:
            self._tb.close()
