"""The replay buffers: timed discounts, mixed batch composition, FIFO ring, bad input."""

from typing import NamedTuple

import numpy as np
import pytest
import torch
from gymnasium import spaces

from agents.replay import MixedReplayBuffer, TimedReplayBuffer

OBS = spaces.Box(-np.inf, np.inf, (3,), np.float64)


class OldSamples(NamedTuple):
    """stable_baselines3 2.6's ReplayBufferSamples (no ``discounts``; 2.7 added it)."""

    observations: torch.Tensor
    actions: torch.Tensor
    next_observations: torch.Tensor
    dones: torch.Tensor
    rewards: torch.Tensor


ACT = spaces.Box(-1.0, 1.0, (2,), np.float32)


def _buffer(capacity: int = 10, ratio: float = 0.25) -> MixedReplayBuffer:
    buf = MixedReplayBuffer(
        100, OBS, ACT, device="cpu", imagined_capacity=capacity, real_ratio=ratio
    )
    for _ in range(20):  # real transitions carry reward +1
        buf.add(np.zeros((1, 3)), np.zeros((1, 3)), np.zeros((1, 2)), np.ones(1), np.zeros(1), [{}])
    return buf


def _imagined(n: int, reward: float, start: float = 0.0):
    obs = np.arange(start, start + n)[:, None] * np.ones((1, 3))
    return obs, obs + 1, np.zeros((n, 2)), np.full(n, reward), np.zeros(n)


def test_all_real_until_something_is_imagined():
    buf = _buffer()
    assert (buf.sample(64).rewards == 1).all()


def test_batch_takes_real_ratio_from_real_steps():
    buf = _buffer(ratio=0.25)
    buf.add_imagined(*_imagined(5, reward=-1.0))
    r = buf.sample(64).rewards.numpy().ravel()
    assert len(r) == 64 and (r == 1).sum() == 16 and (r == -1).sum() == 48


def test_ring_keeps_only_the_newest():
    buf = _buffer(capacity=10, ratio=0.0)
    buf.add_imagined(*_imagined(8, reward=-1.0, start=0))
    buf.add_imagined(*_imagined(6, reward=-2.0, start=100))  # overwrites the 4 oldest
    assert buf.im_size == 10
    seen = set(buf.sample(2000).observations[:, 0].numpy().tolist())
    assert seen == {4.0, 5.0, 6.0, 7.0} | {100.0 + k for k in range(6)}
    batch = buf.sample(50)
    np.testing.assert_allclose(batch.next_observations.numpy(), batch.observations.numpy() + 1)


@pytest.mark.parametrize("first", [8, 14])  # a ring partly filled, and one that wrapped
def test_a_grown_ring_keeps_its_transitions_oldest_first(first):
    buf = _buffer(capacity=10, ratio=0.0)
    buf.add_imagined(*_imagined(first, reward=-1.0, start=0))
    kept = [float(v) for v in range(max(0, first - 10), first)]  # the newest 10 at most
    buf.grow_imagined(16)
    assert buf.imagined_capacity == 16 and buf.im_size == len(kept)
    assert buf.im_obs[: len(kept), 0].tolist() == kept  # oldest first
    buf.add_imagined(*_imagined(10, reward=-2.0, start=100))  # the oldest fall out first
    left = (kept + [100.0 + k for k in range(10)])[-16:]
    oldest = buf.im_pos  # the ring is full: its oldest entry is where the next one goes
    assert np.roll(buf.im_obs[:, 0], -oldest).tolist() == left
    buf.grow_imagined(4)  # never shrinks
    assert buf.imagined_capacity == 16
    batch = buf.sample(50)
    np.testing.assert_allclose(batch.next_observations.numpy(), batch.observations.numpy() + 1)


def test_an_empty_batch_of_imagined_steps_adds_nothing():
    buf = _buffer()
    buf.add_imagined(*_imagined(0, reward=-1.0))  # every branch ended before its first step
    assert buf.im_size == 0 and buf.im_pos == 0 and (buf.sample(16).rewards == 1).all()


def test_rejects_non_finite_and_bad_settings():
    buf = _buffer()
    obs, nxt, act, rew, done = _imagined(3, reward=0.0)
    nxt[1, 0] = np.nan
    with pytest.raises(ValueError, match="next_obs"):
        buf.add_imagined(obs, nxt, act, rew, done)
    with pytest.raises(ValueError, match="real_ratio"):
        MixedReplayBuffer(10, OBS, ACT, device="cpu", real_ratio=2.0)


def test_mixed_batches_with_the_samples_of_sb3_before_2_7(monkeypatch):
    """SB3 2.3-2.6 (pyproject allows >= 2.3) have no ``discounts`` field; 2.7 added it."""
    import stable_baselines3.common.buffers as sb3_buffers

    import agents.replay

    monkeypatch.setattr(sb3_buffers, "ReplayBufferSamples", OldSamples)
    monkeypatch.setattr(agents.replay, "ReplayBufferSamples", OldSamples)
    buf = _buffer(ratio=0.25)
    buf.add_imagined(*_imagined(5, reward=-1.0))
    batch = buf.sample(64)
    assert type(batch) is OldSamples and batch.observations.shape == (64, 3)
    r = batch.rewards.numpy().ravel()
    assert (r == 1).sum() == 16 and (r == -1).sum() == 48


