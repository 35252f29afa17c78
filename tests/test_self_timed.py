"""The self-timed env: the agent's last action component picks how long to hold the rest."""

import numpy as np
import pytest

from envs import EnvSpec, SelfTimed, make_env, make_self_timed
from envs.self_timed import hold_substeps, timed_reward

SPEC = EnvSpec("Hopper-v5", env_kwargs={"terminate_when_unhealthy": False})


def _episode(env, action, seed=0):
    env.reset(seed=seed)
    total, n = 0.0, 0
    while True:
        _, r, term, trunc, info = env.step(action)
        total, n = total + r, n + 1
        if term or trunc:
            return total, n, info


def test_holding_the_default_step_gives_the_fixed_step_return_exactly():
    env = make_self_timed(SPEC, (1, 15))
    u = -1 + 2 * (4 - 1) / 14  # 4 substeps: Hopper-v5's own frame_skip
    assert env.hold(u) == 4
    a = np.array([0.3, -0.2, 0.1], dtype=np.float32)
    timed, n, info = _episode(env, np.append(a, np.float32(u)))
    fixed, m, _ = _episode(make_env(SPEC), a)
    assert n == m == 1000 and info["elapsed"] == pytest.approx(8.0)
    assert timed == fixed


def test_longer_holds_cover_the_same_time_in_fewer_decisions_and_the_recorder_sees_them():
    env = make_self_timed(SPEC, (1, 15), record=True)
    _, n, info = _episode(env, np.array([0.0, 0.0, 0.0, 1.0]))
    assert n == 267 and info["elapsed"] == pytest.approx(8.0)  # 266 x 15 substeps + one of 10
    ep = env.env.episodes[-1]
    assert ep.truncated and not ep.terminated and ep.actions.shape == (267, 3)
    assert ep.t[-1] == pytest.approx(8.0)
    assert np.allclose(np.diff(ep.t)[:-1], 15 * 0.002) and np.diff(ep.t)[-1] == pytest.approx(0.02)


def test_decision_cost_and_time_scaling_of_the_reward():
    plain = make_self_timed(SPEC, (2, 8))
    priced = make_self_timed(SPEC, (2, 8), decision_cost=0.5)
    act = np.array([0.1, 0.0, -0.1, 1.0])
    for e in (plain, priced):
        e.reset(seed=3)
    r0, r1 = plain.step(act)[1], priced.step(act)[1]
    assert r1 == pytest.approx(r0 - 0.5)
    fixed = make_env(SPEC)
    fixed.reset(seed=3)
    r_fixed = fixed.get_wrapper_attr("step_substeps")(act[:3], 8)[1]
    assert r0 == pytest.approx(r_fixed * 8 / 4)  # the rate over 8 substeps, per default step


def test_the_timed_reward_is_the_rate_over_the_interval_minus_the_cost():
    got = timed_reward(np.array([1.0, 2.0]), np.array([0.004, 0.016]), 0.008, 0.25)
    assert got.tolist() == [0.5 - 0.25, 4.0 - 0.25]


def test_an_env_without_step_dt_or_a_clock_is_named():
    import gymnasium as gym

    with pytest.raises(ValueError, match="needs an env with step_dt"):
        SelfTimed(gym.make("Hopper-v5"))
    with pytest.raises(ValueError, match=r"got \(2, 2\)"):
        make_self_timed(SPEC).step(np.zeros((2, 2)))  # not the action's shape


def test_hold_mapping_clips_and_refuses_nan():
    assert hold_substeps(np.array([-5.0, -1.0, 0.0, 1.0, 5.0]), 2, 10).tolist() == [2, 2, 6, 10, 10]
    with pytest.raises(ValueError, match="timing component"):
        hold_substeps(np.array([np.nan]), 1, 15)


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"substeps": (0, 4)}, "1 <= low <= high"),
        ({"substeps": (5, 4)}, "1 <= low <= high"),
        ({"horizon_s": -1.0}, "horizon_s"),
        ({"decision_cost": float("nan")}, "decision_cost"),
    ],
)
def test_bad_settings_are_named(kwargs, message):
    with pytest.raises(ValueError, match=message):
        SelfTimed(make_env(SPEC), **kwargs)


def test_bad_actions_and_specs_are_named():
    env = make_self_timed(SPEC)
    env.reset(seed=0)
    with pytest.raises(ValueError, match=r"shape \(4,\)"):
        env.step(np.zeros(3))
    with pytest.raises(ValueError, match="timing must be 'fixed'"):
        make_self_timed(SPEC.replace(timing="uniform:1-3"))
