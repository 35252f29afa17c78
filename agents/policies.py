"""Data-collection policies: uniform random, zero action, and a stable-baselines3 checkpoint.

A policy maps one observation ``(obs_dim,)`` to one action ``(act_dim,)`` inside the action
space. ``reset(seed)`` is called at every episode start, so that an episode's actions depend
only on its seed (collection gives the same data whatever the worker count).

``make_policy(spec, ...)`` takes ``"random"``, ``"zero"`` or the path of an SB3 ``.zip``.
SB3 checkpoints are loaded *without* unpickling: the policy class is looked up by name in a
whitelist (PPO/A2C ``ActorCriticPolicy``, ``SACPolicy``, ``TD3Policy``, sb3-contrib's
``CrossQPolicy``), its kwargs come from the zip's JSON, and its weights load with
``torch.load(weights_only=True)``.
"""

from __future__ import annotations

import json
import zipfile
from abc import ABC, abstractmethod
from collections.abc import Callable
from pathlib import Path
from typing import Any

import gymnasium as gym
import numpy as np

from agents._sb3 import (
    DATA_ENTRY,
    POLICY_ENTRY,
    VERSION_ENTRY,
    holds_pickles,
    policy_class,
    space_shape,
)


class PolicyError(ValueError):
    """A policy spec or checkpoint that cannot be used; the message says why."""


class Policy(ABC):
    """A seeded map from observation to action."""

    name: str = "policy"

    def __init__(self, action_space: gym.spaces.Box) -> None:
        if not isinstance(action_space, gym.spaces.Box):
            raise PolicyError(f"collection policies need a Box action space, got {action_space}")
        self.action_space = action_space
        self.rng = np.random.default_rng(0)

    def reset(self, seed: int) -> None:
        """Re-seed at the start of an episode."""
        self.rng = np.random.default_rng([int(seed), 0x5EED])

    @abstractmethod
    def __call__(self, obs: np.ndarray) -> np.ndarray:
        """``(obs_dim,) -> (act_dim,)`` action in the action space."""

    def describe(self) -> dict[str, Any]:
        """What the dataset metadata records about this policy."""
        return {"name": self.name}


class RandomPolicy(Policy):
    """Uniform over the action box."""

    name = "random"

    def __call__(self, obs: np.ndarray) -> np.ndarray:
        space = self.action_space
        return self.rng.uniform(space.low, space.high).astype(space.dtype)


class ZeroPolicy(Policy):
    """Always the zero action (clipped into the box): passive dynamics."""

    name = "zero"

    def __call__(self, obs: np.ndarray) -> np.ndarray:
        space = self.action_space
        return np.clip(np.zeros(space.shape), space.low, space.high).astype(space.dtype)


# SB3 policy classes that may be rebuilt from a checkpoint, by (module, class name).
_SB3_POLICIES = {
    ("stable_baselines3.common.policies", "ActorCriticPolicy"),
    ("stable_baselines3.sac.policies", "SACPolicy"),
    ("stable_baselines3.td3.policies", "TD3Policy"),
    ("sb3_contrib.crossq.policies", "CrossQPolicy"),  # worldmodel dyna --agent crossq
}


# Off-policy classes whose deterministic action is the actor's alone (an export keeps only it).
_ACTOR_ONLY, _ACTOR = {"SACPolicy", "TD3Policy", "CrossQPolicy"}, "actor."


