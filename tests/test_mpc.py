"""MPC on the real env with a world model."""

import subprocess
import sys

import numpy as np
import pytest

from agents.mpc import run_mpc
from worldmodel.config import PlanConfig
from worldmodel.train import load


@pytest.fixture(scope="module")
def run(tiny_run):
    return tiny_run("latent-ode")


@pytest.mark.parametrize("planner", ["cem", "mppi"])
def test_mpc_is_judged_on_the_real_env(run, planner):
    cfg = PlanConfig(
        run=run,
        planner=planner,
        episodes=2,
        horizon=3,
        population=16,
        iterations=2,
        elites=4,
        timing="uniform:1-7",
        max_episode_steps=6,
    )
    res = run_mpc(load(run), cfg)
    eps = res["episodes"]
    assert len(eps) == 2 and all(len(ep) - 1 <= 6 for ep in eps)
    # the reported returns are the real env's rewards, recorded by TrajectoryRecorder on the
    # real env
    np.testing.assert_allclose(res["returns"], [ep.rewards.sum() for ep in eps])
    assert len(set(np.round(np.concatenate([ep.dt for ep in eps]), 6))) > 1  # irregular real dt
    assert res["ms_per_action"] > 0


def test_mpc_with_a_critics_terminal_value(run, tmp_path):
    import gymnasium as gym
    from stable_baselines3 import SAC

    agent = SAC("MlpPolicy", gym.make("Hopper-v5"), policy_kwargs={"net_arch": [8]}, seed=0)
    agent.save(tmp_path / "agent.zip")
    cfg = PlanConfig(
        run=run, episodes=1, horizon=3, population=16, iterations=2, elites=4, max_episode_steps=4
    )
    plain = run_mpc(load(run), cfg)
    cfg.value, cfg.value_discount = tmp_path / "agent.zip", 0.9
    valued = run_mpc(load(run), cfg)
    assert valued["steps"] >= 1 and np.isfinite(valued["mean_return"])
    assert not np.allclose(  # the critic changed what the planner chose
        np.concatenate([ep.actions for ep in valued["episodes"]])[:1],
        np.concatenate([ep.actions for ep in plain["episodes"]])[:1],
    )
    cfg.value_discount = 1.5
    with pytest.raises(ValueError, match="--value-discount must be in"):
        run_mpc(load(run), cfg)


def test_plan_command(run):
    proc = subprocess.run(
        [
            sys.executable,
            "-m",
            "worldmodel.cli",
            "plan",
            str(run),
            "--planner",
            "mppi",
            "--episodes",
            "1",
            "--horizon",
            "2",
            "--population",
            "8",
            "--iterations",
            "1",
            "--max-episode-steps",
            "3",
        ],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert proc.returncode == 0, proc.stderr
    assert "mean return" in proc.stdout and "ms per action" in proc.stdout


def test_mpc_with_the_simulator_needs_no_model_and_keeps_the_hopper_up():
    from envs import EnvSpec

    spec = EnvSpec("Hopper-v5")
    cfg = PlanConfig(
        planner="cem",
        episodes=1,
        horizon=8,
        population=32,
        iterations=2,
        elites=4,
        max_episode_steps=40,
        dynamics="simulator",
    )
    res = run_mpc(None, cfg, spec=spec)
    ep = res["episodes"][0]
    assert res["episodes"].metadata["policy"]["name"] == "mpc-cem-simulator"
    np.testing.assert_allclose(res["returns"], [ep.rewards.sum()])
    assert len(ep) - 1 == 40  # it keeps the hopper up for the whole (short) episode
    with pytest.raises(ValueError, match="needs one"):
        run_mpc(None, PlanConfig(), spec=spec)
    with pytest.raises(ValueError, match="needs a spec"):
        run_mpc(None, PlanConfig(dynamics="simulator"))
    with pytest.raises(ValueError, match="unknown dynamics 'exact'"):
        run_mpc(None, PlanConfig(dynamics="exact"), spec=spec)
    with pytest.raises(ValueError, match="whole number of physics steps"):
        run_mpc(None, PlanConfig(dynamics="simulator", timing="uniform:1-4"), spec=spec)


def test_a_policy_prior_starts_the_search_from_the_agents_actor(run, tmp_path):
    """With a search too narrow to move (init_std ~ 0), the plan is the actor's own rollout
    through the model: every executed action is the actor's action at the real observation."""
    import gymnasium as gym
    from stable_baselines3 import SAC

    from agents.policies import make_policy

    agent = SAC("MlpPolicy", gym.make("Hopper-v5"), policy_kwargs={"net_arch": [8]}, seed=0)
    agent.save(tmp_path / "agent.zip")
    cfg = PlanConfig(
        run=run,
        episodes=1,
        horizon=3,
        population=8,
        iterations=1,
        elites=2,
        init_std=1e-7,
        max_episode_steps=5,
        value=tmp_path / "agent.zip",
        policy_prior=True,
    )
    res = run_mpc(load(run), cfg)
    ep = res["episodes"][0]
    actor = make_policy(str(tmp_path / "agent.zip"), *_spaces())
    want = np.stack([actor(o) for o in ep.obs[:-1]])
    np.testing.assert_allclose(ep.actions, want, atol=1e-5)
    with pytest.raises(ValueError, match="--policy-prior needs --value"):
        run_mpc(load(run), PlanConfig(run=run, policy_prior=True, episodes=1))


def _spaces():
    import gymnasium as gym

    env = gym.make("Hopper-v5")
    return env.observation_space, env.action_space


def test_the_policy_prior_is_the_actor_along_the_models_own_prediction(run):
    """Every step of the prior, not only the first: the actor at the model's predicted
    observation (real units) after the prior's own earlier actions."""
    import torch

    from agents.mpc import _rollout
    from envs import EnvSpec
    from worldmodel.batching import context_batch, context_window

    model = load(run)
    seen = []

    def actor(o):
        seen.append(np.array(o))
        return np.tanh(np.asarray(o)[:3])  # depends on the observation

    obs = np.linspace(-0.5, 0.5, 11) + np.r_[1.25, np.zeros(10)]
    ctx = context_window(np.zeros(1), obs[None], np.zeros((0, 3)), 0, 5)
    with torch.no_grad():
        state = model.encode(context_batch([ctx], model.normalizer), 1, mean=True)[:, 0]
        prior = _rollout(model, actor, state, obs, 0.008, PlanConfig(run=run, horizon=4))
        assert prior.shape == (4, 3) and prior.dtype == torch.float32
        s, o, d = state[:1], obs, torch.full((1,), 0.008)
        for k in range(4):
            np.testing.assert_allclose(seen[k], o)
            np.testing.assert_allclose(prior[k].numpy(), np.tanh(o[:3]), rtol=1e-6)
            s, o_norm = model.step(s, torch.as_tensor(np.tanh(o[:3])[None], dtype=s.dtype), d)
            o = model.denormalize(o_norm)[0].double().numpy()
    with pytest.raises(ValueError, match="--policy-prior needs --value"):
        run_mpc(
            None, PlanConfig(policy_prior=True, dynamics="simulator"), spec=EnvSpec("Hopper-v5")
        )
