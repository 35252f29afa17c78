import gymnasium as gym
import numpy as np
import pytest
from gymnasium.wrappers import RecordEpisodeStatistics

from envs import (
    EnvSpec,
    Incline,
    IrregularTiming,
    ResetNoise,
    TrajectoryRecorder,
    make_env,
    mujoco_base,
    set_physics_state,
)


def rollout(env, steps, seed, action_seed=0):
    rng = np.random.default_rng(action_seed)
    obs, info = env.reset(seed=seed)
    out = {"obs": [obs], "t": [info["t"]], "dt": [], "sub": [], "rew": [], "act": [], "info": []}
    for _ in range(steps):
        a = rng.uniform(-1, 1, size=env.action_space.shape).astype(np.float32)
        obs, r, term, trunc, info = env.step(a)
        for k, v in (
            ("obs", obs),
            ("t", info["t"]),
            ("dt", info["dt"]),
            ("sub", info["substeps"]),
            ("rew", r),
            ("act", a),
            ("info", info),
        ):
            out[k].append(v)
        if term or trunc:
            break
    return out


@pytest.mark.parametrize("env_id", ["Hopper-v5", "Walker2d-v5"])
def test_time_matches_mujoco_and_substeps(env_id):
    env = IrregularTiming(gym.make(env_id), "uniform:1-7")
    base = mujoco_base(env)
    rng = np.random.default_rng(1)
    _, info = env.reset(seed=0)
    assert info["t"] == 0.0
    t_prev = 0.0
    for _ in range(30):
        _, _, term, _, info = env.step(rng.uniform(-1, 1, 3 if env_id == "Hopper-v5" else 6))
        assert info["t"] == base.data.time
        assert 1 <= info["substeps"] <= 7
        assert info["dt"] == pytest.approx(info["substeps"] * base.model.opt.timestep, abs=1e-15)
        assert info["t"] - t_prev == pytest.approx(info["dt"], abs=1e-12)
        assert base.frame_skip == 4  # restored after each step
        t_prev = info["t"]
        if term:
            break


def test_seed_reproduces_episode_and_timing():
    env = IrregularTiming(gym.make("Hopper-v5"), "geometric:0.3:10")
    a, b = rollout(env, 25, seed=7), rollout(env, 25, seed=7)
    c = rollout(env, 25, seed=8)
    assert a["sub"] == b["sub"] and np.array_equal(np.array(a["obs"]), np.array(b["obs"]))
    assert a["sub"] != c["sub"]


def test_reward_is_the_envs_own_over_the_held_interval():
    env = IrregularTiming(gym.make("Hopper-v5"), "uniform:1-7")
    base = mujoco_base(env)
    env.reset(seed=0)
    for _ in range(10):
        x0 = base.data.qpos[0]
        a = np.full(3, 0.3)
        _, r, term, _, info = env.step(a)
        vx = (base.data.qpos[0] - x0) / info["dt"]
        assert info["x_velocity"] == pytest.approx(vx)
        assert r == pytest.approx(vx + 1.0 - 1e-3 * float(a @ a))
        if term:
            break


def test_recorder_records_what_the_env_returned():
    env = TrajectoryRecorder(IrregularTiming(gym.make("Hopper-v5"), "uniform:1-7"))
    out = rollout(env, 400, seed=5)
    env.reset(seed=6)  # a reset closes nothing new: the episode already ended
    assert len(env.episodes) == 1
    ep = env.episodes[0]
    assert np.array_equal(ep.obs, np.array(out["obs"]))
    assert np.array_equal(ep.t, np.array(out["t"]))
    assert np.array_equal(ep.actions, np.array(out["act"]))
    assert np.array_equal(ep.rewards, np.array(out["rew"]))
    assert ep.terminated and not ep.truncated and ep.seed == 5
    # Hopper-v5 obs = qpos[1:] ++ clip(qvel, -10, 10)
    assert np.allclose(ep.obs, np.concatenate([ep.qpos[:, 1:], np.clip(ep.qvel, -10, 10)], 1))
    assert ep.actions.shape == (len(ep) - 1, 3) and ep.qpos.shape == (len(ep), 6)


