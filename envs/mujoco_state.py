"""Observation -> MuJoCo physics state for the locomotion envs.

Their default observation is ``qpos[k:] ++ qvel`` (plus extras such as Ant's contact forces):
the first ``k`` positions (x; x and y for Swimmer and Ant, see
:attr:`envs.tasks.Task.excluded_positions`) are left out because the dynamics do not depend on
them. Drawing or simulating an observation needs them back; the caller supplies them (0, the
real x, or x integrated from the predicted velocity).
"""

from __future__ import annotations

import numpy as np
from numpy.typing import ArrayLike


def state_from_obs(
    obs: np.ndarray, excluded: ArrayLike, nq: int, nv: int
) -> tuple[np.ndarray, np.ndarray]:
    """``(qpos (nq,), qvel (nv,))`` of one observation ``obs (obs_dim,)``.

    Args:
        obs: ``qpos[k:] ++ qvel ++ extras``, ``k = len(excluded)``; extras are ignored.
        excluded: the ``k`` leading positions the observation leaves out (``(k,)``, metres).
        nq, nv: the MuJoCo model's position and velocity sizes.

    Returns:
        ``qpos = excluded ++ obs[: nq - k]`` (float64) and a copy of
        ``qvel = obs[nq - k : nq - k + nv]`` (``obs``'s dtype). Sizes are not checked here
        (:func:`envs.set_physics_state` checks them).
    """
    head = np.asarray(excluded, dtype=np.float64).reshape(-1)
    k = head.shape[0]
    return np.concatenate([head, obs[: nq - k]]), obs[nq - k : nq - k + nv].copy()
