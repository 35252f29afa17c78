"""Learning in imagination: the loop runs, imagined data reaches SAC, evaluation is real."""

import json

import gymnasium as gym
import numpy as np
import pytest
import torch

from agents.dyna import evaluate_real, refit_seed, run_dyna
from worldmodel.config import DynaConfig

# small, fast settings: the ensemble at the dyna defaults of 2026-11-26 (the latent-ode, today's
# default model, has its own tests below)
TINY = dict(
    model="mlp-ensemble",
    refit_batch=32,
    steps=200,
    init_steps=100,
    refit_every=100,
    refit_epochs=1,
    refit_steps_per_epoch=3,
    imagine_every=50,
    rollouts=20,
    rollout_length=2,
    eval_every=100,
    eval_episodes=1,
    gradient_steps=2,  # SAC's updates dominate a loop: at the defaults (5 of 256) ~4x as long
    batch_size=64,
)


@pytest.mark.parametrize("use_model", [True, False])
def test_dyna_loop_end_to_end(tmp_path, use_model):
    cfg = DynaConfig(**TINY, use_model=use_model, out=tmp_path / "dyna")
    res = run_dyna(cfg)
    assert [s for s, _, _ in res["curve"]] == [100, 200]
    assert (tmp_path / "dyna" / "curve.csv").read_text().startswith("real_steps,mean_real_return")
    if use_model:
        assert res["refits"] == 2 and res["imagined_transitions"] > 0
        rows = (tmp_path / "dyna" / "model.csv").read_text().splitlines()
        assert rows[0].startswith("real_steps,refit,new_episodes,branch_length,model_h1")
        first, second = (r.split(",") for r in rows[1:])
        assert first[:2] == ["100", "0"] and first[4:8] == ["", "", "", ""]  # nothing fitted yet
        assert second[:2] == ["200", "1"]
        assert res["buffer"] == 200  # imagined transitions live in their own ring
        # batches of 20 two-step branches at real steps 100, 150 and 200; a branch ends early
        # only if its imagined hopper falls
        assert 3 * 20 < res["imagined_buffer"] == res["imagined_transitions"] <= 3 * 20 * 2
        # each refit keeps its own data's observation range (a warm start once copied the
        # first fit's, in the first fit's normalised units, into every later refit)
        from worldmodel.train import load

        fits = [load(tmp_path / "dyna" / "model" / f"refit_{i:03d}") for i in (0, 1)]
        assert not torch.equal(fits[0].obs_low, fits[1].obs_low)
        assert not torch.equal(fits[0].obs_high, fits[1].obs_high)
        old = run_dyna(DynaConfig(**TINY, refit_bounds="first", out=tmp_path / "first"))
        assert old["refits"] == 2  # ... as the runs that carried the first fit's range did
        first = [load(tmp_path / "first" / "model" / f"refit_{i:03d}") for i in (0, 1)]
        assert torch.equal(first[0].obs_low, first[1].obs_low)
    else:
        assert res["refits"] == 0 and res["buffer"] == 200 and res["imagined_buffer"] == 0


def test_keep_agents_keeps_one_loadable_policy_per_evaluation(tmp_path):
    from agents.policies import make_policy

    cfg = DynaConfig(**TINY, use_model=False, keep_agents=True, out=tmp_path / "dyna")
    run_dyna(cfg)
    kept = sorted(p.name for p in (tmp_path / "dyna" / "agents").iterdir())
    assert kept == ["step_0000100.zip", "step_0000200.zip"]
    env = gym.make("Hopper-v5")
    obs, _ = env.reset(seed=0)
    first, last = (
        make_policy(str(tmp_path / "dyna" / "agents" / k), env.observation_space, env.action_space)
        for k in kept
    )
    assert not np.allclose(first(obs), last(obs))  # SAC learned in between


def test_dyna_imagines_with_the_latent_ode_under_irregular_timing(tmp_path):
    import json

    cfg = DynaConfig(
        **{**TINY, "model": "latent-ode", "refit_batch": 7},
        timing="uniform:3-5",
        refit_window_starts="any",
        out=tmp_path / "dyna",
    )
    res = run_dyna(cfg)
    assert res["refits"] == 2 and res["imagined_transitions"] > 0
    refit = json.loads((tmp_path / "dyna" / "model" / "refit_001" / "config.json").read_text())
    assert refit["train"]["model"] == "latent-ode" and refit["train"]["batch_size"] == 7
    assert refit["train"]["window_starts"] == "any"
    with pytest.raises(ValueError, match="refit_window_starts must be"):
        DynaConfig(refit_window_starts="ends").check()


