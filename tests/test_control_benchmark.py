"""benchmarks/control.py: per-run summaries are reused only while their settings match, so seeds
run in other processes or sessions aggregate with later ones, and never with other settings."""

import dataclasses
import importlib
import json
import sys
from pathlib import Path

import numpy as np
import pytest

import agents.dyna

BENCHMARKS = Path(__file__).resolve().parents[1] / "benchmarks"


@pytest.fixture
def control(tmp_path, monkeypatch):
    monkeypatch.syspath_prepend(str(BENCHMARKS))
    sys.modules.pop("control", None)
    module = importlib.import_module("control")
    monkeypatch.setattr(module, "SUMMARIES", tmp_path / "summaries")
    yield module
    sys.modules.pop("control", None)


def _fake_run(calls):
    def run(cfg):
        cfg.check()
        calls.append(cfg)
        curve = [
            (s, float(s) / 100, 0.0) for s in range(cfg.eval_every, cfg.steps + 1, cfg.eval_every)
        ]
        rates = [125.0] * len(curve)
        return {"curve": curve, "wall_s": 1.5, "imagined_transitions": 0, "decision_rates": rates}

    return run


def test_a_finished_run_is_reused_only_with_the_same_settings(control, tmp_path, monkeypatch):
    calls = []
    monkeypatch.setattr(agents.dyna, "run_dyna", _fake_run(calls))
    first = control._learner("sac", 3, [1000, 2000], utd=5, out=tmp_path / "runs")
    assert len(calls) == 1 and calls[0].gradient_steps == 1  # model-free SAC ignores --utd
    assert first["curve"] == {"1000": 10.0, "2000": 20.0}
    summary = tmp_path / "summaries" / "sac-utd1-seed3.json"
    assert json.loads(summary.read_text())["settings"]["seed"] == 3

    again = control._learner("sac", 3, [1000, 2000], utd=5, out=tmp_path / "elsewhere")
    assert len(calls) == 1 and again == first  # another --out: same run, reused

    control._learner("sac", 3, [1000, 2000, 4000], utd=5, out=tmp_path / "runs")
    assert len(calls) == 2  # a budget the summary does not cover runs (and resumes) it

    old = json.loads(summary.read_text())
    old["settings"]["real_ratio"] = 0.5
    summary.write_text(json.dumps(old))
    control._learner("sac", 3, [1000, 2000], utd=5, out=tmp_path / "runs")
    assert len(calls) == 3  # other settings: never aggregated


def test_mpc_skips_a_seed_without_model_or_summary(control, tmp_path):
    assert control._mpc(0, tmp_path / "runs") is None
    done = tmp_path / "summaries" / "mpc-seed0.json"
    done.parent.mkdir(parents=True)
    done.write_text(
        json.dumps({"mean_return": 1.0, "ms_per_action": 2.0, "steps": 3, "model": "m"})
    )
    assert control._mpc(0, tmp_path / "runs")["mean_return"] == 1.0


def test_mpc_of_another_env_has_its_own_summary_and_row(control, tmp_path, monkeypatch, capsys):
    result = {"mean_return": 1.0, "ms_per_action": 2.0, "steps": 3, "model": "m"}
    (tmp_path / "summaries").mkdir()
    (tmp_path / "summaries" / "mpc-Walker2d-v5-seed0.json").write_text(json.dumps(result))
    assert control._mpc(0, tmp_path / "runs") is None  # Hopper-v5's: none
    assert control._mpc(0, tmp_path / "runs", env="Walker2d-v5")["mean_return"] == 1.0
    monkeypatch.setattr(control, "RESULTS", tmp_path / "res" / "control.csv")
    argv = ["--report-only", "--budgets", "1000", "--seeds", "0", "--methods", "mpc"]
    monkeypatch.setattr(sys, "argv", ["control.py", *argv, "--env", "Walker2d-v5"])
    control.main()
    assert "mpc (cem)-Walker2d-v5" in capsys.readouterr().out
    assert "mpc-cem-Walker2d-v5,1000," in (tmp_path / "res" / "control.csv").read_text()


