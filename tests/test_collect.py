import numpy as np
import pytest

from worldmodel.collect import CollectConfig, collect, episode_seeds


def _same(a, b):
    return len(a) == len(b) and all(
        np.array_equal(x.obs, y.obs)
        and np.array_equal(x.t, y.t)
        and np.array_equal(x.actions, y.actions)
        and x.seed == y.seed
        for x, y in zip(a, b)
    )


def test_same_seed_same_dataset_whatever_the_worker_count():
    cfg = dict(
        env="Hopper-v5",
        episodes=5,
        timing="geometric:0.3:8",
        seed=11,
        max_episode_steps=30,
        progress=False,
    )
    one = collect(CollectConfig(**cfg, workers=1))
    two = collect(CollectConfig(**cfg, workers=2))
    assert _same(one, two)
    other = collect(CollectConfig(**{**cfg, "seed": 12}, workers=1))
    assert not _same(one, other)
    assert len(set(episode_seeds(11, 5).tolist())) == 5


def test_zero_policy_is_passive_and_walker_works():
    d = collect(
        CollectConfig(
            env="Walker2d-v5",
            episodes=2,
            policy="zero",
            timing="fixed",
            max_episode_steps=15,
            progress=False,
        )
    )
    assert d.act_dim == 6 and d.obs_dim == 17
    assert all((ep.actions == 0).all() for ep in d)
    assert all(np.allclose(ep.dt, 0.008) for ep in d)
    assert d.metadata["policy"] == {"name": "zero"}


@pytest.mark.parametrize(
    "change, message",
    [
        ({"episodes": 0}, "episodes must be"),
        ({"workers": 0}, "workers must be"),
        ({"env": "Nope-v9"}, "unknown env"),
        ({"timing": "uniform:9"}, "malformed timing"),
        ({"policy": "smart"}, "unknown policy"),
    ],
)
def test_bad_settings_fail_before_collecting(change, message):
    with pytest.raises(ValueError, match=message):
        collect(CollectConfig(**{"episodes": 1, "progress": False, **change}))


def test_collecting_into_a_directory_is_refused_before_any_episode(tmp_path):
    from worldmodel.collect import collect_to_file

    with pytest.raises(IsADirectoryError, match="is a directory; give a file path"):
        collect_to_file(CollectConfig(episodes=1), tmp_path)
