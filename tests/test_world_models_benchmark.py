"""benchmarks/world_models.py end to end at toy size: every model of the comparison is trained,
scored against the simulator at the trained and the unseen control intervals, written as rows
per seed, and summarised over seeds; a rerun reuses the finished runs."""

import csv
import importlib
import sys
from pathlib import Path

import numpy as np
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
    with (tmp_path / "res" / "world_models_alive_summary.csv").open() as f:
        alive = {(r["test"], r["model"]): r for r in csv.DictReader(f)}
    assert set(alive) == {(s["test"], s["model"]) for s in summary}
    for (test, model), r in alive.items():  # every start is in its real episode at h=1
        shares = [float(r[f"alive{h}"]) for h in (1, 2, 5)]
        assert shares[0] == 1.0 and shares == sorted(shares, reverse=True)
        whole = next(s for s in summary if (s["test"], s["model"]) == (test, model))
        assert float(r["h1"]) == pytest.approx(float(whole["h1"]), rel=1e-3)
    alive_summary = tmp_path / "res" / "world_models_alive_summary.csv"
    written = alive_summary.read_text()
    alive_summary.unlink()
    bench.main(["--summary-only", "--results", str(tmp_path / "res")])
    assert alive_summary.read_text() == written  # --summary-only rewrites both summaries
    run = tmp_path / "runs" / "Hopper-v5" / "irregular" / "latent-ode-s0" / "model.safetensors"
    stamp = run.stat().st_mtime_ns
    bench.main(argv)  # finished runs are reused, not retrained
    assert run.stat().st_mtime_ns == stamp
    avg = tmp_path / "res_avg"
    bench.main([*argv[: argv.index("--results")], "--results", str(avg), "--seed-average"])
    with (avg / "world_models.csv").open() as f:
        rows = list(csv.DictReader(f))
    for test in tests:  # squared error is convex: the averaged prediction is never worse
        for model in ("latent-ode", "mlp-delta"):
            mean = next(r for r in rows if r["model"] == f"{model}-avg2" and r["test"] == test)
            each = [r for r in rows if r["model"] == model and r["test"] == test]
            for h in (1, 2, 5):
                seeds_mean = sum(float(r[f"h{h}"]) for r in each) / len(each)
                assert float(mean[f"h{h}"]) <= seeds_mean * (1 + 1e-6)
    other = argv[:]
    other[other.index("--batch") + 1] = "8"
    with pytest.raises(SystemExit, match="trained with batch_size=4, not 8"):
        bench.main(other)  # ... but never for runs made with other windows


def test_policy_data_regime_collects_each_policy_and_labels_its_rows(bench, tmp_path, monkeypatch):
    import gymnasium as gym
    from stable_baselines3 import SAC

    from agents.policies import export_policy

    policies = tmp_path / "policies" / "Hopper-v5"
    env = gym.make("Hopper-v5")
    for quality, seed in (("medium", 0), ("expert", 1)):
        agent = SAC("MlpPolicy", env, policy_kwargs={"net_arch": [8]}, seed=seed, device="cpu")
        agent.save(tmp_path / f"{quality}-full.zip")
        export_policy(tmp_path / f"{quality}-full.zip", policies / f"{quality}.zip")
    monkeypatch.setattr(bench, "POLICIES", policies.parent)
    argv = ["--data", "mix", "--policy-episodes", "3", "--models", "mlp-delta", "--seeds", "0"]
    argv += ["--epochs", "1", "--steps", "2", "--batch", "4", "--starts", "4", "--horizon", "3"]
    argv += ["--out", str(tmp_path / "runs"), "--results", str(tmp_path / "res")]
    bench.main(argv + ["--threads", str(torch.get_num_threads())])
    from worldmodel.data import load_dataset

    data = tmp_path / "runs" / "Hopper-v5" / "irregular"
    for quality in ("random", "medium", "expert"):
        policy = load_dataset(data / f"{quality}_3.npz").metadata["policy"]
        assert policy["name"] == ("random" if quality == "random" else "sb3")
        if quality != "random":
            assert policy["path"].endswith(f"{quality}.zip") and policy["noise_std"] == 0.1
    assert len(load_dataset(data / "mix_3.npz").episodes) == 9
    with (tmp_path / "res" / "world_models.csv").open() as f:
        rows = list(csv.DictReader(f))
    assert {r["regime"] for r in rows} == {"irregular-mix"}
    assert {(r["test"], r["test_timing"]) for r in rows} >= {("policy actions", "recorded")}
    assert {r["episodes"] for r in rows} == {"9"}
    assert (tmp_path / "runs" / "Hopper-v5" / "irregular-mix" / "mlp-delta-s0").is_dir()


def test_policy_data_without_its_policy_file_says_how_to_make_it(bench, tmp_path, monkeypatch):
    monkeypatch.setattr(bench, "POLICIES", tmp_path / "none")
    with pytest.raises(FileNotFoundError, match="benchmarks/policies.py --env Hopper-v5"):
        bench.main(["--data", "expert", "--out", str(tmp_path / "runs"), "--no-csv"])


def test_policy_qualities_are_the_best_agent_and_an_earlier_one_near_a_third(monkeypatch):
    monkeypatch.syspath_prepend(str(BENCHMARKS))
    from policies import pick

    curve = [(2500, 150.0), (5000, 310.0), (7500, 900.0), (10000, 2400.0), (12500, 700.0)]
    assert pick(curve) == {"medium": (7500, 900.0), "expert": (10000, 2400.0)}
    assert pick([(2500, 80.0)]) == {"medium": (2500, 80.0), "expert": (2500, 80.0)}


@pytest.mark.parametrize(
    ("override", "says"),
    [("net.field_dropuot=0.1", "ModelConfig has no field 'field_dropuot'"), ("lr", "KEY=VALUE")],
)
def test_a_bad_set_override_stops_before_any_run(bench, tmp_path, override, says):
    with pytest.raises(SystemExit, match=says):
        bench.main(["--set", override, "--out", str(tmp_path / "runs"), "--no-csv"])
    assert not (tmp_path / "runs").exists()
    on_net, key, value = bench.parse_sets(["net.field_dropout=0.1"])[0]
    assert (on_net, key, value) == (True, "field_dropout", 0.1)


def test_alive_scores_count_a_start_until_its_real_episode_ends(bench):
    from worldmodel.batching import Context

    n, horizon, obs_dim = 2, 5, 11
    real = np.zeros((n, horizon, obs_dim))
    real[:, :, 0] = 1.25  # Hopper-v5's torso height: healthy
    real[1, 2, 0] = 0.5  # start 1 falls at step 3 (and its episode ends there)
    contexts = [Context(np.zeros(1), real[i, :1], np.zeros((0, 3))) for i in range(n)]
    actions, dts = np.zeros((n, horizon, 3)), np.full((n, horizon), 0.008)
    alive = bench.real_alive("Hopper-v5", contexts, actions, dts, real)
    assert alive.tolist() == [[True] * 5, [True, True, True, False, False]]
    err = np.array([[1.0, 1, 1, 1, 1], [3.0, 3, 3, 3, 3]])
    scores = bench.alive_scores(err, alive, (1, 3, 4))
    assert scores["h1"] == scores["h3"] == 2.0 and scores["h4"] == 1.0  # start 1 left at h=4
    assert scores["alive1"] == 1.0 and scores["alive4"] == 0.5
    none = bench.alive_scores(err, np.zeros_like(alive), (1,))
    assert np.isnan(none["h1"]) and none["alive1"] == 0.0