def test_report_only_never_runs(control, tmp_path, monkeypatch):
    calls = []
    monkeypatch.setattr(agents.dyna, "run_dyna", _fake_run(calls))
    out = tmp_path / "runs"
    assert control._learner("sac-utd", 1, [1000], utd=5, out=out, run=False) is None
    assert control._mpc(1, out, run=False) is None
    (out / "sac+imagination-seed1" / "model" / "refit_001").mkdir(parents=True)
    assert control._mpc(1, out, run=False) is None  # a model is there, but no MPC is run
    assert calls == []
    done = control._learner("sac-utd", 1, [1000], utd=5, out=out)
    assert control._learner("sac-utd", 1, [1000], utd=5, out=out, run=False) == done
    assert len(calls) == 1 and calls[0].gradient_steps == 5 and not calls[0].use_model


def test_a_committed_summary_predating_a_setting_counts_it_at_its_default(control, tmp_path):
    from agents.dyna_checkpoint import config_dict
    from worldmodel.config import DynaConfig

    # the runs of 2026-11-26 predate refit_lr and rollout_length_max: they count at what the
    # code did then (LEGACY_VALUES), not at today's defaults
    now = control._settings(DynaConfig(**control.COMMITTED_DEFAULTS, model="mlp-ensemble"))
    before = {k: v for k, v in now.items() if k not in ("refit_lr", "rollout_length_max")}
    assert not control._same_settings(before, control._settings(DynaConfig()))
    assert control._same_settings(before, now)
    assert not control._same_settings({**before, "refit_lr": 3e-3}, now)
    assert not control._same_settings({**now, "gone": 1}, now)  # a setting no longer known
    latent = control._settings(DynaConfig(**control.SCHEDULE_16, model="latent-ode"))
    assert not control._same_settings(before, latent)
    assert config_dict(DynaConfig())["rollout_ramp"] == [20_000, 100_000]  # as JSON has it


def test_every_committed_learner_summary_still_matches_its_learner(control, tmp_path):
    """Changing DynaConfig's defaults or adding a setting must leave each committed run its
    own learner's: otherwise --report-only drops it and a new call would run it again."""
    import itertools

    committed = BENCHMARKS / "results" / "control_runs"
    control.SUMMARIES = committed  # read only: run=False never writes
    matched, learners = set(), [n for n in control.LEARNERS if not n.startswith("mpc")]
    grid = itertools.product(
        learners, range(3), ["fixed", "uniform:3-5"], ["Hopper-v5", "Walker2d-v5"], [None, (1, 15)]
    )
    for name, seed, timing, env, own in grid:
        if name in control.SELF_TIMED_ONLY and own is None:
            continue
        tag = control.timing_tag(timing, env, own)
        utd = 1 if name in control.UTD1 else 5
        path = committed / f"{name}-utd{utd}{tag}-seed{seed}.json"
        if not path.exists():
            continue
        budgets = sorted(int(k) for k in json.loads(path.read_text())["curve"])
        kw = dict(run=False, timing=timing, env=env, self_timed=own)
        if control._learner(name, seed, budgets, 5, tmp_path / "runs", **kw) is not None:
            matched.add(path.name)
    learner_files = {p.name for p in committed.glob("*-utd*-seed*.json")}
    assert len(learner_files) >= 39 and learner_files == matched


def test_dyna_defaults_are_the_learner_that_won(control, tmp_path, monkeypatch):
    from worldmodel.config import DynaConfig

    calls = []
    monkeypatch.setattr(agents.dyna, "run_dyna", _fake_run(calls))
    control._learner("sac+latent-ode+states", 0, [1000], utd=5, out=tmp_path / "runs")
    assert control._settings(calls[0]) == control._settings(DynaConfig())


def test_the_latent_ode_and_the_ensemble_differ_only_in_the_model(control, tmp_path, monkeypatch):
    calls = []
    monkeypatch.setattr(agents.dyna, "run_dyna", _fake_run(calls))
    for pair in control.MODEL_PAIRS:  # the pairs whose ratio the report prints
        for name in pair:
            control._learner(name, 0, [1000], utd=5, out=tmp_path / "runs")
    settings = [control._settings(c) for c in calls]
    for lat, ens in zip(settings[::2], settings[1::2], strict=True):
        assert lat["model"] == "latent-ode" and ens["model"] == "mlp-ensemble"
        assert {k for k in lat if lat[k] != ens[k]} == {"model"}
        assert lat["use_model"] and lat["rollout_length_max"] == 15 and lat["gradient_steps"] == 5
    assert settings[3]["branch_starts"] == "states" and settings[3]["refit_bounds"] == "own"


