"""Simulated seconds of real experience behind a dyna run's budgets (issue #16's self-timed agent).

    python benchmarks/experience.py RUN_DIR [RUN_DIR ...] [--seconds 200,400] [--out CSV]

A self-timed agent's real steps are decisions of its own length, so equal real steps are not
equal experience. From each run's latest checkpoint (``RUN_DIR/checkpoint/step_N/
episodes.npz``: every real episode in the order it was played) this prints the simulated
seconds behind each evaluation budget of ``RUN_DIR/curve.csv``, and the real steps and the
return at the last evaluation within each of ``--seconds`` (the fixed-step Hopper-v5 agent's
25k and 50k steps are 200 s and 400 s); ``--out`` also writes each budget's row (run, real
steps, recorded steps, simulated seconds, return) as CSV. An episode still running at the
checkpoint is not in it, so the run's last budget may count fewer recorded steps than it names
(said, and in the CSV's ``recorded_steps``).
"""

from __future__ import annotations

import argparse
import csv
from pathlib import Path

import numpy as np


def experience(run: Path) -> tuple[np.ndarray, np.ndarray]:
    """``(steps, seconds)``: cumulative real steps and simulated seconds after each recorded
    real step of ``run`` (from its latest checkpoint's episodes)."""
    from agents.dyna_checkpoint import latest_checkpoint
    from worldmodel.data import Dataset

    ckpt = latest_checkpoint(run)
    if ckpt is None:
        raise SystemExit(f"{run}: no checkpoint")
    dt = np.concatenate([np.diff(ep.t) for ep in Dataset.load(ckpt / "episodes.npz").episodes])
    return np.arange(1, len(dt) + 1), np.cumsum(dt)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("runs", type=Path, nargs="+")
    ap.add_argument("--seconds", default="200,400")
    ap.add_argument("--out", type=Path, help="also write each budget's row to this CSV")
    args = ap.parse_args()
    marks = [float(s) for s in args.seconds.split(",")]
    rows = []
    for run in args.runs:
        steps, secs = experience(run)
        with (run / "curve.csv").open() as f:
            curve = [
                (int(r["real_steps"]), float(r["mean_real_return"])) for r in csv.DictReader(f)
            ]
        print(f"{run.name}: {steps[-1]} recorded real steps, {secs[-1]:.1f} simulated s")
        if curve and curve[-1][0] > len(secs):
            print(
                f"  ({curve[-1][0] - len(secs)} real steps of the last budget are in an episode "
                "the checkpoint did not hold: its seconds are those of the recorded steps)"
            )
        for budget, ret in curve:
            k = min(budget, len(secs))
            print(f"  {budget:>7} real steps: {secs[k - 1]:8.1f} s, return {ret:.1f}")
            rows.append((run.name, budget, k, f"{secs[k - 1]:.1f}", f"{ret:.2f}"))
        for mark in marks:
            within = [(b, r) for b, r in curve if b <= len(secs) and secs[b - 1] <= mark]
            budget, ret = within[-1] if within else (0, float("nan"))
            reached = int(np.searchsorted(secs, mark)) + 1
            print(
                f"  within {mark:.0f} s: last evaluation at {budget} real steps (return {ret:.1f});"
                f" {mark:.0f} s reached at real step {reached}"
            )
    if args.out:
        from worldmodel.io import atomic_write_csv

        header = ("run", "real_steps", "recorded_steps", "simulated_s", "mean_real_return")
        atomic_write_csv(
            args.out, [dict(zip(header, r)) for r in rows], header, lineterminator="\n"
        )
        print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
