"""benchmarks/sac_step.py: the optimiser variants it times compute what the default does."""

import importlib
import sys
from pathlib import Path

import pytest

BENCHMARKS = Path(__file__).resolve().parents[1] / "benchmarks"


def test_the_exact_variants_reach_the_defaults_losses_and_bf16_does_not(monkeypatch):
    monkeypatch.syspath_prepend(str(BENCHMARKS))
    sys.modules.pop("sac_step", None)
    sac_step = importlib.import_module("sac_step")
    losses = {
        name: sac_step.timed_train(
            sac_step.make_agent(sac_step.VARIANTS[name], fill=300), steps=5, bf16=name == "bf16"
        )[1]
        for name in ("default", "fused", "bf16", "crossq")
    }
    sys.modules.pop("sac_step", None)
    assert losses["fused"] == pytest.approx(losses["default"], rel=1e-4)
    assert losses["bf16"] != pytest.approx(losses["default"], rel=1e-6)  # other numerics
    assert losses["crossq"] != pytest.approx(losses["default"], rel=1e-3)  # another learner


def test_the_narrow_crossq_variant_has_256_wide_critics(monkeypatch):
    monkeypatch.syspath_prepend(str(BENCHMARKS))
    sys.modules.pop("sac_step", None)
    sac_step = importlib.import_module("sac_step")
    name = "crossq-qf256"
    agent = sac_step.make_agent(sac_step.VARIANTS[name], fill=10, critic_units=256)
    default = sac_step.make_agent(sac_step.VARIANTS["crossq"], fill=10)
    sys.modules.pop("sac_step", None)
    assert sac_step.CRITIC_UNITS[name] == 256

    def widths(a):
        return {p.shape[0] for n, p in a.policy.critic.named_parameters() if p.dim() == 2}

    assert widths(agent) == {256, 1} and widths(default) == {1024, 1}
