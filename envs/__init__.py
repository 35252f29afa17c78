"""Gymnasium wrappers for irregularly timed MuJoCo rollouts, task functions and imagined envs.

``import envs`` registers ``worldmodel/Imagined-v0``:
``gym.make("worldmodel/Imagined-v0", run="runs/NAME")`` (see :mod:`envs.imagined`).
``envs.ImaginedEnv``, ``envs.ImaginedVectorEnv``, ``envs.SB3VecEnv`` and ``envs.ImaginationCore``
are imported lazily (they need torch and the models), so ``import envs`` stays light.
"""

import importlib as _importlib
from typing import Any as _Any

import gymnasium as _gym

from envs.factory import EnvSpec, env_spec_of, make_env
from envs.tasks import (
    TASKS,
    AntTask,
    HalfCheetahTask,
    HopperTask,
    SwimmerTask,
    Task,
    Walker2dTask,
    get_task,
)
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
    "TASKS",
    "AntTask",
    "EnvSpec",
    "HalfCheetahTask",
    "HopperTask",
    "ImaginationCore",
    "ImaginedEnv",
    "ImaginedVectorEnv",
    "Incline",
    "IrregularTiming",
    "ResetNoise",
    "SB3VecEnv",
    "SwimmerTask",
    "Task",
    "TimingSpec",
    "TrajectoryRecorder",
    "Walker2dTask",
    "env_spec_of",
    "get_task",
    "make_env",
    "mujoco_base",
    "physics_state",
    "set_physics_state",
]

_LAZY = {
    name: "envs.imagined"
    for name in ("ImaginationCore", "ImaginedEnv", "ImaginedVectorEnv", "SB3VecEnv")
}


def __getattr__(name: str) -> _Any:
    if name in _LAZY:
        return getattr(_importlib.import_module(_LAZY[name]), name)
    raise AttributeError(f"module 'envs' has no attribute {name!r}")


if "worldmodel/Imagined-v0" not in _gym.registry:
    _gym.register(
        "worldmodel/Imagined-v0", entry_point="envs.imagined:ImaginedEnv", max_episode_steps=1000
    )