@pytest.mark.parametrize(
    ("base_name", "variant", "changed"),
    [
        ("sac+latent-ode", "sac+latent-ode+wide", {"rollouts", "imagined_capacity"}),
        ("sac+latent-ode", "sac+latent-ode+batch160", {"refit_batch"}),
        ("sac+latent-ode", "sac+latent-ode+real50", {"refit_batch", "real_ratio"}),
        ("sac+latent-ode+states", "sac+latent-ode+ends", {"refit_window_starts"}),
        ("sac", "sac-gamma995", {"gamma"}),
        ("sac", "sac-gamma98", {"gamma"}),
        ("sac", "sac-timed-discount", {"timed_discount"}),
        ("sac", "crossq", {"agent"}),
        ("sac+latent-ode+states", "crossq+latent-ode+states", {"agent"}),
        ("crossq", "crossq-qf256", {"critic_units"}),
        ("crossq+latent-ode+states", "crossq-qf256+latent-ode+states", {"critic_units"}),
    ],
)
def test_a_variant_differs_from_its_base_only_in_its_own_settings(
    control, tmp_path, monkeypatch, base_name, variant, changed
):
    from worldmodel.config import TrainConfig

    calls = []
    monkeypatch.setattr(agents.dyna, "run_dyna", _fake_run(calls))
    own = (1, 15) if variant in control.SELF_TIMED_ONLY else None
    for name in (base_name, variant):
        control._learner(name, 0, [1000], utd=5, out=tmp_path / "runs", self_timed=own)
    base, other = (control._settings(c) for c in calls)
    assert {k for k in base if base[k] != other[k]} == changed
    if variant.endswith("wide"):
        assert other["rollouts"] == 5 * base["rollouts"]
        # the ring holds one batch of the longest branches, up to the 100k-step budget
        dataclasses.replace(calls[1], steps=100_000).check()
    elif "gamma" in variant or "timed" in variant:  # at the base's 1 gradient step
        if "gamma" in variant:
            assert other["gamma"] == float("0." + variant.split("gamma")[1])
        assert calls[1].gradient_steps == 1
        tag = "" if own is None else "-self_1-15"
        assert (tmp_path / "summaries" / f"{variant}-utd1{tag}-seed0.json").exists()
    elif variant.startswith("crossq-qf256"):
        assert other["critic_units"] == 256 and base["critic_units"] is None
        assert calls[1].gradient_steps == calls[0].gradient_steps
    elif variant.startswith("crossq"):
        assert other["agent"] == "crossq" and base["agent"] == "sac"
        assert calls[1].gradient_steps == calls[0].gradient_steps  # crossq at utd 1 like sac
    elif variant.endswith("ends"):
        assert other["refit_window_starts"] == "any" and base["refit_window_starts"] == "whole"
    else:  # worldmodel train's batch, against the dyna default's
        assert other["refit_batch"] == TrainConfig().batch_size and base["refit_batch"] == 32


def test_mpc_with_the_latent_ode_plans_with_its_own_runs_model(control, tmp_path, monkeypatch):
    import agents.mpc
    import worldmodel.train

    planned = []

    def fake_mpc(model, cfg):
        planned.append(str(cfg.run))
        values.append(cfg.value)
        return {"mean_return": 5.0, "ms_per_action": 1.0, "steps": 10}

    values = []

    monkeypatch.setattr(agents.mpc, "run_mpc", fake_mpc)
    monkeypatch.setattr(worldmodel.train, "load", lambda run: None)
    out = tmp_path / "runs"
    for learner in ("sac+imagination", "sac+latent-ode"):
        (out / f"{learner}-seed0" / "model" / "refit_003").mkdir(parents=True)
    res = control._mpc(0, out, method="mpc+latent-ode")
    assert planned == [str(out / "sac+latent-ode-seed0" / "model" / "refit_003")]
    assert res["model"] == planned[0]
    assert (tmp_path / "summaries" / "mpc+latent-ode-seed0.json").exists()
    assert not (tmp_path / "summaries" / "mpc-seed0.json").exists()
    assert control._mpc(0, out, method="mpc+latent-ode") == res and len(planned) == 1  # reused
    control._mpc(0, out, method="mpc+latent-ode+value")
    assert values == [None, out / "sac+latent-ode-seed0" / "agent.zip"]  # its SAC's critic
    (out / "sac+latent-ode+batch160-seed0" / "model" / "refit_007").mkdir(parents=True)
    control._mpc(0, out, method="mpc+latent-ode+batch160")
    assert planned[-1] == str(out / "sac+latent-ode+batch160-seed0" / "model" / "refit_007")