def test_branch_length_follows_mbpos_linear_schedule():
    fixed = DynaConfig(rollout_length=3, rollout_length_max=None)
    assert [fixed.branch_length(n) for n in (0, 50_000, 10**6)] == [3, 3, 3]
    grow = DynaConfig(rollout_length=1, rollout_length_max=15, rollout_ramp=(20_000, 100_000))
    got = [grow.branch_length(n) for n in (0, 20_000, 50_000, 60_000, 100_000, 200_000)]
    assert got == [1, 1, 6, 8, 15, 15]


def test_a_schedule_survives_the_checkpoint(tmp_path):
    """The ramp is a tuple here and a list in the saved JSON: resuming must not call that a
    change of settings."""
    out = tmp_path / "dyna"
    cfg = {**TINY, "rollout_length_max": 4, "rollout_ramp": (100, 300)}
    run_dyna(DynaConfig(**cfg, out=out))
    longer = run_dyna(DynaConfig(**{**cfg, "steps": 300}, out=out))
    assert longer["resumed_from"].name == "step_0000200" and longer["refits"] == 3
    rows = (out / "model.csv").read_text().splitlines()[1:]
    assert [r.split(",")[3] for r in rows] == ["2", "3", "4"]  # 2 + 2 * (n - 100) / 200
    assert all(r.split(",")[4] for r in rows[1:])  # the previous fit scored on new episodes


@pytest.mark.parametrize(
    "bad",
    [
        {"gradient_steps": 0},
        {"real_ratio": 1.5},
        {"imagine_every": -1},
        {"window": 2},
        {"rollout_length_max": 1},
        {"rollout_ramp": (5, 5)},
        {"refit_lr": 0.0},
        {"imagined_capacity": 0},
        {"branch_starts": "transitions"},
        {"refit_bounds": "last"},
        {"batch_size": 0},
        {"target_entropy": float("nan")},
        {"agent": "td3"},
    ],
)
def test_dyna_rejects_bad_settings(tmp_path, bad):
    name = next(iter(bad))
    with pytest.raises(ValueError, match=name):
        run_dyna(DynaConfig(**{**TINY, **bad}, out=tmp_path / "dyna"))


def test_evaluation_is_on_the_real_env(tmp_path):
    from stable_baselines3 import SAC

    agent = SAC("MlpPolicy", gym.make("Hopper-v5"), seed=0, device="cpu")
    got = evaluate_real(agent, "Hopper-v5", "fixed", episodes=2, seed=5)
    want = []
    for k in range(2):  # the same deterministic policy on a plain real Hopper-v5
        env = gym.make("Hopper-v5")
        obs, _ = env.reset(seed=5 + k)
        total, done = 0.0, False
        while not done:
            obs, r, term, trunc, _ = env.step(agent.predict(obs, deterministic=True)[0])
            total, done = total + r, term or trunc
        want.append(total)
    np.testing.assert_allclose(got, want)


def test_dyna_resumes_from_its_checkpoint(tmp_path):
    out = tmp_path / "dyna"
    first = run_dyna(DynaConfig(**TINY, out=out))
    assert (out / "checkpoint" / "step_0000200" / "agent.zip").exists()
    assert [p.name for p in (out / "checkpoint").glob("step_*")] == ["step_0000200"]  # old removed

    again = run_dyna(DynaConfig(**TINY, out=out))  # finished: nothing more to do
    assert again["curve"] == first["curve"] and again["refits"] == first["refits"]
    assert again["buffer"] == first["buffer"]  # saved after SB3 stored the last step
    saved = json.loads((out / "checkpoint" / "step_0000200" / "state.json").read_text())
    # ... and trained on it: SB3 trains after each step past learning_starts (100)
    assert saved["n_updates"] == (200 - 100) * TINY["gradient_steps"]

    longer = run_dyna(DynaConfig(**{**TINY, "steps": 300}, out=out))
    assert longer["resumed_from"].name == "step_0000200"
    assert longer["curve"][:2] == first["curve"] and longer["curve"][2][0] == 300
    assert longer["refits"] == 3 and longer["imagined_transitions"] > first["imagined_transitions"]
    assert longer["buffer"] == 300


