import pickle
import zipfile

import gymnasium as gym
import numpy as np
import pytest

from agents.policies import PolicyError, SB3Policy, export_policy, make_policy
from worldmodel.collect import CollectConfig, collect


@pytest.fixture(scope="module", params=["sac", "crossq"])
def sb3_zip(request, tmp_path_factory):
    """An agent zip of SB3's SAC, or of sb3-contrib's CrossQ (``worldmodel dyna --agent
    crossq``; its batch-renormalised networks act and value in eval mode)."""
    from agents.dyna import learner_class

    env = gym.make("Hopper-v5")
    kwargs = {"policy_kwargs": {"net_arch": [16, 16]}, "seed": 0, "device": "cpu"}
    model = learner_class(request.param)("MlpPolicy", env, **kwargs)
    if request.param == "crossq":  # running statistics of its own, not the initial ones
        model.learn(300)
    model.policy.set_training_mode(False)
    path = tmp_path_factory.mktemp("sb3") / f"{request.param}_hopper.zip"
    model.save(path)
    return path, model


def test_sb3_policy_acts_like_the_checkpoint(sb3_zip):
    path, model = sb3_zip
    env = gym.make("Hopper-v5")
    pol = make_policy(str(path), env.observation_space, env.action_space)
    obs, _ = env.reset(seed=0)
    for _ in range(5):
        expected, _ = model.predict(obs, deterministic=True)
        np.testing.assert_allclose(pol(obs), expected, atol=1e-6)
        obs, *_ = env.step(expected)
    noisy = SB3Policy(path, env.observation_space, env.action_space, noise_std=0.3)
    noisy.reset(1)
    a = noisy(obs)
    assert env.action_space.contains(a) and not np.allclose(a, pol(obs))


def test_exported_policy_acts_identically_and_keeps_only_the_actor(sb3_zip, tmp_path):
    path, model = sb3_zip
    slim = export_policy(path, tmp_path / "slim.zip")
    assert slim.stat().st_size < path.stat().st_size / 2
    env = gym.make("Hopper-v5")
    full = make_policy(str(path), env.observation_space, env.action_space)
    part = make_policy(str(slim), env.observation_space, env.action_space)
    obs, _ = env.reset(seed=3)
    for _ in range(5):
        np.testing.assert_array_equal(part(obs), full(obs))
        obs, *_ = env.step(full(obs))
    with zipfile.ZipFile(slim) as zf:
        assert sorted(zf.namelist()) == ["_stable_baselines3_version", "data", "policy.pth"]
    other = gym.make("Walker2d-v5")  # the shape checks still apply to an export
    with pytest.raises(PolicyError, match="another env"):
        make_policy(str(slim), other.observation_space, other.action_space)


def test_critic_value_is_the_smaller_q_at_the_actors_action(sb3_zip, tmp_path):
    import torch

    from agents.policies import critic_value

    path, model = sb3_zip
    env = gym.make("Hopper-v5")
    value = critic_value(path, env.observation_space, env.action_space)
    obs = torch.as_tensor(np.stack([env.reset(seed=k)[0] for k in range(4)]), dtype=torch.float64)
    with torch.no_grad():
        o = obs.float()
        a = model.policy.actor(o, deterministic=True)
        want = torch.min(*model.policy.critic(o, a)).squeeze(-1)
    torch.testing.assert_close(value(obs), want)
    slim = export_policy(path, tmp_path / "slim.zip")
    with pytest.raises(PolicyError, match="no critic weights"):
        critic_value(slim, env.observation_space, env.action_space)


def test_export_refuses_a_policy_without_a_separate_actor(tmp_path):
    from stable_baselines3 import PPO

    env = gym.make("Hopper-v5")
    ppo = PPO("MlpPolicy", env, policy_kwargs={"net_arch": [8]}, n_steps=8, batch_size=8)
    ppo.save(tmp_path / "ppo.zip")
    with pytest.raises(PolicyError, match="no separate actor"):
        export_policy(tmp_path / "ppo.zip", tmp_path / "slim.zip")
    assert not (tmp_path / "slim.zip").exists()


def test_sb3_policy_collects_and_is_recorded(sb3_zip):
    import torch

    path, model = sb3_zip
    threads = torch.get_num_threads()
    torch.set_num_threads(threads + 1)
    try:
        d = collect(
            CollectConfig(
                episodes=2, policy=str(path), action_noise=0.1, max_episode_steps=10, progress=False
            )
        )
        # collected in this process: torch's thread count (the caller's, for its training
        # and imagination afterwards) is left alone; only worker processes take one thread
        assert torch.get_num_threads() == threads + 1
    finally:
        torch.set_num_threads(threads)
    assert d.metadata["policy"]["class"].endswith(type(model.policy).__name__)
    assert d.metadata["policy"]["noise_std"] == 0.1


def test_checkpoint_for_another_env_is_refused(sb3_zip):
    path, _ = sb3_zip
    walker = gym.make("Walker2d-v5")
    with pytest.raises(PolicyError, match="observation_space has shape \\(11,\\)"):
        make_policy(str(path), walker.observation_space, walker.action_space)


class _Payload:
    def __reduce__(self):
        import os

        return (os.system, ("touch /tmp/worldmodel_pwned",))


def test_malicious_weights_are_not_unpickled(sb3_zip, tmp_path):
    import os

    path, _ = sb3_zip
    evil = tmp_path / "evil.zip"
    with zipfile.ZipFile(path) as src, zipfile.ZipFile(evil, "w") as dst:
        for item in src.namelist():
            data = src.read(item)
            if item == "policy.pth":
                data = pickle.dumps(_Payload())
            dst.writestr(item, data)
    if os.path.exists("/tmp/worldmodel_pwned"):
        os.unlink("/tmp/worldmodel_pwned")
    env = gym.make("Hopper-v5")
    with pytest.raises(PolicyError, match="policy weights|not a readable"):
        make_policy(str(evil), env.observation_space, env.action_space)
    assert not os.path.exists("/tmp/worldmodel_pwned")


def test_unknown_policy_lists_the_valid_ones():
    env = gym.make("Hopper-v5")
    with pytest.raises(PolicyError, match=r"\['random', 'zero'\]"):
        make_policy("greedy", env.observation_space, env.action_space)
