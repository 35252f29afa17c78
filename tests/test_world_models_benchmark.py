"""benchmarks/world_models.py end to end at toy size: every model of the comparison is trained,
scored against the simulator at the trained and the unseen control intervals, written as rows
per seed, and summarised over seeds; a rerun reuses the finished runs."""

import csv
import importlib
import sys
from pathlib import Path

import pytest
import torch

BENCHMARKS = Path(__file__).resolve().parents[1] / "benchmarks"


@pytest.fixture
def bench(monkeypatch):
    monkeypatch.syspath_prepend(str(BENCHMARKS))
    sys.modules.pop("world_models", None)
    yield importlib.import_module("world_models")
    sys.modules.pop("world_models", None)


def test_toy_benchmark_rows_summary_and_reuse(bench, tmp_path):
    argv = [
        "--env",
        "Hopper-v5",
        "--models",
        "latent-ode,mlp-delta",
        "--seeds",
        "0,1",
        "--episodes",
        "12",
        "--epochs",
        "1",
        "--steps",
        "2",
        "--batch",
        "4",
        "--starts",
        "4",
        "--horizon",
        "5",
        "--out",
        str(tmp_path / "runs"),
        "--results",
        str(tmp_path / "res"),
        "--threads",
        str(torch.get_num_threads()),
    ]  # the session's own setting
    bench.main(argv)
    with (tmp_path / "res" / "world_models.csv").open() as f:
        rows = list(csv.DictReader(f))
    tests = {"3-5 (trained)", "1-2 (unseen)", "7-9 (unseen)"}
    assert {r["test"] for r in rows} == tests
    models = {r["model"] for r in rows}
    assert models == {"latent-ode", "mlp-delta", bench.FLOOR, bench.CEILING}
    assert len(rows) == 3 * (2 * 2 + 2)  # per test: 2 models x 2 seeds, the floor, the ceiling
    for r in rows:
        errors = [float(r[f"h{h}"]) for h in (1, 2, 5)]
        assert all(e >= 0 for e in errors)
        if r["model"] == bench.FLOOR:
            assert max(errors) < 1e-6 and float(r["term_disagree_10"]) == 0
    with (tmp_path / "res" / "world_models_summary.csv").open() as f:
        summary = list(csv.DictReader(f))
    assert len(summary) == 3 * 4
    lode = next(s for s in summary if s["model"] == "latent-ode" and s["test"] == "1-2 (unseen)")
    seeds = [
        float(r["h5"]) for r in rows if r["model"] == "latent-ode" and r["test"] == "1-2 (unseen)"
    ]
    assert lode["seeds"] == "0 1" and float(lode["h5"]) == pytest.approx(sum(seeds) / 2, rel=1e-3)
    run = tmp_path / "runs" / "Hopper-v5" / "irregular" / "latent-ode-s0" / "model.safetensors"
    stamp = run.stat().st_mtime_ns
    bench.main(argv)  # finished runs are reused, not retrained
    assert run.stat().st_mtime_ns == stamp
