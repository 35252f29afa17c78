"""Issue #14 items 3 and 4: the env a dataset was collected in (its EnvSpec: id, gym.make
kwargs, wrappers) reaches every consumer, and envs without a task are refused by name."""

from __future__ import annotations

import json
import math
import shlex
import shutil

import numpy as np
import pytest
import tyro

from envs import EnvSpec, mujoco_base
from envs.factory import env_spec_of
from envs.imagined import ImaginedEnv
from worldmodel.batching import Normalizer
from worldmodel.collect import CollectConfig, collect
from worldmodel.data import Dataset
from worldmodel.evaluate import (
    Simulator,
    SimulatorMismatch,
    SimulatorPredictor,
    check_replay,
    compare_to_simulator,
)
from worldmodel.train import load

# Hopper on a 5-degree incline, wider start states, cheaper control, and no termination
INCLINE = CollectConfig(
    env="Hopper-v5",
    episodes=3,
    timing="uniform:1-3",
    seed=1,
    max_episode_steps=12,
    incline_deg=5.0,
    reset_noise=0.1,
    env_kwargs={"terminate_when_unhealthy": False, "ctrl_cost_weight": 0.01},
    progress=False,
)


@pytest.fixture(scope="module")
def incline_data() -> Dataset:
    return collect(INCLINE)


def with_metadata(run, tmp_path, name: str, **changes):
    """A copy of ``run`` whose config.json says its data came from another env spec."""
    out = tmp_path / name
    shutil.copytree(run, out)
    cfg = json.loads((out / "config.json").read_text())
    cfg["dataset"]["metadata"].update(changes)
    if "env_id" in changes:
        cfg["env_id"] = changes["env_id"]
    (out / "config.json").write_text(json.dumps(cfg))
    return out


def test_spec_round_trips_through_dataset_run_and_report(incline_data, tiny_run, tmp_path):
    spec = EnvSpec.from_metadata(incline_data.metadata)
    assert spec == INCLINE.env_spec()
    assert spec.task().terminate_when_unhealthy is False and spec.task().ctrl_cost_weight == 0.01
    # a run's config.json carries it (the trainer copies the dataset metadata there)
    run = with_metadata(tiny_run("mlp-ensemble"), tmp_path, "run", **spec.metadata())
    assert (
        env_spec_of(load(run)) == spec
        and env_spec_of(json.loads((run / "config.json").read_text())) == spec
    )
    # a run without the metadata (older runs, models built in code) is the plain env
    assert env_spec_of({"env_id": "Walker2d-v5"}) == EnvSpec("Walker2d-v5")
    with pytest.raises(ValueError, match="Unknown"):
        EnvSpec.from_metadata({"env_id": "Hopper-v5", "wrappers": [{"name": "Unknown"}]})

    # the report's command that made the data rebuilds the same spec through the CLI
    from worldmodel.cli import CollectArgs
    from worldmodel.report import _collect_command

    cmd = _collect_command(spec, incline_data.metadata, 3, "random", "data/x.npz")
    for flag in (
        "--incline-deg 5",
        "--reset-noise 0.1",
        "--max-episode-steps 12",
        "--env-kwargs terminate_when_unhealthy 0 ctrl_cost_weight 0.01",
    ):
        assert flag in cmd
    args = tyro.cli(CollectArgs, args=shlex.split(cmd)[2:])
    assert args.env_spec() == spec and args.episodes == 3 and args.seed == INCLINE.seed


def test_evaluate_simulates_the_datasets_env_and_refuses_one_that_does_not_replay(incline_data):
    norm = Normalizer.fit(incline_data.episodes)
    spec = EnvSpec.from_metadata(incline_data.metadata)
    res = compare_to_simulator(
        [SimulatorPredictor(spec)], incline_data, norm, horizon=6, starts=3, context=2
    )
    assert res.errors["simulator"].max() < 1e-10  # the simulator and the rollouts agree...
    assert res.settings["replay_error"] < 1e-6  # ...and both are the recorded env
    assert res.settings["env_spec"]["incline_deg"] == 5.0
    assert mujoco_base(Simulator(spec).env).model.opt.gravity[0] == pytest.approx(
        -9.81 * math.sin(math.radians(5.0))
    )

    flat = Dataset(incline_data.episodes, {**incline_data.metadata, "wrappers": []})
    with pytest.raises(SimulatorMismatch, match=r"observation\[\d+\].*incline 0\.0 deg"):
        compare_to_simulator([], flat, norm, horizon=3, starts=2, context=2)
    dearer = {**incline_data.metadata, "env_kwargs": {"terminate_when_unhealthy": False}}
    with pytest.raises(SimulatorMismatch, match="reward"):
        check_replay(Simulator(EnvSpec.from_metadata(dearer)), incline_data)
    assert check_replay(Simulator(spec), incline_data) < 1e-6


