"""benchmarks/mpc_planner.py: the default setting is measured first, every setting plans with
the simulator or the given model, and a setting already in the results file is not run again."""

import csv
import importlib
import sys
from pathlib import Path

import pytest

import agents.mpc

BENCHMARKS = Path(__file__).resolve().parents[1] / "benchmarks"


@pytest.fixture
def planner(tmp_path, monkeypatch):
    monkeypatch.syspath_prepend(str(BENCHMARKS))
    sys.modules.pop("mpc_planner", None)
    module = importlib.import_module("mpc_planner")
    monkeypatch.setattr(module, "RESULTS", tmp_path / "mpc_planner.csv")
    yield module
    sys.modules.pop("mpc_planner", None)


def test_a_grid_plans_with_the_simulator_and_resumes(planner, monkeypatch):
    seen = []

    def fake_mpc(model, cfg, spec=None):
        seen.append((model, cfg.dynamics, spec.env_id, cfg.horizon, cfg.population, cfg.elites))
        r = 10.0 * cfg.horizon
        return {"mean_return": r, "returns": [r - 1, r + 1], "ms_per_action": 5.0, "steps": 100}

    monkeypatch.setattr(agents.mpc, "run_mpc", fake_mpc)
    argv = ["mpc_planner.py", "--horizons", "20,10", "--populations", "64", "--max-steps", "50"]
    monkeypatch.setattr(sys, "argv", argv)
    planner.main()
    assert seen == [
        (None, "simulator", "Hopper-v5", 10, 128, 16),  # the default, first
        (None, "simulator", "Hopper-v5", 20, 64, 8),
        (None, "simulator", "Hopper-v5", 10, 64, 8),
    ]
    with planner.RESULTS.open() as f:
        rows = list(csv.DictReader(f))
    assert [r["mean_return"] for r in rows] == ["100.00", "200.00", "100.00"]
    assert [(r["std_return"], r["returns"]) for r in rows[:2]] == [
        ("1.41", "99.0 101.0"),  # the sample std of two returns 2 apart
        ("1.41", "199.0 201.0"),
    ]
    planner.main()  # all measured: nothing runs again
    assert len(seen) == 3


def test_an_env_without_a_task_is_named(planner, monkeypatch):
    monkeypatch.setattr(sys, "argv", ["mpc_planner.py", "--env", "Humanoid-v5"])
    with pytest.raises(SystemExit, match="no reward/termination task"):
        planner.main()


def test_a_grid_with_a_trained_model_plans_with_it_in_its_env(planner, monkeypatch, tiny_run):
    run = tiny_run("latent-ode")
    seen = []

    def fake_mpc(model, cfg, spec=None):
        seen.append((model.name, cfg.dynamics, spec, cfg.horizon))
        return {"mean_return": 1.0, "returns": [1.0], "ms_per_action": 5.0, "steps": 10}

    monkeypatch.setattr(agents.mpc, "run_mpc", fake_mpc)
    monkeypatch.setattr(sys, "argv", ["mpc_planner.py", "--model", str(run), "--horizons", "3"])
    planner.main()
    assert seen == [("latent-ode", "model", None, 10), ("latent-ode", "model", None, 3)]
    with planner.RESULTS.open() as f:
        rows = list(csv.DictReader(f))
    assert {r["dynamics"] for r in rows} == {str(run)} and rows[0]["env"] == "Hopper-v5"


def test_with_a_value_the_agents_own_actor_is_measured_first(planner, monkeypatch, tmp_path):
    seen = []
    monkeypatch.setattr(
        agents.mpc,
        "run_mpc",
        lambda m, cfg, spec=None: (
            seen.append(cfg.value)
            or {"mean_return": 2.0, "returns": [2.0], "ms_per_action": 5.0, "steps": 10}
        ),
    )
    monkeypatch.setattr(planner, "_actor", lambda *a: seen.append(a) or ([6.0, 8.0], 300.0))
    agent = tmp_path / "agent.zip"
    monkeypatch.setattr(sys, "argv", ["mpc_planner.py", "--value", str(agent), "--horizons", "10"])
    planner.main()
    assert [a[0] for a in seen[:1]] == [agent] and seen[0][1].env_id == "Hopper-v5"
    assert seen[0][2:] == (1, 300, 0) and seen[1] == agent
    with planner.RESULTS.open() as f:
        rows = list(csv.DictReader(f))
    assert [(r["dynamics"], r["mean_return"], r["returns"]) for r in rows] == [
        ("policy", "7.00", "6.0 8.0"),
        ("simulator", "2.00", "2.0"),
    ]


def test_a_results_file_with_other_columns_and_a_prior_without_its_agent_are_refused(
    planner, monkeypatch
):
    planner.RESULTS.write_text("timestamp,machine,env,horizon\n")
    monkeypatch.setattr(sys, "argv", ["mpc_planner.py"])
    with pytest.raises(SystemExit, match="move it aside"):
        planner.main()
    monkeypatch.setattr(sys, "argv", ["mpc_planner.py", "--policy-prior"])
    with pytest.raises(SystemExit, match="--policy-prior searches"):
        planner.main()
