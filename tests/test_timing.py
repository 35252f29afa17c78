import numpy as np
import pytest

from envs.timing import TimingSpec


@pytest.mark.parametrize(
    "spec", ["fixed", "fixed:3", "uniform:1-7", "geometric:0.25", "geometric:0.5:6"]
)
def test_spec_round_trips(spec):
    assert str(TimingSpec.parse(spec)) == spec


@pytest.mark.parametrize(
    "spec, msg",
    [
        ("uniform:3", "malformed"),
        ("uniform:5-2", "low <= high"),
        ("geometric:0", "p must be"),
        ("poisson:3", "unknown timing"),
        ("fixed:0", ">= 1"),
        ("fixed:x", "malformed"),
    ],
)
def test_bad_specs_name_the_problem(spec, msg):
    with pytest.raises(ValueError, match=msg):
        TimingSpec.parse(spec)


def test_samples_follow_the_distribution():
    rng = np.random.default_rng(0)
    uni = TimingSpec.parse("uniform:2-5")
    u = np.array([uni.sample(rng, 4) for _ in range(4000)])
    assert set(np.unique(u)) == {2, 3, 4, 5}
    assert abs(u.mean() - uni.mean(4)) < 0.06
    geo = TimingSpec.parse("geometric:0.3:8")
    g = np.array([geo.sample(rng, 4) for _ in range(20000)])
    assert g.min() >= 1 and g.max() <= 8
    assert abs(g.mean() - geo.mean(4)) < 0.05
    assert TimingSpec.parse("fixed").sample(rng, 4) == 4
