"""Gymnasium wrappers for irregularly timed MuJoCo rollouts, task functions and imagined envs.

``import envs`` registers ``worldmodel/Imagined-v0``:
``gym.make("worldmodel/Imagined-v0", run="runs/NAME")`` (see :mod:`envs.imagined`: the
core in ``envs/imagined/core.py``, the Gymnasium envs in ``single.py`` and ``vector.py``, the
stable-baselines3 adapter in ``sb3.py``).
``envs.ImaginedEnv``, ``envs.ImaginedVectorEnv``, ``envs.SB3VecEnv`` and ``envs.ImaginationCore``
are imported lazily (they need torch and the models), so ``import envs`` stays light.
"""

import gymnasium as _gym

from envs.factory import EnvSpec, env_spec_of, make_env
from envs.self_timed import SelfTimed, make_self_timed
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
from worldmodel._lazy import lazy_getattr as _lazy_getattr

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
    "SelfTimed",
    "SwimmerTask",
    "Task",
    "TimingSpec",
    "TrajectoryRecorder",
    "Walker2dTask",
    "env_spec_of",
    "get_task",
    "make_env",
    "make_self_timed",
    "mujoco_base",
    "physics_state",
    "set_physics_state",
]

_LAZY = {
    name: "envs.imagined"
    for name in ("ImaginationCore", "ImaginedEnv", "ImaginedVectorEnv", "SB3VecEnv")
}
__getattr__ = _lazy_getattr(__name__, _LAZY)


if "worldmodel/Imagined-v0" not in _gym.registry:
    _gym.register(
        "worldmodel/Imagined-v0", entry_point="envs.imagined:ImaginedEnv", max_episode_steps=1000
    )
