"""The private APIs of other libraries that the adapters read (worldmodel/_compat/torchdiffeq.py,
agents/_sb3.py, envs/_gymnasium.py): each test fails naming the installed version when a
release changes what its adapter relies on."""

from __future__ import annotations

import json
import zipfile
from importlib.metadata import version

import gymnasium as gym
import numpy as np
import pytest
import torch

from envs.tasks import TASKS


def _changed(library: str, what: str) -> str:
    return f"{library} {version(library)} changed {what}; update its adapter"


# -- torchdiffeq ---------------------------------------------------------------------------------


def test_torchdiffeq_fixed_grid_solvers_take_grid_constructor_and_perturb():
    import torchdiffeq

    from worldmodel._compat.torchdiffeq import FIXED_SOLVERS

    expected = {"euler", "midpoint", "rk4"}
    assert expected <= FIXED_SOLVERS, _changed(
        "torchdiffeq", f"its fixed-grid solvers: {sorted(FIXED_SOLVERS)} lacks {expected}"
    )
    assert "dopri5" not in FIXED_SOLVERS, _changed("torchdiffeq", "dopri5 into a fixed-grid one")
    seen = []

    def grid(_func, _y0, t):
        seen.append(True)
        return torch.linspace(0.0, 1.0, 5, dtype=t.dtype)

    for method in sorted(FIXED_SOLVERS & expected):
        seen.clear()
        try:
            out = torchdiffeq.odeint(
                lambda t, y: -y,
                torch.ones(1, dtype=torch.float64),
                torch.tensor([0.0, 1.0], dtype=torch.float64),
                method=method,
                options={"grid_constructor": grid, "perturb": True},
            )
        except (TypeError, ValueError) as err:
            pytest.fail(_changed("torchdiffeq", f"the options of {method!r}: {err}"))
        assert seen and torch.isfinite(out).all(), _changed(
            "torchdiffeq", f"how {method!r} uses grid_constructor"
        )


# -- Gymnasium -----------------------------------------------------------------------------------


@pytest.mark.parametrize("env_id", sorted(TASKS))
def test_gymnasium_mujoco_envs_observe_their_state(env_id):
    from envs._gymnasium import observation_of

    env = gym.make(env_id)
    obs, _ = env.reset(seed=0)
    base = env.unwrapped
    assert callable(getattr(base, "_get_obs", None)), _changed(
        "gymnasium", f"{env_id}: MujocoEnv._get_obs is gone"
    )
    np.testing.assert_array_equal(
        observation_of(base), obs, err_msg=_changed("gymnasium", f"{env_id}: _get_obs")
    )
    env.close()


# -- stable-baselines3 ---------------------------------------------------------------------------


@pytest.fixture(scope="module")
def sac(tmp_path_factory):
    from stable_baselines3 import SAC

    agent = SAC(
        "MlpPolicy",
        gym.make("Pendulum-v1"),
        policy_kwargs={"net_arch": [8]},
        buffer_size=64,
        seed=0,
        device="cpu",
    )
    path = tmp_path_factory.mktemp("sb3") / "sac.zip"
    agent.save(path)
    return agent, path


def test_sb3_counters_are_read_and_restored(sac):
    from agents._sb3 import counters, set_counters

    agent, _ = sac
    for name in ("_n_updates", "_episode_num"):
        assert isinstance(getattr(agent, name, None), int), _changed(
            "stable-baselines3", f"the private counter {name} of SAC"
        )
    before = counters(agent)
    set_counters(agent, 7, 3)
    assert counters(agent) == {"n_updates": 7, "episode_num": 3}
    assert agent._n_updates == 7 and agent._episode_num == 3
    set_counters(agent, **before)


def test_sb3_replay_buffer_arrays(sac):
    from agents._sb3 import REPLAY_BUFFER_ARRAYS

    buf = sac[0].replay_buffer
    for name in REPLAY_BUFFER_ARRAYS:
        assert isinstance(getattr(buf, name, None), np.ndarray), _changed(
            "stable-baselines3", f"ReplayBuffer.{name}"
        )
        assert len(getattr(buf, name)) == buf.buffer_size
    for name in ("pos", "full", "buffer_size"):
        assert hasattr(buf, name), _changed("stable-baselines3", f"ReplayBuffer.{name}")


def test_sb3_zip_layout(sac):
    from agents._sb3 import (
        DATA_ENTRY,
        POLICY_ENTRY,
        holds_pickles,
        policy_class,
        space_shape,
    )

    agent, path = sac
    with zipfile.ZipFile(path) as zf:
        names = zf.namelist()
        assert DATA_ENTRY in names and POLICY_ENTRY in names, _changed(
            "stable-baselines3", f"the entries of a saved zip: {names}"
        )
        data = json.loads(zf.read(DATA_ENTRY))
    assert policy_class(data) == ("stable_baselines3.sac.policies", "SACPolicy"), _changed(
        "stable-baselines3", f"how a zip names its policy class: {data.get('policy_class')}"
    )
    for key in ("observation_space", "action_space"):
        assert space_shape(data, key) == getattr(agent, key).shape, _changed(
            "stable-baselines3", f"how a zip stores the {key}'s shape"
        )
    assert not holds_pickles(data.get("policy_kwargs", {})), _changed(
        "stable-baselines3", "how a zip stores plain policy_kwargs"
    )
    assert holds_pickles({"activation_fn": {":serialized:": "..."}})