def export_policy(src: str | Path, dst: str | Path) -> Path:
    """Write the acting part of the SB3 checkpoint ``src`` (a SAC, TD3 or CrossQ agent ``.zip``) to
    ``dst``: its JSON ``data`` entry and the actor's weights, without critics, target networks,
    optimizers or pickled entries (a Hopper-v5 SAC agent: 3.1 MB -> about 0.3 MB). ``dst`` loads
    with :func:`make_policy` like the original and acts identically.

    Raises:
        PolicyError: ``src`` is unreadable, or its policy class has no separate actor.
    """
    import io

    import torch

    from worldmodel.io import atomic_write

    src, dst = Path(src), Path(dst)
    data, state, raw = _read_sb3_zip(src)
    _, name = policy_class(data)
    if name not in _ACTOR_ONLY:
        raise PolicyError(f"{src}: policy class {name} has no separate actor to export")
    buf = io.BytesIO()
    torch.save({k: v for k, v in state.items() if k.startswith(_ACTOR)}, buf)

    def write(f) -> None:
        with zipfile.ZipFile(f, "w", zipfile.ZIP_DEFLATED) as zf:
            zf.writestr(DATA_ENTRY, raw[DATA_ENTRY])
            zf.writestr(POLICY_ENTRY, buf.getvalue())
            if VERSION_ENTRY in raw:
                zf.writestr(VERSION_ENTRY, raw[VERSION_ENTRY])

    return atomic_write(dst, write)


class SB3Policy(Policy):
    """A trained stable-baselines3 policy (deterministic action) plus optional Gaussian noise.

    Args:
        path: an SB3 ``.zip`` saved by ``model.save``.
        observation_space: the env's; must match the checkpoint's shape.
        action_space: the env's; must match the checkpoint's shape.
        noise_std: std of Gaussian noise added to each action, as a fraction of the half-range
            of each action dimension; the result is clipped to the box.
    """

    name = "sb3"

    def __init__(
        self,
        path: str | Path,
        observation_space: gym.spaces.Box,
        action_space: gym.spaces.Box,
        noise_std: float = 0.0,
    ) -> None:
        super().__init__(action_space)
        if not np.isfinite(noise_std) or noise_std < 0:
            raise PolicyError(f"action noise std must be finite and >= 0, got {noise_std!r}")
        self.path = Path(path)
        self.noise_std = float(noise_std)
        self.policy, self.class_name, _ = _load_sb3_policy(
            self.path, observation_space, action_space
        )

    def __call__(self, obs: np.ndarray) -> np.ndarray:
        space = self.action_space
        action, _ = self.policy.predict(np.asarray(obs, dtype=np.float32), deterministic=True)
        action = np.asarray(action, dtype=np.float64).reshape(space.shape)
        if self.noise_std > 0:
            half = (space.high - space.low) / 2.0
            action = action + self.rng.normal(0.0, self.noise_std, size=space.shape) * half
        return np.clip(action, space.low, space.high).astype(space.dtype)

    def describe(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "path": str(self.path),
            "class": self.class_name,
            "noise_std": self.noise_std,
        }


def _read_sb3_zip(path: Path) -> tuple[dict[str, Any], dict[str, Any], dict[str, bytes]]:
    """``(data, policy state dict, raw entries)`` of an SB3 zip, without unpickling: ``data``
    parsed from its JSON entry, the weights with ``torch.load(weights_only=True)``, and the raw
    bytes of its ``data`` and (when present) version entries."""
    import torch

    if not path.is_file():
        raise PolicyError(f"{path}: no such SB3 checkpoint")
    try:
        with zipfile.ZipFile(path) as zf:
            raw = {k: zf.read(k) for k in (DATA_ENTRY, VERSION_ENTRY) if k in zf.namelist()}
            data = json.loads(raw[DATA_ENTRY])
            with zf.open(POLICY_ENTRY) as f:
                state = torch.load(f, map_location="cpu", weights_only=True)
    except (zipfile.BadZipFile, KeyError, json.JSONDecodeError, OSError, RuntimeError) as err:
        raise PolicyError(f"{path}: not a readable stable-baselines3 checkpoint: {err}") from None
    except Exception as err:  # weights_only refusal raises pickle.UnpicklingError
        raise PolicyError(f"{path}: refused to load policy weights safely: {err}") from None
    return data, state, raw