@pytest.mark.parametrize("env_id", ["Hopper-v5", "Walker2d-v5"])
def test_restored_state_replays_the_recorded_observations(env_id):
    spec = EnvSpec(env_id, timing="uniform:1-7", max_episode_steps=60)
    rec = make_env(spec, record=True)
    rng = np.random.default_rng(0)
    rec.reset(seed=11)
    while True:
        _, _, term, trunc, _ = rec.step(rng.uniform(-1, 1, rec.action_space.shape))
        if term or trunc:
            break
    ep = rec.episodes[0]
    fresh = make_env(spec)  # an IrregularTiming env that has never seen this episode
    fresh.reset(seed=999)
    for i in range(len(ep) - 1):
        obs0 = set_physics_state(fresh, ep.qpos[i], ep.qvel[i], ep.t[i])
        np.testing.assert_allclose(obs0, ep.obs[i], atol=1e-12)
        obs1, r, *_, info = fresh.step_dt(ep.actions[i], ep.dt[i])
        # qpos/qvel omit MuJoCo's solver warm start, which moves results by ~1e-8
        np.testing.assert_allclose(obs1, ep.obs[i + 1], rtol=1e-6, atol=1e-6)
        assert r == pytest.approx(ep.rewards[i], rel=1e-6, abs=1e-9)
        assert info["t"] == pytest.approx(ep.t[i + 1], abs=1e-12)


def test_step_dt_rejects_bad_durations():
    env = IrregularTiming(gym.make("Hopper-v5"))
    env.reset(seed=0)
    for bad in (-0.008, 0.0, float("nan"), float("inf")):
        with pytest.raises(ValueError, match="positive finite"):
            env.step_dt(np.zeros(3), bad)
    with pytest.raises(ValueError, match="whole multiple"):
        env.step_dt(np.zeros(3), 0.003)
    with pytest.raises(ValueError, match="substeps must be from 1 to 4000"):
        env.step_dt(np.zeros(3), 1e9 * 0.002)  # past mj_step's step count
    with pytest.raises(TypeError, match="substeps must be a whole number, got 2.5"):
        env.step_substeps(np.zeros(3), 2.5)


def test_misuse_is_named():
    with pytest.raises(TypeError, match="timing must be a spec string"):
        IrregularTiming(gym.make("Hopper-v5"), None)
    with pytest.raises(ValueError, match="CartPole-v1 is not a Gymnasium MuJoCo env"):
        make_env(EnvSpec("CartPole-v1"))
    with pytest.raises(ValueError, match="Hopper-v5 does not take the env_kwargs \\['bogus'\\]"):
        make_env(EnvSpec("Hopper-v5", env_kwargs={"bogus": 1.0}))


def test_composes_with_gymnasium_wrappers():
    env = RecordEpisodeStatistics(
        TrajectoryRecorder(
            IrregularTiming(gym.make("Hopper-v5", max_episode_steps=5), "uniform:1-3")
        )
    )
    env.reset(seed=0)
    for _ in range(5):
        _, _, term, trunc, info = env.step(np.zeros(3))
    assert trunc and not term and info["episode"]["l"] == 5
    ep = env.get_wrapper_attr("episodes")[0]
    assert ep.truncated and len(ep) == 6


def test_reset_noise_and_incline():
    base_env = gym.make("Hopper-v5")
    env = ResetNoise(base_env, 0.1)
    obs, _ = env.reset(seed=0)
    mj = mujoco_base(env)
    dev = np.abs(mj.data.qpos - mj.init_qpos)
    assert dev.max() > 0.02  # far beyond Hopper's own 5e-3 reset noise
    np.testing.assert_allclose(obs, mj._get_obs())
    inc = Incline(gym.make("Walker2d-v5"), 10.0)
    g = mujoco_base(inc).model.opt.gravity
    assert np.linalg.norm(g) == pytest.approx(9.81)
    assert g[0] == pytest.approx(-9.81 * np.sin(np.radians(10)))
    with pytest.raises(ValueError, match="incline angle"):
        Incline(gym.make("Hopper-v5"), 95)
    with pytest.raises(TypeError, match="not a Gymnasium MuJoCo env"):
        IrregularTiming(gym.make("CartPole-v1"))
