"""The trained model behind the Gymnasium API."""

import gymnasium as gym
import numpy as np
import pytest

import envs  # noqa: F401  (registers worldmodel/Imagined-v0)
from envs.imagined import ImaginedEnv, ImaginedVectorEnv, SB3VecEnv


@pytest.fixture(scope="module", params=["latent-ode", "mlp-ensemble"])
def run(request, tiny_run):
    return tiny_run(request.param)


def rollout(env, seed, steps=20, action_seed=0):
    rng = np.random.default_rng(action_seed)
    obs, _ = env.reset(seed=seed)
    out = [obs]
    for _ in range(steps):
        obs, r, term, trunc, info = env.step(rng.uniform(-1, 1, 3))
        out.append(obs)
        if term or trunc:
            break
    return np.array(out)


def test_spaces_and_registration(run):
    real = gym.make("Hopper-v5")
    env = gym.make("worldmodel/Imagined-v0", run=str(run), max_episode_steps=5)
    assert env.observation_space == real.observation_space and env.action_space == real.action_space
    obs, info = env.reset(seed=0)
    assert obs.dtype == np.float64 and obs.shape == (11,) and info["t"] == 0.0
    for _ in range(5):
        obs, r, term, trunc, info = env.step(np.zeros(3, dtype=np.float32))
        if term:
            break
    assert term or trunc  # TimeLimit truncates at max_episode_steps
    assert np.isfinite(obs).all() and {"reward_forward", "reward_ctrl", "reward_survive"} <= set(
        info
    )


def test_env_checkers_pass(run):
    from gymnasium.utils.env_checker import check_env
    from stable_baselines3.common.env_checker import check_env as sb3_check_env

    check_env(ImaginedEnv(run), skip_render_check=True)
    sb3_check_env(ImaginedEnv(run))


def test_seeding_and_deterministic_mode(run):
    env = ImaginedEnv(run)
    a, b, c = rollout(env, 3), rollout(env, 3), rollout(env, 4)
    assert np.array_equal(a, b) and not np.array_equal(a[:1], c[:1])
    det = ImaginedEnv(run, deterministic=True)
    d1 = rollout(det, 3)
    assert np.array_equal(d1, rollout(det, 3))


def test_reward_and_termination_come_from_the_task(run):
    from envs.tasks import get_task

    env = ImaginedEnv(run)
    task = get_task("Hopper-v5")
    obs, _ = env.reset(seed=0)
    for _ in range(10):
        a = np.full(3, 0.5)
        nxt, r, term, _, info = env.step(a)
        want, terms = task.reward(obs[None], a[None], nxt[None], np.array([env.dt]))
        assert r == pytest.approx(float(want[0]))
        assert term == bool(task.terminated(obs[None], a[None], nxt[None], np.array([env.dt]))[0])
        obs = nxt
        if term:
            break


def test_context_option_and_irregular_dt(run, hopper_dataset):
    ep = hopper_dataset[0]
    env = ImaginedEnv(run, timing="uniform:1-7")
    obs, info = env.reset(
        seed=0, options={"context": {"t": ep.t[:5], "obs": ep.obs[:5], "actions": ep.actions[:4]}}
    )
    np.testing.assert_array_equal(obs, ep.obs[4])
    assert info["t"] == pytest.approx(ep.t[4])
    dts = {round(env.step(np.zeros(3))[-1]["dt"], 6) for _ in range(15)}
    assert dts <= {round(k * 0.002, 6) for k in range(1, 8)} and len(dts) > 1
    with pytest.raises(ValueError, match="context obs has shape"):
        env.reset(
            options={"context": {"t": [0.0], "obs": np.zeros((1, 5)), "actions": np.zeros((0, 3))}}
        )


def test_a_model_of_other_action_dims_is_refused_by_name(run):
    from worldmodel import load, make_model

    real = load(run)
    other = make_model(real.name, real.obs_dim, 2, real.config)  # Hopper-v5 has 3 actions
    other.env_id, other.run_config = real.env_id, real.run_config
    with pytest.raises(ValueError, match="model actions have 2 dims, Hopper-v5 has \\(3,\\)"):
        ImaginedEnv(model=other)