def test_the_imagined_ring_grows_to_hold_a_batch_and_resumes_grown(tmp_path):
    """A batch of 20 two-step branches is 40 transitions; a ring of 30 would lose the first
    steps of every batch (the MBPO schedule's longest branches at 100k real steps, at the
    defaults), so it grows, and a resumed run gets the grown ring back."""
    out = tmp_path / "dyna"
    first = run_dyna(DynaConfig(**TINY, imagined_capacity=30, out=out))
    assert first["imagined_buffer"] > 30
    z = np.load(out / "checkpoint" / "step_0000200" / "buffer.npz")
    assert int(z["im_capacity"]) == 40 and len(z["im_obs"]) == first["imagined_buffer"]
    longer = run_dyna(DynaConfig(**{**TINY, "steps": 300}, imagined_capacity=30, out=out))
    assert longer["resumed_from"].name == "step_0000200"
    assert longer["imagined_buffer"] == 40  # full at its grown size


def test_a_run_stopped_after_its_checkpoint_resumes_over_its_later_refits(tmp_path):
    import shutil

    out = tmp_path / "dyna"
    run_dyna(DynaConfig(**TINY, out=out))  # checkpoint at 200 after refits 0 and 1
    models = out / "model"
    # as a run stopped between checkpoints leaves it: refit 2 written, no checkpoint after it
    shutil.copytree(models / "refit_001", models / "refit_002")
    (models / "refit_abc").mkdir()  # not a refit's name: left alone
    before = {
        n: (models / n / "model.safetensors").read_bytes() for n in ("refit_000", "refit_001")
    }
    longer = run_dyna(DynaConfig(**{**TINY, "steps": 300}, out=out))
    assert longer["resumed_from"].name == "step_0000200" and longer["refits"] == 3
    refit = json.loads((models / "refit_002" / "config.json").read_text())
    # refitted by the resumed run, not the leftover (a copy of refit 1)
    assert refit["train"]["seed"] == refit_seed(0, 2) != refit_seed(0, 1)
    for name, weights in before.items():  # the checkpoint's own refits are kept as they were
        assert (models / name / "model.safetensors").read_bytes() == weights
    assert (models / "refit_abc").is_dir()


def test_a_run_stopped_before_its_first_checkpoint_starts_over_its_refits(tmp_path):
    out = tmp_path / "dyna"
    leftover = out / "model" / "refit_000"
    leftover.mkdir(parents=True)
    (leftover / "config.json").write_text("{}")  # what the trainer refuses to overwrite
    res = run_dyna(DynaConfig(**TINY, out=out))
    assert res["resumed_from"] is None and res["refits"] == 2
    assert json.loads((leftover / "config.json").read_text())["train"]["seed"] == refit_seed(0, 0)


def test_a_checkpoint_from_before_a_setting_existed_resumes(tmp_path):
    out = tmp_path / "dyna"
    # what the code did before these were settings (LEGACY_VALUES)
    then = {**TINY, "refit_lr": 1e-3, "refit_mode": "both", "rollout_length_max": None}
    run_dyna(DynaConfig(**then, out=out))
    state_file = out / "checkpoint" / "step_0000200" / "state.json"
    state = json.loads(state_file.read_text())
    for key in ("refit_lr", "refit_mode", "rollout_length_max", "rollout_ramp", "max_spread"):
        del state["config"][key]  # as the code before them saved it
    for key in ("model_rows", "fitted_episodes"):
        del state[key]
    state_file.write_text(json.dumps(state))
    longer = run_dyna(DynaConfig(**{**then, "steps": 300}, out=out))
    assert longer["resumed_from"].name == "step_0000200" and longer["refits"] == 3
    # today's defaults are not what such a checkpoint was made with
    with pytest.raises(ValueError, match="refit_lr: 0.001 there, 0.003 now"):
        run_dyna(DynaConfig(**{**TINY, "steps": 400}, out=out))


