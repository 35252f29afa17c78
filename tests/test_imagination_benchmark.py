"""benchmarks/imagination.py end to end at a tiny size: every row divides by the gym loop timed
around it, and the run leaves torch's threads as it set them (a collection inside it once
reset them to one)."""

import csv
import importlib
import sys
from pathlib import Path

import torch

BENCHMARKS = Path(__file__).resolve().parents[1] / "benchmarks"


def test_a_tiny_run_writes_every_row_with_its_own_gym_baseline(monkeypatch, tmp_path):
    monkeypatch.syspath_prepend(str(BENCHMARKS))
    sys.modules.pop("imagination", None)
    bench = importlib.import_module("imagination")
    monkeypatch.setattr(bench, "RESULTS", tmp_path / "imagination.csv")
    monkeypatch.setattr(sys, "argv", ["imagination.py", "--batches", "4", "--seconds", "0.05"])
    threads = torch.get_num_threads()
    try:
        bench.main()
        assert torch.get_num_threads() == 2  # the benchmark's own setting survived make_run
    finally:
        torch.set_num_threads(threads)
        sys.modules.pop("imagination", None)
    with open(tmp_path / "imagination.csv", newline="") as f:
        rows = {r["what"]: r for r in csv.DictReader(f)}
    for what in ("latent-ode", "latent-ode-bf16", "mlp-ensemble"):
        for path in ("vector-env", "core"):
            row = rows[f"{what}-{path}"]
            assert row["batch"] == "4" and float(row["steps_per_s"]) > 0
            assert float(row["ratio_to_real_gym"]) > 0
    assert float(rows["real-gym-min"]["steps_per_s"]) <= float(rows["real-gym-max"]["steps_per_s"])