def test_guards(run):
    env = ImaginedEnv(run)
    env.reset(seed=0)
    for bad in (-0.01, 0.0, float("nan"), float("inf")):
        with pytest.raises(ValueError, match="dt must be a positive finite"):
            env.step_dt(np.zeros(3), bad)
    with pytest.raises(ValueError, match="action has shape \\(2,\\), expected \\(3,\\)"):
        env.step(np.zeros(2))
    with pytest.raises(ValueError, match="action has shape \\(1, 3\\), expected \\(3,\\)"):
        env.step(np.zeros((1, 3)))
    venv = ImaginedVectorEnv(run, num_envs=2)
    venv.reset(seed=0)
    with pytest.raises(ValueError, match="shape \\(3,\\), expected \\(2, 3\\) \\(2 envs x 3\\)"):
        venv.step(np.zeros(3))
    with pytest.raises(ValueError, match="non-finite"):
        env.step(np.array([0.0, np.nan, 0.0]))
    env.step(np.array([5.0, -5.0, 0.0]))  # clipped by default
    strict = ImaginedEnv(run, clip_actions=False)
    strict.reset(seed=0)
    with pytest.raises(ValueError, match="outside"):
        strict.step(np.array([5.0, 0.0, 0.0]))


def test_diverging_model_ends_the_episode_without_nan(run):
    env = ImaginedEnv(run)
    obs, _ = env.reset(seed=0)
    model = env.core.model
    real_step = model.step
    model.step = lambda s, a, d: tuple(x * float("nan") for x in real_step(s, a, d))
    if hasattr(model, "sample_step"):
        real_sample = model.sample_step
        model.sample_step = lambda s, a, d, g=None: tuple(
            x * float("nan") for x in real_sample(s, a, d, g)
        )
    nxt, r, term, trunc, info = env.step(np.zeros(3))
    assert term and info["model_diverged"] and np.array_equal(nxt, obs) and r == 0.0


def test_vector_env_equals_single_envs(run):
    n, steps = 4, 12
    venv = ImaginedVectorEnv(run, num_envs=n, timing="uniform:1-7", max_episode_steps=1000)
    rng = np.random.default_rng(0)
    actions = rng.uniform(-1, 1, size=(steps, n, 3))
    vobs, _ = venv.reset(seed=10)
    vtraj, vdone = [vobs], []
    for k in range(steps):
        o, r, te, tr, info = venv.step(actions[k])
        vtraj.append(o)
        vdone.append(te | tr)
    for i in range(n):
        env = ImaginedEnv(run, timing="uniform:1-7")
        obs, _ = env.reset(seed=10 + i)
        np.testing.assert_allclose(obs, vtraj[0][i])
        for k in range(steps):
            obs, r, term, trunc, _ = env.step(actions[k, i])
            if vdone[k][i]:
                break  # the vector env has auto-reset this one
            np.testing.assert_allclose(obs, vtraj[k + 1][i], rtol=1e-5, atol=1e-5)


def test_single_env_is_a_batch_of_one_row(run):
    """Both envs step through one ImaginedBatch, so a single env and a vector env of one give
    the same numbers, bit for bit (time and irregular dt included)."""
    env = ImaginedEnv(run, timing="uniform:1-7")
    venv = ImaginedVectorEnv(run, num_envs=1, timing="uniform:1-7", max_episode_steps=1000)
    assert env.batch.n == 1 and venv.batch.n == 1
    obs, _ = env.reset(seed=5)
    vobs, _ = venv.reset(seed=5)
    np.testing.assert_array_equal(obs, vobs[0])
    for a in np.random.default_rng(0).uniform(-1, 1, size=(10, 3)):
        obs, r, term, _, info = env.step(a)
        vobs, vr, vterm, _, vinfo = venv.step(a[None])
        assert (r, term, info["t"], info["dt"]) == (vr[0], vterm[0], vinfo["t"][0], vinfo["dt"][0])
        if term:
            break
        np.testing.assert_array_equal(obs, vobs[0])


def test_vector_autoreset_and_sb3_adapter(run):
    venv = ImaginedVectorEnv(run, num_envs=3, max_episode_steps=4)
    venv.reset(seed=0)
    for _ in range(4):
        obs, r, te, tr, info = venv.step(np.zeros((3, 3)))
    assert (te | tr).all() and "final_obs" in info and info["_final_obs"].all()
    assert venv.metadata["autoreset_mode"].name == "SAME_STEP"
    sb3 = SB3VecEnv(ImaginedVectorEnv(run, num_envs=2, max_episode_steps=3))
    sb3.seed(1)
    sb3.reset()
    for _ in range(3):
        sb3.step_async(np.zeros((2, 3)))
        obs, rew, dones, infos = sb3.step_wait()
    assert dones.all() and all("terminal_observation" in i for i in infos)


@pytest.mark.parametrize("algo", ["PPO", "SAC"])
def test_sb3_agents_learn_in_imagination(run, algo):
    import stable_baselines3 as sb3

    kw = (
        {"n_steps": 64, "batch_size": 32, "n_epochs": 1}
        if algo == "PPO"
        else {"learning_starts": 50, "batch_size": 32}
    )
    for env in (ImaginedEnv(run), SB3VecEnv(ImaginedVectorEnv(run, num_envs=4))):
        agent = getattr(sb3, algo)(
            "MlpPolicy", env, seed=0, device="cpu", policy_kwargs={"net_arch": [16, 16]}, **kw
        )
        agent.learn(200)
        assert agent.num_timesteps >= 200


