"""A controlled linear system with an exact solution, as a dataset (no simulator needed)."""

from __future__ import annotations

import numpy as np
import torch

from worldmodel.data import Dataset, Episode

OMEGA, DAMPING = 2.0, 0.3
A = np.array([[0.0, 1.0], [-(OMEGA**2), -DAMPING]])
B = np.array([[0.0], [1.0]])


def zoh_step(s: np.ndarray, a: np.ndarray, dt: float) -> np.ndarray:
    """Exact solution of ds/dt = A s + B a over dt with a held (matrix exponential)."""
    M = np.zeros((3, 3))
    M[:2, :2], M[:2, 2:] = A, B
    E = torch.linalg.matrix_exp(torch.as_tensor(M * dt)).numpy()
    return E[:2, :2] @ s + E[:2, 2:] @ a


def linear_dataset(
    episodes: int = 40, steps: int = 30, seed: int = 0, action_scale: float = 0.5
) -> Dataset:
    """Episodes of a damped oscillator driven by random held actions, dt in {0.05, ..., 0.2} s."""
    rng = np.random.default_rng(seed)
    eps = []
    for _ in range(episodes):
        dts = rng.integers(1, 5, size=steps) * 0.05
        acts = rng.uniform(-action_scale, action_scale, size=(steps, 1))
        s = rng.uniform(-1, 1, size=2)
        states = [s]
        for dt, a in zip(dts, acts):
            s = zoh_step(s, a, dt)
            states.append(s)
        t = np.concatenate([[0.0], np.cumsum(dts)])
        eps.append(
            Episode(
                t=t,
                obs=np.array(states),
                actions=acts.astype(np.float32),
                rewards=np.zeros(steps),
                qpos=np.zeros((steps + 1, 0)),
                qvel=np.zeros((steps + 1, 0)),
            )
        )
    return Dataset(eps, {"env_id": "Linear-v0", "action_low": [-1.0], "action_high": [1.0]})