def test_mixed_batches_keep_the_current_samples_type():
    from stable_baselines3.common.type_aliases import ReplayBufferSamples

    buf = _buffer(ratio=0.5)
    buf.add_imagined(*_imagined(5, reward=-1.0))
    batch = buf.sample(8)
    assert type(batch) is ReplayBufferSamples and batch.rewards.shape == (8, 1)
    assert getattr(batch, "discounts", None) is None  # SB3 >= 2.7: SAC then uses its gamma


def _timed_buffer(cls=TimedReplayBuffer, **kwargs):
    act = spaces.Box(-1.0, 1.0, (3,), np.float32)  # 2 physical components and the hold
    buf = cls(
        100, OBS, act, device="cpu", self_timed=(2, 10), gamma=0.9, default_substeps=4, **kwargs
    )
    for u in (-1.0, 0.0, 1.0):  # holds of 2, 6 and 10 substeps
        a = np.array([[0.5, -0.5, u]])
        buf.add(np.zeros((1, 3)), np.zeros((1, 3)), a, np.ones(1), np.zeros(1), [{}])
    return buf


def test_a_self_timed_transition_is_discounted_over_its_own_interval():
    batch = _timed_buffer().sample(200)
    hold = {-1.0: 2, 0.0: 6, 1.0: 10}
    want = [0.9 ** (hold[u] / 4) for u in batch.actions[:, -1].tolist()]
    assert batch.discounts.shape == (200, 1) and batch.discounts.dtype == torch.float32
    np.testing.assert_allclose(batch.discounts[:, 0].numpy(), want, rtol=1e-6)
    assert set(batch.actions[:, -1].tolist()) == {-1.0, 0.0, 1.0}


def test_imagined_transitions_are_discounted_by_the_same_rule():
    buf = _timed_buffer(MixedReplayBuffer, imagined_capacity=10, real_ratio=0.5)
    acts = np.array([[0.0, 0.0, -1.0], [0.0, 0.0, 1.0]])
    buf.add_imagined(np.zeros((2, 3)), np.ones((2, 3)), acts, np.full(2, -1.0), np.zeros(2))
    batch = buf.sample(400)
    np.testing.assert_allclose(
        batch.discounts.numpy(), buf.discounts(batch.actions.numpy()), rtol=1e-6
    )
    imagined = batch.rewards[:, 0] == -1
    assert imagined.sum() == 200
    got = sorted(set(batch.discounts[imagined, 0].tolist()))
    np.testing.assert_allclose(got, [0.9**2.5, 0.9**0.5], rtol=1e-6)  # holds of 10 and 2


def test_without_a_hold_range_samples_carry_no_discounts():
    buf = TimedReplayBuffer(100, OBS, ACT, device="cpu", gamma=0.5)
    buf.add(np.zeros((1, 3)), np.zeros((1, 3)), np.zeros((1, 2)), np.ones(1), np.zeros(1), [{}])
    assert getattr(buf.sample(4), "discounts", None) is None  # SAC uses its own gamma
    np.testing.assert_allclose(buf.discounts(np.zeros((2, 2))), [[0.5], [0.5]])


def test_timed_discounts_refuse_old_sb3_and_bad_settings(monkeypatch):
    import agents.replay

    with pytest.raises(ValueError, match="default_substeps >= 1"):
        TimedReplayBuffer(10, OBS, ACT, device="cpu", self_timed=(1, 4), default_substeps=0)

    monkeypatch.setattr(agents.replay, "ReplayBufferSamples", OldSamples)
    with pytest.raises(ValueError, match="stable-baselines3 >= 2.7"):
        TimedReplayBuffer(10, OBS, ACT, device="cpu", self_timed=(1, 4))


def test_sac_bootstraps_with_the_sampled_discounts():
    """SAC's critic target reads ``discounts``: a batch carrying SAC's own gamma trains exactly
    as one without, and a batch carrying zero discounts trains differently."""
    import gymnasium as gym
    from stable_baselines3 import SAC
    from stable_baselines3.common.logger import configure

    def critic_after_one_step(discount):
        agent = SAC(
            "MlpPolicy",
            gym.make("Pendulum-v1"),
            policy_kwargs={"net_arch": [8]},
            buffer_size=64,
            learning_starts=0,
            seed=0,
            device="cpu",
        )
        rng = np.random.default_rng(0)
        for _ in range(32):
            agent.replay_buffer.add(
                rng.normal(size=(1, 3)),
                rng.normal(size=(1, 3)),
                rng.uniform(-1, 1, (1, 1)),
                rng.normal(size=1),
                np.zeros(1),
                [{}],
            )
        agent.set_logger(configure(None, []))
        if discount is not None:
            sample = agent.replay_buffer.sample
            agent.replay_buffer.sample = lambda n, env=None: sample(n, env)._replace(
                discounts=torch.full((n, 1), discount)
            )
        torch.manual_seed(0)
        np.random.seed(0)
        agent.train(gradient_steps=1, batch_size=16)
        return torch.cat([p.flatten() for p in agent.critic.parameters()])

    plain = critic_after_one_step(None)
    torch.testing.assert_close(critic_after_one_step(0.99), plain)  # SAC's default gamma
    assert not torch.allclose(critic_after_one_step(0.0), plain)