def test_mpc_plans_with_the_highest_numbered_refit(control, tmp_path, monkeypatch):
    import agents.mpc
    import worldmodel.train

    planned = []
    monkeypatch.setattr(
        agents.mpc,
        "run_mpc",
        lambda model, cfg: (
            planned.append(cfg.run) or {"mean_return": 5.0, "ms_per_action": 1.0, "steps": 10}
        ),
    )
    monkeypatch.setattr(worldmodel.train, "load", lambda run: None)
    monkeypatch.chdir(tmp_path)
    models = Path("runs") / "sac+latent-ode-seed0" / "model"
    for name in ("refit_999", "refit_1000", "refit_abc"):
        (models / name).mkdir(parents=True)
    res = control._mpc(0, Path("runs"), method="mpc+latent-ode")
    assert planned == [models / "refit_1000"]
    # a summary that spells the same model's path absolutely is the same model: not rerun
    summary = tmp_path / "summaries" / "mpc+latent-ode-seed0.json"
    summary.write_text(json.dumps({**res, "model": str((models / "refit_1000").resolve())}))
    control._mpc(0, Path("runs"), method="mpc+latent-ode")
    assert len(planned) == 1


def test_the_bars_ratio_uses_the_seeds_both_methods_have(control, tmp_path, monkeypatch, capsys):
    """sac-utd has seeds 0 and 2, sac+latent-ode seed 0 only: the ratio is seed 0's alone;
    the ensemble in the same loop (seeds 0 and 2) is compared on seed 0 too."""

    def run(cfg):  # seed 0: 1,000 model-free, 800 with the latent-ode, 500 with the ensemble
        model = cfg.model if cfg.use_model else None
        top = {
            (0, None): 1000.0,
            (2, None): 3000.0,
            (0, "latent-ode"): 800.0,
            (0, "mlp-ensemble"): 500.0,
            (2, "mlp-ensemble"): 100.0,
        }[cfg.seed, model]
        return {"curve": [(cfg.steps, top, 0.0)], "wall_s": 1.0, "imagined_transitions": 0}

    monkeypatch.setattr(agents.dyna, "run_dyna", run)
    runs = [("sac-utd", 0), ("sac-utd", 2), ("sac+latent-ode", 0)]
    for name, seed in runs + [("sac+ensemble", 0), ("sac+ensemble", 2)]:
        control._learner(name, seed, [1000], utd=5, out=tmp_path / "runs")
    monkeypatch.setattr(control, "RESULTS", tmp_path / "res" / "control.csv")
    argv = ["control.py", "--report-only", "--budgets", "1000", "--seeds", "0,1,2"]
    monkeypatch.setattr(sys, "argv", argv + ["--methods", "sac-utd,sac+latent-ode,sac+ensemble"])
    control.main()
    out = capsys.readouterr().out
    assert "sac+latent-ode / sac-utd at 1000 real steps, seeds [0]: 0.80x" in out
    assert "sac+ensemble / sac-utd at 1000 real steps, seeds [0, 2]: 0.15x" in out
    assert "sac+latent-ode / sac+ensemble at 1000 real steps, seeds [0]: 1.60x" in out
    assert (tmp_path / "res" / "control.csv").exists()


