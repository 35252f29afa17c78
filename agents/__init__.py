"""Planning and learning with a world model: CEM/MPPI planners, MPC on the real env, Dyna/MBPO
with stable-baselines3's SAC, and the data-collection policies.

The public API (imported lazily: the planners need torch, Dyna stable-baselines3)::

    from agents import CEM, MPPI, model_objective, run_mpc, run_dyna, MixedReplayBuffer
"""

from __future__ import annotations

import importlib
from typing import Any

_PUBLIC = {
    "CEM": "agents.planners",
    "MPPI": "agents.planners",
    "make_planner": "agents.planners",
    "model_objective": "agents.planners",
    "run_mpc": "agents.mpc",
    "run_dyna": "agents.dyna",
    "MixedReplayBuffer": "agents.replay",
    "make_policy": "agents.policies",
}

__all__ = sorted(_PUBLIC)


def __getattr__(name: str) -> Any:
    if name in _PUBLIC:
        return getattr(importlib.import_module(_PUBLIC[name]), name)
    raise AttributeError(f"module 'agents' has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(__all__))