def test_render_draws_the_imagined_state(run):
    env = ImaginedEnv(run, render_mode="rgb_array", width=64, height=64)
    env.reset(seed=0)
    first = env.render()
    for _ in range(10):
        _, _, term, _, _ = env.step(np.ones(3))
        if term:
            break
    last = env.render()
    assert first.shape == (64, 64, 3) and first.std() > 5 and not np.array_equal(first, last)
    qpos, qvel = env.physics_state()
    assert qpos.shape == (6,) and qvel.shape == (6,)


def test_record_video_writes_an_mp4_of_imagined_episodes(tiny_run, tmp_path):
    """Gymnasium's own RecordVideo (it needs moviepy, a dependency) on the imagined env."""
    import imageio.v3 as iio
    from gymnasium.wrappers import RecordVideo

    env = ImaginedEnv(tiny_run("mlp-ensemble"), render_mode="rgb_array", width=64, height=64)
    env = RecordVideo(env, str(tmp_path), episode_trigger=lambda e: True, disable_logger=True)
    env.reset(seed=0)
    for _ in range(8):
        _, _, term, trunc, _ = env.step(np.zeros(3))
        if term or trunc:
            break
    env.close()
    videos = list(tmp_path.glob("*.mp4"))
    assert len(videos) == 1 and videos[0].stat().st_size > 1000
    frames = iio.imread(videos[0])
    assert frames.shape[0] >= 2 and frames.shape[-1] == 3


def test_bf16_field_stays_close_to_float32_and_is_undone_on_exit(tiny_run):
    import torch

    from worldmodel.models.latent import hidden_precision
    from worldmodel.train import load

    model = load(tiny_run("latent-ode"))
    z = torch.randn(64, model.state_dim)
    a = torch.rand(64, model.act_dim) * 2 - 1
    full = model.field(z, a)
    with hidden_precision(model, torch.bfloat16):
        half = model.field(z, a)
        assert half.dtype == torch.float32  # the output layer and the state update stay fp32
    scale = full.abs().max()
    assert 0 < (half - full).abs().max() < 2e-2 * scale  # really bf16, and close
    torch.testing.assert_close(model.field(z, a), full, rtol=0, atol=0)  # restored


def test_bf16_field_without_hidden_layers_is_its_output_layer():
    import torch

    from worldmodel.models.latent import ActionField, hidden_precision

    field = ActionField(3, 1, units=8, layers=0)  # a linear field
    z, a = torch.randn(4, 3), torch.randn(4, 1)
    with hidden_precision(field, torch.bfloat16):
        torch.testing.assert_close(field(z, a), field.net(torch.cat([z, a], -1)))


def test_bf16_imagination_tracks_float32(tiny_run):
    runs = {
        p: ImaginedEnv(tiny_run("latent-ode"), deterministic=True, precision=p)
        for p in ("fp32", "bf16")
    }
    full, half = (rollout(env, seed=3, steps=10) for env in runs.values())
    assert full.shape == half.shape
    assert 0 < np.abs(half - full).max() < 0.05 * np.abs(full).max()
    with pytest.raises(ValueError, match=r"unknown precision 'fp16'; expected one of \['bf16'"):
        ImaginedEnv(tiny_run("latent-ode"), precision="fp16")
    with pytest.raises(ValueError, match="mlp-ensemble has none"):
        ImaginedEnv(tiny_run("mlp-ensemble"), precision="bf16")


def test_a_self_timed_agent_imagines_at_its_own_holds(run):
    """SelfTimed over the imagined env reads the real env's clock and holds as asked."""
    from envs import SelfTimed
    from envs.self_timed import timed_reward

    env = SelfTimed(ImaginedEnv(run, deterministic=True), (2, 10), horizon_s=0.05)
    assert env.default_substeps == 4 and env.physics_dt == pytest.approx(0.002)
    twin = ImaginedEnv(run, deterministic=True)
    env.reset(seed=3)
    twin.reset(seed=3)
    a = np.array([0.2, -0.1, 0.4])
    for dt, truncated in ((0.02, False), (0.02, False), (0.01, True)):  # the last one cut
        obs, r, _, trunc, info = env.step(np.append(a, 1.0))
        want_obs, want_r, *_ = twin.step_dt(a, dt)
        assert info["dt"] == pytest.approx(dt) and trunc == truncated
        np.testing.assert_allclose(obs, want_obs)
        assert r == pytest.approx(float(timed_reward(want_r, dt, 0.008)))
