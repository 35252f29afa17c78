"""Gymnasium wrappers for irregularly timed MuJoCo rollouts, task functions and imagined envs.

``import envs`` registers ``worldmodel/Imagined-v0``:
``gym.make("worldmodel/Imagined-v0", run="runs/NAME")`` (see :mod:`envs.imagined`).
"""

import gymnasium as _gym

from envs.factory import EnvSpec, make_env
from envs.tasks import TASKS, HopperTask, Task, Walker2dTask, get_task
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
    "EnvSpec",
    "HopperTask",
    "Incline",
    "IrregularTiming",
    "ResetNoise",
    "Task",
    "TimingSpec",
    "TrajectoryRecorder",
    "Walker2dTask",
    "get_task",
    "make_env",
    "mujoco_base",
    "physics_state",
    "set_physics_state",
]

if "worldmodel/Imagined-v0" not in _gym.registry:
    _gym.register(
        "worldmodel/Imagined-v0", entry_point="envs.imagined:ImaginedEnv", max_episode_steps=1000
    )
