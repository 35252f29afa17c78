"""Input checks of the imagined envs: each refuses a bad action, dt or reset option with a
``ValueError``/``TypeError`` that names it (``tests/test_fuzz_imagined.py`` holds them to it)."""

from __future__ import annotations

import math
from typing import Any

import gymnasium as gym
import numpy as np

from worldmodel.batching import Context


def is_real(value: Any, *, scalar: bool = True, finite: bool = False) -> bool:
    """Whether ``value`` is a real number (``scalar``) or an array of them (not text, objects,
    complex or ragged lists)."""
    try:
        arr = np.asarray(value)
    except (ValueError, TypeError):
        return False
    if arr.dtype.kind not in "biuf" or (scalar and arr.ndim):
        return False
    return not finite or bool(np.isfinite(arr).all())


def check_dt(dt: Any, most: float) -> float:
    """``dt`` as seconds in ``(0, most]``."""
    if not is_real(dt):
        raise TypeError(f"dt must be a number of seconds, got {dt!r:.60}")
    dt = float(dt)
    if not math.isfinite(dt) or dt <= 0:
        raise ValueError(f"dt must be a positive finite number of seconds, got {dt!r}")
    if dt > most:
        raise ValueError(
            f"dt must be at most {most:g} s (1,000 of the env's control steps), got {dt!r}"
        )
    return dt


def check_actions(a: np.ndarray, space: gym.spaces.Box, clip: bool) -> np.ndarray:
    """``(N, act_dim)`` actions: shape and finiteness checked, clipped into the box (or refused)."""
    if a.ndim != 2 or a.shape[1:] != space.shape:
        raise ValueError(f"actions have shape {a.shape}, expected (N, {space.shape[0]})")
    if not np.isfinite(a).all():
        raise ValueError("action holds a non-finite value")
    inside = (a >= space.low) & (a <= space.high)
    if not inside.all():
        if not clip:
            raise ValueError(
                f"action {a[~inside.all(1)][0].tolist()} is outside "
                f"[{space.low.tolist()}, {space.high.tolist()}]"
            )
        a = np.clip(a, space.low, space.high)
    return a


def check_reset_options(options: Any) -> None:
    """Refuse ``reset(options=...)`` that is not a dict, a non-finite ``x``, or a context that
    is not a dict of real arrays (shapes are checked by :func:`context_from_options`)."""
    if options is not None and not isinstance(options, dict):
        raise TypeError(f"options must be a dict or None, got {type(options).__name__}")
    if options and "x" in options and not is_real(options["x"], finite=True):
        raise ValueError(f"options['x'] must be a finite number, got {options['x']!r:.60}")
    if options and "context" in options:
        if not isinstance(options["context"], dict):
            raise TypeError(
                "options['context'] must be a dict of t, obs and actions, got "
                f"{type(options['context']).__name__}"
            )
        for key, value in options["context"].items():
            if key in ("t", "obs", "actions") and not is_real(value, scalar=False):
                raise TypeError(f"options['context'][{key!r}] is not an array of real numbers")


def context_from_options(
    options: dict[str, Any], obs_space: gym.spaces.Box, act_space: gym.spaces.Box
) -> tuple[Context, float]:
    """The context window ``options["context"]`` (``t (T,)`` s, ``obs (T, obs_dim)``,
    ``actions (T-1, act_dim)``) and the x position ``options.get("x", 0)``."""
    c = options["context"]
    try:
        t = np.asarray(c["t"], dtype=np.float64).reshape(-1)
        obs = np.asarray(c["obs"], dtype=np.float64)
        actions = np.asarray(c.get("actions", np.zeros((0, act_space.shape[0]))), dtype=np.float64)
    except (KeyError, TypeError) as err:
        raise ValueError(f"options['context'] needs t, obs and actions: {err}") from None
    if obs.ndim != 2 or obs.shape[1:] != obs_space.shape:
        raise ValueError(f"context obs has shape {obs.shape}, expected (T, {obs_space.shape[0]})")
    if actions.ndim != 2 or actions.shape[1:] != act_space.shape:
        raise ValueError(
            f"context actions have shape {actions.shape}, expected (T-1, {act_space.shape[0]})"
        )
    return Context(t, obs, actions), float(options.get("x", 0.0))
