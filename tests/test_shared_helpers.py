"""The helpers that replaced repeated code (issue #17 item 4): observation -> physics state, the
default control step, context windows, the CSV writers."""

from __future__ import annotations

import csv

import gymnasium as gym
import numpy as np
import pytest

from envs.mujoco_state import state_from_obs
from envs.wrappers import IrregularTiming, default_dt, physics_state, set_physics_state
from worldmodel.batching import context_window
from worldmodel.io import append_csv, atomic_write_csv


@pytest.mark.parametrize("env_id", ["Hopper-v5", "Swimmer-v5"])
def test_state_from_obs_restores_the_state_it_observes(env_id):
    env = gym.make(env_id)
    obs, _ = env.reset(seed=1)
    qpos, qvel, _ = physics_state(env)
    k = qpos.shape[0] + qvel.shape[0] - obs.shape[0]  # the excluded leading positions
    q, v = state_from_obs(obs, qpos[:k], qpos.shape[0], qvel.shape[0])
    np.testing.assert_allclose(q, qpos, rtol=0, atol=1e-12)
    np.testing.assert_allclose(v, qvel, rtol=0, atol=1e-12)
    np.testing.assert_array_equal(set_physics_state(env, q, v), obs)


def test_default_dt_is_the_envs_own_control_step():
    env = IrregularTiming(gym.make("Hopper-v5"), "uniform:1-7")
    env.reset(seed=0)
    env.step(env.action_space.sample())
    assert default_dt(env) == env.unwrapped.dt == 0.008


def test_context_window_cuts_the_points_up_to_an_index():
    t = np.array([0.0, 0.1, 0.3, 0.4, 0.7])
    obs = np.arange(10.0).reshape(5, 2)
    actions = np.arange(4, dtype=np.float32).reshape(4, 1)
    c = context_window(t, obs, actions, 3, 3)
    np.testing.assert_allclose(c.t, [-0.3, -0.1, 0.0])
    np.testing.assert_array_equal(c.obs, obs[1:4])
    assert c.actions.dtype == np.float64 and c.actions[:, 0].tolist() == [1.0, 2.0]
    short = context_window(t, obs, actions, 1, 5)  # fewer points than asked: from the start
    assert short.t.tolist() == [-0.1, 0.0] and short.actions.shape == (1, 1)


def test_csv_writers(tmp_path):
    path = tmp_path / "table.csv"
    atomic_write_csv(path, [{"a": 1, "b": "x", "extra": 0}, {"a": 2}], ["a", "b"])
    assert path.read_bytes() == b"a,b\r\n1,x\r\n2,\r\n"
    atomic_write_csv(path, [], [])
    assert path.read_bytes() == b""
    atomic_write_csv(path, [{"a": 1}], ["a"], lineterminator="\n")
    assert path.read_text() == "a\n1\n"
    log = tmp_path / "sub" / "log.csv"
    append_csv(log, [{"x": 1, "y": 2}])
    append_csv(log, [{"x": 3, "y": 4}])
    with log.open(newline="") as f:
        assert list(csv.DictReader(f)) == [{"x": "1", "y": "2"}, {"x": "3", "y": "4"}]
