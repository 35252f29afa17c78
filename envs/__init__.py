"""Gymnasium wrappers for irregularly timed MuJoCo rollouts (and, later, the imagined envs)."""

from envs.factory import EnvSpec, make_env
from envs.timing import TimingSpec
from envs.wrappers import (
    Incline,
    IrregularTiming,
    ResetNoise,
    TrajectoryRecorder,
    mujoco_base,
    physics_state,
    set_physics_state,
)

__all__ = [
    "EnvSpec",
    "Incline",
    "IrregularTiming",
    "ResetNoise",
    "TimingSpec",
    "TrajectoryRecorder",
    "make_env",
    "mujoco_base",
    "physics_state",
    "set_physics_state",
]