def test_dyna_resume_refuses_other_settings_and_broken_pointers(tmp_path):
    out = tmp_path / "dyna"
    run_dyna(DynaConfig(**TINY, out=out))
    with pytest.raises(ValueError, match="real_ratio: 0.1 there, 0.5 now"):
        run_dyna(DynaConfig(**{**TINY, "real_ratio": 0.5, "steps": 300}, out=out))
    (out / "checkpoint" / "latest.json").write_text('{"dir": "step_0000150"}')
    with pytest.raises(ValueError, match="step_0000150"):
        run_dyna(DynaConfig(**TINY, out=out))


def fake_core(starts=None, dts=None, terminate=True):
    """An ImaginationCore stand-in recording where branches start and the dts they step by."""

    class Core:
        def __init__(self, model):
            pass

        def encode(self, contexts, gen):
            if starts is not None:
                starts.extend(float(c.obs[-1, 0]) for c in contexts)

        def step(self, state, obs, actions, dt):
            if dts is not None:
                dts.append(np.array(dt))
            n = len(obs)
            return state, obs, np.zeros(n), np.full(n, terminate), np.zeros(n, bool), {}

    return Core


def _episode(n, terminated, base):  # observation = base + step index
    from worldmodel.data import Episode

    return Episode(
        t=np.arange(n) * 0.01,
        obs=base + np.arange(n)[:, None] * np.ones((1, 2)),
        actions=np.zeros((n - 1, 1), np.float32),
        rewards=np.zeros(n - 1),
        qpos=np.zeros((n, 0)),
        qvel=np.zeros((n, 0)),
        terminated=terminated,
        truncated=not terminated,
    )


class _Agent:  # what imagine() reads of SB3's agent
    stored: list = []  # what add_imagined got (a test sets its own list)

    class replay_buffer:
        imagined_capacity = 10**6  # holds any batch: never grown

        @staticmethod
        def add_imagined(obs, next_obs, actions, reward, done):
            _Agent.stored.append(actions)

    class policy:  # an action space of [-2, 2]: SB3 stores actions as its [-1, 1] image
        @staticmethod
        def scale_action(actions):
            return actions / 2.0

    @staticmethod
    def predict(obs, deterministic):
        return np.full((len(obs), 1), 1.5), None


class _Recorder:
    episodes = [_episode(2, True, 10.0), _episode(3, True, 20.0), _episode(2, False, 30.0)]


def test_imagined_branches_never_start_from_a_terminal_real_state(tmp_path, monkeypatch):
    """A terminated episode's last state has no future; a truncated one's does."""
    import agents.dyna as dyna

    starts = []
    monkeypatch.setattr(dyna, "ImaginationCore", fake_core(starts=starts))
    cfg = DynaConfig(out=tmp_path, rollouts=300, rollout_length=1)
    cb = dyna.DynaCallback(cfg, _Recorder(), (1, 0.01))
    cb.model = _Agent()  # what SB3 sets
    cb.imagine()
    assert len(starts) == 300
    # not 11 and 22 (terminal); 31 is the truncated episode's last state: it has a future
    assert set(starts) == {10.0, 20.0, 21.0, 30.0, 31.0}


@pytest.mark.parametrize(
    "rule, shares", [("states", [1, 1, 1, 1, 1]), ("episodes", [2, 1, 1, 1, 1])]
)
def test_branches_start_uniformly_over_real_states_or_episodes(tmp_path, monkeypatch, rule, shares):
    """``states``: every state with a future alike (MBPO); ``episodes``: the older rule, which
    gives the 2-observation terminated episode's one start a third of all branches."""
    import agents.dyna as dyna

    starts = []
    monkeypatch.setattr(dyna, "ImaginationCore", fake_core(starts=starts))
    cfg = DynaConfig(out=tmp_path, rollouts=6000, rollout_length=1, branch_starts=rule)
    cb = dyna.DynaCallback(cfg, _Recorder(), (1, 0.01))
    cb.model = _Agent()
    cb.imagine()
    counts = [starts.count(v) for v in (10.0, 20.0, 21.0, 30.0, 31.0)]
    assert sum(counts) == 6000  # no branch from a terminal state (11.0, 22.0)
    expected = 6000 * np.array(shares) / (sum(shares) if rule == "states" else 6)
    assert np.allclose(counts, expected, rtol=0.1)


