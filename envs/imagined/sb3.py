"""``SB3VecEnv``: an :class:`~envs.imagined.ImaginedVectorEnv` as a stable-baselines3 ``VecEnv``."""

from __future__ import annotations

from typing import Any

import numpy as np
from stable_baselines3.common.vec_env import VecEnv as SB3BaseVecEnv

from envs.imagined.vector import ImaginedVectorEnv


class SB3VecEnv(SB3BaseVecEnv):
    """An :class:`ImaginedVectorEnv` as a stable-baselines3 ``VecEnv``: ``reset() -> obs``,
    ``step_wait() -> (obs, rewards, dones, infos)`` with ``infos[i]["terminal_observation"]``
    and ``"TimeLimit.truncated"`` on finished episodes."""

    def __init__(self, venv: ImaginedVectorEnv) -> None:
        self.venv = venv
        super().__init__(venv.num_envs, venv.single_observation_space, venv.single_action_space)
        self._actions: np.ndarray | None = None

    def reset(self) -> np.ndarray:
        seed = None if self._seeds[0] is None else [int(s) for s in self._seeds]
        obs, _ = self.venv.reset(seed=seed)
        self._reset_seeds()
        return obs

    def step_async(self, actions: np.ndarray) -> None:
        self._actions = actions

    def step_wait(self) -> tuple[np.ndarray, np.ndarray, np.ndarray, list[dict[str, Any]]]:
        obs, reward, term, trunc, infos = self.venv.step(self._actions)
        dones = term | trunc
        out: list[dict[str, Any]] = [{} for _ in range(self.num_envs)]
        for i in np.flatnonzero(dones):
            out[i] = {
                "terminal_observation": infos["final_obs"][i],
                "TimeLimit.truncated": bool(trunc[i] and not term[i]),
            }
        return obs, reward.astype(np.float32), dones, out

    def close(self) -> None:
        self.venv.close()

    def get_attr(self, attr_name: str, indices: Any = None) -> list[Any]:
        return [getattr(self.venv, attr_name)] * len(self._get_indices(indices))

    def set_attr(self, attr_name: str, value: Any, indices: Any = None) -> None:
        setattr(self.venv, attr_name, value)

    def env_method(
        self, method_name: str, *args: Any, indices: Any = None, **kwargs: Any
    ) -> list[Any]:
        return [getattr(self.venv, method_name)(*args, **kwargs)] * len(self._get_indices(indices))

    def env_is_wrapped(self, wrapper_class: type, indices: Any = None) -> list[bool]:
        return [False] * len(self._get_indices(indices))
