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