def test_imagined_actions_are_stored_as_sb3_stores_real_ones(tmp_path, monkeypatch):
    import agents.dyna as dyna

    monkeypatch.setattr(dyna, "ImaginationCore", fake_core())
    monkeypatch.setattr(_Agent, "stored", [])
    cb = dyna.DynaCallback(
        DynaConfig(out=tmp_path, rollouts=8, rollout_length=1), _Recorder(), (1, 0.01)
    )
    cb.model = _Agent()
    cb.imagine()
    assert np.all(np.concatenate(_Agent.stored) == 0.75)  # the policy's 1.5 in [-2, 2]


@pytest.mark.parametrize(
    "timing, allowed",
    [("fixed", {0.008}), ("fixed:2", {0.004}), ("uniform:1-3", {0.002, 0.004, 0.006})],
)
def test_imagined_steps_last_as_long_as_the_real_runs_steps(tmp_path, monkeypatch, timing, allowed):
    """Branches step by the run's own timing, drawn per branch and step, not the env's dt."""
    import agents.dyna as dyna

    dts = []
    monkeypatch.setattr(dyna, "ImaginationCore", fake_core(dts=dts, terminate=False))
    cfg = DynaConfig(out=tmp_path, rollouts=200, rollout_length=3, timing=timing)
    cb = dyna.DynaCallback(cfg, _Recorder(), (4, 0.002))  # Hopper's clock
    cb.model = _Agent()
    cb.imagine()
    drawn = np.concatenate(dts)
    assert len(dts) == 3 and drawn.shape == (600,)
    assert set(np.round(drawn, 6)) == allowed  # every allowed interval occurs, nothing else


def test_branches_end_where_the_ensemble_members_disagree(tmp_path):
    loose = run_dyna(DynaConfig(**TINY, max_spread=1e6, out=tmp_path / "loose"))
    tight = run_dyna(DynaConfig(**TINY, max_spread=1e-9, out=tmp_path / "tight"))
    assert loose["truncated_transitions"] == 0 and loose["imagined_transitions"] > 0
    # members of a (barely trained) ensemble always disagree by more than 1e-9: nothing imagined
    assert tight["imagined_transitions"] == 0 and tight["truncated_transitions"] > 0
    with pytest.raises(ValueError, match="max_spread needs a model with members"):
        run_dyna(DynaConfig(**{**TINY, "model": "latent-ode"}, max_spread=0.1, out=tmp_path / "l"))


def test_member_spread_is_zero_for_identical_members():
    import torch

    from worldmodel.models import ModelConfig, make_model

    model = make_model("mlp-ensemble", 3, 1, ModelConfig(ensemble_units=8, ensemble_layers=1))
    s, a, d = torch.randn(5, 3), torch.randn(5, 1), torch.full((5,), 0.01)
    assert (model.member_spread(s, a, d) > 0).all()
    with torch.no_grad():
        for p in model.parameters():
            if p.dim() and p.shape[0] == model.config.ensemble_size:
                p.copy_(p[:1].expand_as(p))
    torch.testing.assert_close(model.member_spread(s, a, d), torch.zeros(5))


def _spy_on_sac(monkeypatch) -> list:
    """The SAC agents ``run_dyna`` makes, as it makes them."""
    import agents.dyna

    made = []

    class Spy(agents.dyna.SAC):
        def __init__(self, *args, **kwargs):
            super().__init__(*args, **kwargs)
            made.append(self)

    monkeypatch.setattr(agents.dyna, "SAC", Spy)
    return made