def _load_sb3_policy(
    path: Path, observation_space: gym.spaces.Box, action_space: gym.spaces.Box
) -> tuple[Any, str, bool]:
    """The policy of an SB3 zip, its class name, and whether only its actor was saved."""
    data, state, _ = _read_sb3_zip(path)

    module, name = policy_class(data)
    if (module, name) not in _SB3_POLICIES:
        allowed = sorted(f"{m}.{c}" for m, c in _SB3_POLICIES)
        raise PolicyError(
            f"{path}: policy class {module}.{name} is not supported; supported: {allowed}"
        )
    for key, space in (("observation_space", observation_space), ("action_space", action_space)):
        shape = space_shape(data, key)
        if shape != tuple(space.shape):
            raise PolicyError(
                f"{path}: checkpoint {key} has shape {shape}, "
                f"but the env's is {tuple(space.shape)} "
                "(a checkpoint for another env?)"
            )
    kwargs = data.get("policy_kwargs", {})
    if holds_pickles(kwargs):
        raise PolicyError(
            f"{path}: policy_kwargs hold pickled objects (e.g. a custom activation); "
            "only JSON policy_kwargs can be loaded safely"
        )
    import importlib

    policy_cls = getattr(importlib.import_module(module), name)
    policy = policy_cls(observation_space, action_space, lambda _: 0.0, **kwargs)
    actor_only = name in _ACTOR_ONLY and bool(state) and all(k.startswith(_ACTOR) for k in state)
    try:
        if actor_only:
            # an exported policy (export_policy): the actor is all that acting needs
            policy.actor.load_state_dict({k.removeprefix(_ACTOR): v for k, v in state.items()})
        else:
            policy.load_state_dict(state)
    except RuntimeError as err:
        raise PolicyError(f"{path}: weights do not fit {name}: {err}") from None
    policy.set_training_mode(False)
    return policy, f"{module}.{name}", actor_only


def critic_value(
    path: str | Path, observation_space: gym.spaces.Box, action_space: gym.spaces.Box
) -> Callable[[Any], Any]:
    """The state value of a full SAC, TD3 or CrossQ zip (its critic, loaded without unpickling):
    ``obs (M, obs_dim)`` tensor -> ``(M,)``, the smallest of its Q-networks at the actor's
    deterministic action (as TD-MPC bootstraps a plan's last state). An exported, actor-only
    zip (:func:`export_policy`) has no critic and is refused."""
    import torch

    policy, name, actor_only = _load_sb3_policy(Path(path), observation_space, action_space)
    if name.rsplit(".", 1)[-1] not in _ACTOR_ONLY:
        raise PolicyError(f"{path}: {name} has no Q-critic; a SAC, TD3 or CrossQ checkpoint has")
    if actor_only:
        raise PolicyError(f"{path}: holds no critic weights (an exported, actor-only policy)")

    @torch.no_grad()
    def value(obs: torch.Tensor) -> torch.Tensor:
        o = obs.to(device=policy.device, dtype=torch.float32)
        a = policy(o, deterministic=True)  # the actor's action, in the critic's scaled units
        return torch.min(torch.cat(policy.critic(o, a), -1), -1).values.to(obs.device)

    return value


POLICIES: dict[str, type[Policy]] = {"random": RandomPolicy, "zero": ZeroPolicy}


def make_policy(
    spec: str,
    observation_space: gym.spaces.Box,
    action_space: gym.spaces.Box,
    *,
    noise_std: float = 0.0,
) -> Policy:
    """Build a policy from ``"random"``, ``"zero"`` or the path of an SB3 ``.zip``."""
    if spec in POLICIES:
        if noise_std:
            raise PolicyError(f"action noise applies to SB3 checkpoints only, not to {spec!r}")
        return POLICIES[spec](action_space)
    if spec.endswith(".zip") or Path(spec).exists():
        return SB3Policy(spec, observation_space, action_space, noise_std=noise_std)
    raise PolicyError(
        f"unknown policy {spec!r}; expected one of {sorted(POLICIES)} or the path of an SB3 .zip"
    )