def test_imagination_and_mpc_follow_the_spec(incline_data, tiny_run, tmp_path):
    spec = EnvSpec.from_metadata(incline_data.metadata)
    plain = tiny_run("mlp-ensemble")
    run = with_metadata(plain, tmp_path, "run", **spec.metadata())

    env, env0 = ImaginedEnv(run), ImaginedEnv(plain)
    task, task0 = env.core.task, env0.core.task
    assert not task.terminate_when_unhealthy and task0.terminate_when_unhealthy
    fallen = np.zeros((1, 11))  # z = 0: unhealthy
    args = (fallen, np.zeros((1, 3)), fallen, 0.008)
    assert not task.terminated(*args).any() and task0.terminated(*args).all()
    # real start states come from the data's env: its reset noise, its incline
    starts = np.array([env.reset(seed=s)[0] for s in range(8)])
    starts0 = np.array([env0.reset(seed=s)[0] for s in range(8)])
    assert starts[:, :5].std(0).min() > 0.02 > 0.01 > starts0[:, :5].std(0).max()
    assert mujoco_base(env.real.env).model.opt.gravity[0] < -0.8
    obs, _ = env.reset(
        seed=0, options={"context": {"t": [0.0], "obs": fallen, "actions": np.zeros((0, 3))}}
    )
    for _ in range(5):  # a fallen hopper goes on: the data's env never terminates
        obs, r, term, trunc, info = env.step(np.ones(3))
        assert not term and info["reward_ctrl"] == pytest.approx(-0.03)

    from agents.mpc import run_mpc
    from worldmodel.config import PlanConfig

    cfg = PlanConfig(
        run=run,
        episodes=1,
        horizon=2,
        population=8,
        iterations=1,
        elites=2,
        max_episode_steps=6,
        timing="uniform:1-3",
    )
    eps = run_mpc(load(run), cfg)["episodes"]
    assert EnvSpec.from_metadata(eps.metadata) == spec.replace(max_episode_steps=6)
    assert check_replay(Simulator(spec), eps) < 1e-6  # MPC acted on the inclined hopper
    with pytest.raises(SimulatorMismatch):
        check_replay(Simulator("Hopper-v5"), eps)


def test_envs_without_a_task_are_refused_by_name(tiny_run, tmp_path):
    from agents.dyna import run_dyna
    from agents.mpc import run_mpc
    from worldmodel.config import DynaConfig, PlanConfig
    from worldmodel.report import evaluate_runs

    run = with_metadata(tiny_run("mlp-ensemble"), tmp_path, "run", env_id="Humanoid-v5")
    supported = r"only \['Ant-v5', 'HalfCheetah-v5', 'Hopper-v5', 'Swimmer-v5', 'Walker2d-v5'\]"
    with pytest.raises(ValueError, match=supported):
        ImaginedEnv(run)
    with pytest.raises(ValueError, match=supported):
        run_mpc(load(run), PlanConfig(run=run, episodes=1))
    with pytest.raises(ValueError, match=supported):
        evaluate_runs([run], tmp_path / "report")
    with pytest.raises(ValueError, match=supported):
        run_dyna(DynaConfig(env="Humanoid-v5", steps=10, out=tmp_path / "dyna"))
    assert not (tmp_path / "dyna").exists() and not (tmp_path / "report").exists()


def test_imagined_half_cheetah_scores_its_steps(tmp_path):
    """A supported env other than Hopper/Walker2d: its own reward, not 0."""
    from worldmodel.models import ModelConfig
    from worldmodel.train import TrainConfig, Trainer

    data = collect(
        CollectConfig(
            env="HalfCheetah-v5",
            episodes=4,
            timing="fixed",
            seed=0,
            max_episode_steps=10,
            progress=False,
        )
    )
    net = ModelConfig(ensemble_size=2, ensemble_units=16, ensemble_layers=1)
    cfg = TrainConfig(
        model="mlp-ensemble",
        net=net,
        epochs=1,
        steps_per_epoch=2,
        batch_size=4,
        window=5,
        eval_windows=2,
        split=(0.5, 0.5, 0.0),
        progress=False,
        tensorboard=False,
    )
    Trainer(cfg, data, tmp_path / "run").fit()
    env = ImaginedEnv(tmp_path / "run")
    obs, _ = env.reset(seed=0)
    action = np.full(6, 0.5)
    nxt, reward, term, trunc, info = env.step(action)
    want, terms = env.core.task.reward(obs, action, nxt, env.dt)
    assert reward == pytest.approx(float(want)) and reward != 0.0 and not term
    assert info["reward_ctrl"] == pytest.approx(-0.1 * 6 * 0.25)
    assert info["inexact_terms"] == ("reward_forward",) and "reward_survive" not in info
