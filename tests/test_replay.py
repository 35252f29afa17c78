"""The mixed real/imagined replay buffer: batch composition, FIFO ring, bad input."""

import numpy as np
import pytest
from gymnasium import spaces

from agents.replay import MixedReplayBuffer

OBS = spaces.Box(-np.inf, np.inf, (3,), np.float64)
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
    from typing import NamedTuple

    import stable_baselines3.common.buffers as sb3_buffers
    import torch

    import agents.replay

    class OldSamples(NamedTuple):  # stable_baselines3 2.6's ReplayBufferSamples
        observations: torch.Tensor
        actions: torch.Tensor
        next_observations: torch.Tensor
        dones: torch.Tensor
        rewards: torch.Tensor

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
