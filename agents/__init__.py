"""Planning and learning with a world model: CEM/MPPI planners, MPC on the real env, Dyna/MBPO
with stable-baselines3's SAC, and the data-collection policies.

The public API (imported lazily: the planners need torch, Dyna stable-baselines3)::

    from agents import CEM, MPPI, model_objective, run_mpc, run_dyna, MixedReplayBuffer
"""

from __future__ import annotations

from worldmodel._lazy import lazy_getattr

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
__getattr__ = lazy_getattr(__name__, _PUBLIC)
