"""SAC replay buffers: per-transition discounts for a self-timed agent (a semi-MDP), and one that
mixes real transitions with a separate FIFO of imagined ones (MBPO).

:class:`TimedReplayBuffer` gives each sampled transition its own discount ``gamma ** (dt /
dt0)`` when the agent picks its own hold (:class:`envs.SelfTimed`), so that ``gamma`` is a
discount per fixed step of *time* rather than per decision (stable-baselines3 >= 2.7 reads
``ReplayBufferSamples.discounts`` in SAC's target).

Real env steps go to the ordinary stable-baselines3 buffer. Imagined transitions go to their own
fixed-capacity ring (``add_imagined``), so stale rollouts from an old model and an old policy
fall out as new ones arrive. Each SAC batch draws ``real_ratio`` of its samples from the real
buffer and the rest from the imagined ring (all real while the ring is empty).
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch
from stable_baselines3.common.buffers import ReplayBuffer
from stable_baselines3.common.type_aliases import ReplayBufferSamples

from envs.self_timed import hold_substeps

IMAGINED_ARRAYS = ("im_obs", "im_next_obs", "im_actions", "im_rewards", "im_dones")


class TimedReplayBuffer(ReplayBuffer):
    """``ReplayBuffer`` whose samples discount each transition by ``gamma ** (substeps /
    default_substeps)`` when ``self_timed`` is ``(low, high)``: the hold is read back from the
    stored action's last component (:class:`envs.SelfTimed`'s timing component, bounds
    [-1, 1], where SB3 stores the value the env was given). ``self_timed=None``: samples
    unchanged (SAC then discounts every transition by its own ``gamma``).

    An approximation: the last interval of an episode that :class:`envs.SelfTimed` cut short at
    its time limit is discounted as the full hold its action asked for (one transition per
    truncated episode; SAC bootstraps through it, so e.g. 0.99 ** (15 / 4) = 0.963 where
    0.99 ** (10 / 4) = 0.975 was run)."""

    def __init__(
        self,
        *args: Any,
        self_timed: tuple[int, int] | None = None,
        gamma: float | None = None,
        default_substeps: int = 1,
        **kwargs: Any,
    ) -> None:
        super().__init__(*args, **kwargs)
        if self_timed is not None:
            if "discounts" not in ReplayBufferSamples._fields:
                import stable_baselines3

                raise ValueError(
                    "per-transition discounts need stable-baselines3 >= 2.7 (SAC's "
                    f"ReplayBufferSamples.discounts); {stable_baselines3.__version__} is installed"
                )
            low, high = self_timed
            if not 1 <= low <= high:
                raise ValueError(
                    f"self_timed must be (low, high) with 1 <= low <= high, got {self_timed}"
                )
            if gamma is None or not 0.0 < gamma <= 1.0 or default_substeps < 1:
                raise ValueError(
                    f"timed discounts need SAC's gamma in (0, 1] and default_substeps >= 1, got "
                    f"{gamma} and {default_substeps}"
                )
            space = self.action_space
            if not (space.low[-1] == -1.0 and space.high[-1] == 1.0):
                raise ValueError(
                    "timed discounts read the hold from the action's last component, which must "
                    f"have bounds [-1, 1] (envs.SelfTimed's), got {space}"
                )
        self.self_timed, self.default_substeps = self_timed, default_substeps
        self.gamma = 0.99 if gamma is None else gamma

    def discounts(self, actions: np.ndarray) -> np.ndarray:
        """``(N, 1)`` float32 discounts of transitions with buffer actions ``(N, act_dim)``."""
        if self.self_timed is None:
            return np.full((len(actions), 1), self.gamma, dtype=np.float32)
        substeps = hold_substeps(np.asarray(actions)[:, -1], *self.self_timed)
        return (self.gamma ** (substeps / self.default_substeps)).astype(np.float32)[:, None]

    def _discounted(self, samples: ReplayBufferSamples) -> ReplayBufferSamples:
        if self.self_timed is None:
            return samples
        d = self.discounts(samples.actions.cpu().numpy())
        return samples._replace(discounts=self.to_torch(d))

    def _get_samples(self, batch_inds: np.ndarray, env: Any = None) -> ReplayBufferSamples:
        return self._discounted(super()._get_samples(batch_inds, env=env))


class MixedReplayBuffer(TimedReplayBuffer):
    """``TimedReplayBuffer`` plus an imagined-transition ring of ``imagined_capacity``
    entries, which :meth:`grow_imagined` enlarges (imagined transitions are discounted by the
    same rule as real ones)."""

    def __init__(
        self, *args: Any, imagined_capacity: int = 100_000, real_ratio: float = 0.1, **kwargs: Any
    ) -> None:
        super().__init__(*args, **kwargs)
        if imagined_capacity < 1:
            raise ValueError(f"imagined_capacity must be >= 1, got {imagined_capacity}")
        if not 0.0 <= real_ratio <= 1.0:
            raise ValueError(f"real_ratio must be in [0, 1], got {real_ratio}")
        self.real_ratio = real_ratio
        n, obs_dim, act_dim = imagined_capacity, int(np.prod(self.obs_shape)), self.action_dim
        self.im_obs = np.zeros((n, obs_dim), dtype=np.float32)
        self.im_next_obs = np.zeros((n, obs_dim), dtype=np.float32)
        self.im_actions = np.zeros((n, act_dim), dtype=np.float32)
        self.im_rewards = np.zeros((n, 1), dtype=np.float32)
        self.im_dones = np.zeros((n, 1), dtype=np.float32)
        self.im_pos, self.im_size = 0, 0

    @property
    def imagined_capacity(self) -> int:
        return len(self.im_obs)

    def grow_imagined(self, capacity: int) -> None:
        """Enlarge the imagined ring to ``capacity`` entries (no-op if it holds that many),
        keeping its transitions oldest first, so that FIFO order survives the growth."""
        cap = self.imagined_capacity
        if capacity <= cap:
            return
        oldest = self.im_pos if self.im_size == cap else 0  # a full ring's oldest entry
        order = (oldest + np.arange(self.im_size)) % cap
        for name in IMAGINED_ARRAYS:
            old = getattr(self, name)
            new = np.zeros((capacity, *old.shape[1:]), dtype=old.dtype)
            new[: self.im_size] = old[order]
            setattr(self, name, new)
        self.im_pos = self.im_size

    def add_imagined(
        self,
        obs: np.ndarray,
        next_obs: np.ndarray,
        actions: np.ndarray,
        rewards: np.ndarray,
        dones: np.ndarray,
    ) -> None:
        """Append N imagined transitions: obs/next_obs (N, obs_dim), actions (N, act_dim),
        rewards and dones (N,). The oldest are overwritten once the ring is full."""
        n = len(obs)
        if not (len(next_obs) == len(actions) == len(rewards) == len(dones) == n):
            raise ValueError(
                "add_imagined: obs, next_obs, actions, rewards, dones differ in length"
            )
        for name, arr in (("obs", obs), ("next_obs", next_obs), ("rewards", rewards)):
            if not np.all(np.isfinite(arr)):
                raise ValueError(f"add_imagined: non-finite values in {name}")
        if n == 0:  # e.g. every branch of a batch ended (diverged or too uncertain)
            return
        cap = self.imagined_capacity
        if n > cap:  # only the newest fit
            obs, next_obs, actions, rewards, dones = (
                a[-cap:] for a in (obs, next_obs, actions, rewards, dones)
            )
            n = cap
        idx = (self.im_pos + np.arange(n)) % cap
        self.im_obs[idx] = obs.reshape(n, -1)
        self.im_next_obs[idx] = next_obs.reshape(n, -1)
        self.im_actions[idx] = actions.reshape(n, -1)
        self.im_rewards[idx, 0] = rewards
        self.im_dones[idx, 0] = dones
        self.im_pos = int((self.im_pos + n) % cap)
        self.im_size = min(cap, self.im_size + n)

    def sample(self, batch_size: int, env: Any = None) -> ReplayBufferSamples:
        """``real_ratio`` of the batch from real steps, the rest from the imagined ring."""
        n_real = batch_size if self.im_size == 0 else int(round(self.real_ratio * batch_size))
        n_im = batch_size - n_real
        parts = []
        if n_real > 0:
            parts.append(super().sample(n_real, env=env))
        if n_im > 0:
            i = np.random.randint(0, self.im_size, size=n_im)
            data = (
                self.im_obs[i],
                self.im_actions[i],
                self.im_next_obs[i],
                self.im_dones[i],
                self.im_rewards[i],
            )
            parts.append(self._discounted(ReplayBufferSamples(*(self.to_torch(a) for a in data))))
        if len(parts) == 1:
            return parts[0]
        return _concat(parts)


def _concat(parts: list[ReplayBufferSamples]) -> ReplayBufferSamples:
    """Concatenate samples field by field, by name: SB3 >= 2.7 added an optional ``discounts``
    (n-step buffers; None from one-step ones like this), SB3 2.3-2.6 have only the five."""
    out = {}
    for name in type(parts[0])._fields:
        values = [getattr(p, name) for p in parts]
        if all(v is None for v in values):
            continue  # left at the namedtuple's default (None)
        if any(v is None for v in values):
            raise ValueError(f"cannot mix replay samples with and without {name!r}")
        out[name] = torch.cat(values)
    return type(parts[0])(**out)