def test_irregular_control_runs_sit_beside_the_fixed_step_ones(control, tmp_path, monkeypatch):
    calls = []
    monkeypatch.setattr(agents.dyna, "run_dyna", _fake_run(calls))
    for timing in ("fixed", "uniform:3-5"):
        control._learner("sac-utd", 0, [1000], utd=5, out=tmp_path / "runs", timing=timing)
    fixed, irregular = calls
    assert (fixed.timing, irregular.timing) == ("fixed", "uniform:3-5")
    assert fixed.out.name == "sac-utd-seed0" and irregular.out.name == "sac-utd-uniform_3-5-seed0"
    names = sorted(p.name for p in (tmp_path / "summaries").iterdir())
    assert names == ["sac-utd-utd5-seed0.json", "sac-utd-utd5-uniform_3-5-seed0.json"]
    # each is reused under its own timing only
    control._learner("sac-utd", 0, [1000], utd=5, out=tmp_path / "runs", timing="uniform:3-5")
    assert len(calls) == 2
    control._learner("sac-utd", 0, [1000], utd=5, out=tmp_path / "runs", timing="uniform:2-6")
    assert len(calls) == 3


def test_self_timed_runs_sit_beside_the_fixed_step_ones(control, tmp_path, monkeypatch):
    calls = []
    monkeypatch.setattr(agents.dyna, "run_dyna", _fake_run(calls))
    for own in (None, (1, 15)):
        control._learner("sac", 0, [1000], 5, tmp_path / "runs", self_timed=own)
    fixed, timed = calls
    assert fixed.self_timed is None and timed.self_timed == (1, 15)
    assert timed.out.name == "sac-self_1-15-seed0"
    summary = json.loads((tmp_path / "summaries" / "sac-utd1-self_1-15-seed0.json").read_text())
    assert summary["decisions_per_s"] == {"1000": 125.0}
    assert "decisions_per_s" not in json.loads(
        (tmp_path / "summaries" / "sac-utd1-seed0.json").read_text()
    )
    control._learner("sac", 0, [1000], 5, tmp_path / "runs", self_timed=(1, 15))
    assert len(calls) == 2  # reused under its own hold range only
    control._learner("sac", 0, [1000], 5, tmp_path / "runs", self_timed=(2, 15))
    assert len(calls) == 3


def test_another_envs_runs_sit_beside_hoppers(control, tmp_path, monkeypatch):
    calls = []
    monkeypatch.setattr(agents.dyna, "run_dyna", _fake_run(calls))
    for env, timing in (
        ("Hopper-v5", "fixed"),
        ("Walker2d-v5", "fixed"),
        ("Walker2d-v5", "uniform:3-5"),
    ):
        control._learner("sac-utd", 0, [1000], 5, tmp_path / "runs", timing=timing, env=env)
    assert [c.env for c in calls] == ["Hopper-v5", "Walker2d-v5", "Walker2d-v5"]
    assert [c.out.name for c in calls] == [
        "sac-utd-seed0",
        "sac-utd-Walker2d-v5-seed0",
        "sac-utd-Walker2d-v5-uniform_3-5-seed0",
    ]
    names = sorted(p.name for p in (tmp_path / "summaries").iterdir())
    assert names == [
        "sac-utd-utd5-Walker2d-v5-seed0.json",
        "sac-utd-utd5-Walker2d-v5-uniform_3-5-seed0.json",
        "sac-utd-utd5-seed0.json",
    ]
    # Hopper-v5's summary is never reused for Walker2d-v5 (nor the other way round)
    control._learner("sac-utd", 0, [1000], 5, tmp_path / "runs", env="Walker2d-v5")
    assert len(calls) == 3


def test_a_bad_timing_env_or_mpc_under_irregular_timing_fails_before_any_run(control, monkeypatch):
    monkeypatch.setattr(agents.dyna, "run_dyna", _fake_run(calls := []))
    for argv, error in (
        (["--timing", "bogus", "--methods", "sac"], "unknown timing spec"),
        (["--env", "Humanoid-v5", "--methods", "sac"], "no reward/termination task"),
        (["--timing", "uniform:3-5", "--methods", "sac,mpc"], "pass --methods without"),
        (["--self-timed", "1-15", "--methods", "sac,mpc"], "pass --methods without"),
        (["--self-timed", "9-3", "--methods", "sac"], "1 <= LOW <= HIGH"),
        (["--self-timed", "x", "--methods", "sac"], "expected LOW-HIGH"),
        (["--methods", "sac,sac-timed-discount"], "a self-timed learner; pass --self-timed"),
        (["--self-timed", "1-8", "--timing", "uniform:3-5", "--methods", "sac"], "--timing fixed"),
    ):
        monkeypatch.setattr(sys, "argv", ["control.py", *argv])
        with pytest.raises((SystemExit, ValueError), match=error):
            control.main()
    assert calls == [] and control.timing_tag("geometric:0.3:12") != control.timing_tag(
        "geometric:0.31:2"
    )