def test_a_self_timed_agent_learns_in_the_real_env_and_in_imagination(tmp_path, monkeypatch):
    from agents.dyna_checkpoint import latest_checkpoint
    from agents.replay import MixedReplayBuffer
    from envs import EnvSpec
    from envs.self_timed import hold_substeps, timed_reward

    made = _spy_on_sac(monkeypatch)
    cfg = DynaConfig(
        **TINY, self_timed=(2, 10), decision_cost=0.1, timed_discount=True, out=tmp_path / "dyna"
    )
    res = run_dyna(cfg)
    # real and imagined transitions alike discounted over their own interval (dt0: 4 substeps)
    buf = made[0].replay_buffer
    assert isinstance(buf, MixedReplayBuffer) and buf.im_size > 0
    batch = buf.sample(256)
    want = 0.99 ** (hold_substeps(batch.actions[:, -1].numpy(), 2, 10) / 4)
    np.testing.assert_allclose(batch.discounts[:, 0].numpy(), want, rtol=1e-6)
    # each imagined step lasted the hold its action asked for and is scored as SelfTimed scores
    # the real env: the task's reward over that interval, integrated, minus the decision cost
    with np.load(latest_checkpoint(cfg.out) / "buffer.npz") as z:
        obs, nxt, act, rew = z["im_obs"], z["im_next_obs"], z["im_actions"], z["im_rewards"]
    assert act.shape[1] == 4 and len(obs) == res["imagined_transitions"]
    dt = hold_substeps(act[:, -1], 2, 10) * 0.002
    task, _ = EnvSpec("Hopper-v5").task().reward(obs, act[:, :-1], nxt, dt)
    want = timed_reward(task, dt, 0.008, 0.1)
    assert np.allclose(rew[:, 0], want, rtol=1e-4, atol=1e-4)
    assert res["refits"] == 2 and res["imagined_transitions"] > 0
    # the decision rate lies between the longest and the shortest hold's (0.02 s, 0.004 s)
    assert all(50.0 - 1e-6 <= r <= 250.0 + 1e-6 for r in res["decision_rates"])
    header = (tmp_path / "dyna" / "curve.csv").read_text().splitlines()[0]
    assert header.endswith(",decisions_per_s")
    # the refits learned the physical actions (3 of them), not the hold
    from worldmodel.train import load

    model = load(tmp_path / "dyna" / "model" / "refit_001")
    assert model.act_dim == 3
    from envs import env_spec_of

    assert env_spec_of(model).timing == "uniform:2-10"  # the range the agent picked from


def test_a_model_free_self_timed_agent_can_discount_per_interval(tmp_path, monkeypatch):
    from agents.replay import TimedReplayBuffer

    made = _spy_on_sac(monkeypatch)
    cfg = DynaConfig(
        **TINY, use_model=False, self_timed=(1, 15), timed_discount=True, out=tmp_path / "d"
    )
    run_dyna(cfg)
    buf = made[0].replay_buffer
    assert type(buf) is TimedReplayBuffer and buf.self_timed == (1, 15)
    assert buf.gamma == 0.99 and buf.default_substeps == 4  # Hopper-v5's frame_skip
    d = buf.sample(256).discounts[:, 0].numpy()
    assert d.min() < 0.99 < d.max() and d.max() <= 0.99**0.25 + 1e-6  # holds of 1 to 15
    # the hold read back from each stored action is the interval the real env ran
    from agents.dyna_checkpoint import latest_checkpoint
    from envs.self_timed import hold_substeps
    from worldmodel.data import load_dataset

    ran = np.concatenate(
        [np.diff(ep.t) for ep in load_dataset(latest_checkpoint(cfg.out) / "episodes.npz").episodes]
    )
    read = hold_substeps(buf.actions[: buf.pos, 0, -1], 1, 15) * 0.002
    assert len(read) == 200 and 100 < len(ran) <= 200  # the checkpoint's finished episodes
    np.testing.assert_allclose(read[: len(ran)], ran, atol=1e-9)


def test_self_timed_settings_are_checked():
    with pytest.raises(ValueError, match="timing must be 'fixed'"):
        DynaConfig(self_timed=(1, 8), timing="uniform:1-3").check()
    with pytest.raises(ValueError, match="1 <= low <= high"):
        DynaConfig(self_timed=(3, 2)).check()
    with pytest.raises(ValueError, match="decision_cost is used only with self_timed"):
        DynaConfig(decision_cost=0.1).check()
    with pytest.raises(ValueError, match="timed_discount is used only with self_timed"):
        DynaConfig(timed_discount=True).check()
    with pytest.raises(ValueError, match="decision_cost and timed_discount are used only"):
        DynaConfig(decision_cost=0.1, timed_discount=True).check()


