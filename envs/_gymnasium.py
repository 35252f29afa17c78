"""Gymnasium's private MuJoCo-env API, read in one place.

``MujocoEnv`` has no public way to observe its current physics state without stepping; every
locomotion env defines the private ``_get_obs()`` for it. ``tests/test_compat.py`` checks it on
the envs of :mod:`envs.tasks` (written against Gymnasium 1.x).
"""

from __future__ import annotations

import numpy as np
from gymnasium.envs.mujoco.mujoco_env import MujocoEnv


def observation_of(base: MujocoEnv) -> np.ndarray:
    """The observation ``(obs_dim,)`` of ``base``'s current physics state (``_get_obs()``)."""
    return base._get_obs()


__all__ = ["observation_of"]