def test_experience_counts_the_simulated_seconds_behind_each_real_step(tmp_path, monkeypatch):
    from agents.dyna import run_dyna
    from worldmodel.config import DynaConfig

    monkeypatch.syspath_prepend(str(BENCHMARKS))
    sys.modules.pop("experience", None)
    experience = importlib.import_module("experience")
    cfg = DynaConfig(
        steps=150,
        init_steps=50,
        use_model=False,
        eval_every=150,
        eval_episodes=1,
        self_timed=(2, 10),
        out=tmp_path / "run",
    )
    run_dyna(cfg)
    steps, secs = experience.experience(cfg.out)
    assert steps[0] == 1 and len(steps) == len(secs) <= 150
    holds = np.diff(np.concatenate([[0.0], secs])) / 0.002  # physics substeps of each step
    assert np.allclose(holds, np.rint(holds))
    assert 2 - 1e-9 <= holds.min() and holds.max() <= 10 + 1e-9
    monkeypatch.setattr(
        sys,
        "argv",
        ["experience.py", str(cfg.out), "--seconds", "0.5", "--out", str(tmp_path / "x.csv")],
    )
    experience.main()
    row = (tmp_path / "x.csv").read_text().splitlines()[1].split(",")
    assert row[0] == "run" and row[1] == "150" and int(row[2]) == min(150, len(secs))
    assert float(row[3]) == pytest.approx(secs[int(row[2]) - 1], abs=0.06)


def test_mpc_with_the_simulator_plans_without_a_learners_run(control, tmp_path, monkeypatch):
    import agents.mpc

    seen = []

    def fake_mpc(model, cfg, spec=None):
        seen.append((model, cfg.dynamics, spec.env_id))
        return {"mean_return": 1234.0, "ms_per_action": 50.0, "steps": 3000}

    monkeypatch.setattr(agents.mpc, "run_mpc", fake_mpc)
    res = control._mpc(0, tmp_path / "runs", method="mpc+simulator", env="Walker2d-v5")
    assert seen == [(None, "simulator", "Walker2d-v5")] and res["model"] == "simulator"
    summary = tmp_path / "summaries" / "mpc+simulator-Walker2d-v5-seed0.json"
    assert json.loads(summary.read_text())["mean_return"] == 1234.0
    assert control._mpc(0, tmp_path / "runs", method="mpc+simulator", env="Walker2d-v5") == res
    assert len(seen) == 1  # a finished summary is reused


def test_reporting_the_same_finished_runs_twice_records_their_rows_once(
    control, tmp_path, monkeypatch
):
    """--report-only re-aggregates committed summaries: a second call with nothing new appends
    nothing, and a run finished in between adds only the rows that changed."""
    monkeypatch.setattr(agents.dyna, "run_dyna", _fake_run([]))
    control._learner("sac", 0, [1000], utd=5, out=tmp_path / "runs")
    results = tmp_path / "res" / "control.csv"
    monkeypatch.setattr(control, "RESULTS", results)
    argv = ["control.py", "--report-only", "--budgets", "1000", "--seeds", "0,1", "--methods"]
    monkeypatch.setattr(sys, "argv", argv + ["sac"])

    def lines():
        return results.read_text().splitlines()

    control.main()
    first = lines()
    control.main()
    assert lines() == first
    control._learner("sac", 1, [1000], utd=5, out=tmp_path / "runs")
    control.main()
    added = lines()[len(first) :]
    assert len(added) == 1 and ",sac,1000," in added[0] and added[0].endswith(",2,2")