def test_a_run_saved_before_the_branch_and_clamp_rules_compares_as_their_older_code():
    from agents.dyna_checkpoint import comparable, config_dict

    added = ("branch_starts", "refit_bounds")
    old = {k: v for k, v in config_dict(DynaConfig()).items() if k not in added}
    assert comparable(old)["branch_starts"] == "episodes"  # what the older code did
    assert comparable(old)["refit_bounds"] == "first"
    assert comparable(config_dict(DynaConfig()))["branch_starts"] == "states"
    model_free = config_dict(DynaConfig(use_model=False))
    assert comparable(model_free) == comparable({**old, "use_model": False})  # irrelevant there


def test_sac_gets_the_batch_size_and_entropy_target(tmp_path, monkeypatch):
    import agents.dyna as dyna

    made = []

    class Recording(dyna.SAC):
        def __init__(self, *args, **kwargs):
            super().__init__(*args, **kwargs)
            made.append(self)

    monkeypatch.setattr(dyna, "SAC", Recording)
    small = {**TINY, "steps": 100, "eval_every": 100}
    del small["batch_size"]
    run_dyna(DynaConfig(**small, batch_size=64, target_entropy=-1.0, out=tmp_path / "a"))
    run_dyna(DynaConfig(**small, out=tmp_path / "b"))
    assert (made[0].batch_size, made[0].target_entropy) == (64, -1.0)
    assert (made[1].batch_size, made[1].target_entropy) == (256, -3.0)  # SB3's: -dim(action)


def test_crossq_learns_in_imagination_and_resumes_with_its_batch_norm_statistics(tmp_path):
    """--agent crossq: sb3-contrib's CrossQ takes SAC's place in the same loop and buffer; its
    checkpoint carries the critics' batch-renorm running statistics, and a resume under
    the other agent is refused naming the setting."""
    from stable_baselines3.common.save_util import load_from_zip_file

    small = {**TINY, "agent": "crossq", "gradient_steps": 1, "critic_units": 64}
    out = tmp_path / "crossq"
    first = run_dyna(DynaConfig(**small, out=out))
    assert first["refits"] == 2 and first["imagined_transitions"] > 0
    assert [s for s, _, _ in first["curve"]] == [100, 200]
    zipped = out / "checkpoint" / "step_0000200" / "agent.zip"
    _, params, _ = load_from_zip_file(str(zipped), device="cpu", load_data=False)
    stats = {k: v for k, v in params["policy"].items() if k.endswith(".ra_mean")}
    assert stats and all(torch.isfinite(v).all() and v.abs().sum() > 0 for v in stats.values())

    longer = run_dyna(DynaConfig(**{**small, "steps": 300}, out=out))
    assert longer["resumed_from"].name == "step_0000200"
    assert longer["curve"][:2] == first["curve"] and longer["curve"][2][0] == 300
    with pytest.raises(ValueError, match="agent: 'crossq' there, 'sac' now"):
        run_dyna(DynaConfig(**{**small, "agent": "sac", "steps": 400}, out=out))


@pytest.mark.parametrize("agent", ["sac", "crossq"])
def test_critic_units_sets_both_critics_widths_and_is_checked(tmp_path, agent):
    """``critic_units`` gives each critic two hidden layers of that width (the actor keeps
    256 x 256); a width below 1 is refused by name."""
    from stable_baselines3.common.save_util import load_from_zip_file

    small = {**TINY, "agent": agent, "gradient_steps": 1, "use_model": False}
    small["steps"] = 100
    out = tmp_path / agent
    run_dyna(DynaConfig(**small, critic_units=32, out=out))
    _, params, _ = load_from_zip_file(str(out / "agent.zip"), device="cpu", load_data=False)
    widths = {
        tuple(v.shape)
        for k, v in params["policy"].items()
        if k.startswith("critic.") and k.endswith("weight") and v.dim() == 2
    }
    assert (32, 32) in widths and not any(256 in w for w in widths)
    actor = [v for k, v in params["policy"].items() if k.startswith("actor.latent_pi")]
    assert any(tuple(v.shape) == (256, 256) for v in actor)
    with pytest.raises(ValueError, match="critic_units must be >= 1"):
        DynaConfig(**small, critic_units=0, out=out).check()


def test_refit_seeds_differ_across_run_seeds_and_refits():
    seeds = {refit_seed(s, r) for s in range(4) for r in range(4)}
    assert len(seeds) == 16  # seed 0's refit 1 is not seed 1's refit 0
    assert refit_seed(2, 3) == refit_seed(2, 3)
