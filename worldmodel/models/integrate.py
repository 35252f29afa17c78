"""Integrate action-conditioned ODEs ``dz/dt = f(z, a(t))`` under zero-order-hold actions.

The action is piecewise constant and may switch at grid times, so ``f`` jumps there. Only the
grid times where some row's action actually changes are *switch times*. One
``torchdiffeq.odeint`` call covers the whole grid and never steps blindly over a switch:

* fixed-step solvers (``euler``, ``midpoint``, ``rk4``, ...) step on a grid made of the switch
  times, each interval split into equal steps of at most ``max_step`` (``max_step=None``: a
  step at every output time instead), with ``perturb=True``, so that an evaluation at a step's
  start sees the new action and one at its end the old one. Output times between solver steps
  are interpolated linearly (torchdiffeq's cubic option would evaluate ``f`` on the wrong side
  of a switch);
* adaptive solvers (``dopri5``, ...) get the switch times as ``jump_t``: they stop at each and
  restart, evaluating on the correct side.

In both cases ``a(t)`` is the right-continuous lookup ``actions[searchsorted(grid, t) - 1]``.
"""

from __future__ import annotations

import math

import torch
import torchdiffeq
from torch import nn
from torchdiffeq._impl.odeint import SOLVERS
from torchdiffeq._impl.solvers import FixedGridODESolver

# torchdiffeq's fixed-grid methods (they take grid_constructor and perturb)
FIXED_SOLVERS = frozenset(k for k, v in SOLVERS.items() if issubclass(v, FixedGridODESolver))


def subdivide(grid: torch.Tensor, max_step: float | None) -> torch.Tensor:
    """``grid (U,)`` with every interval split into equal steps of at most ``max_step``;
    the original points are kept exactly."""
    if max_step is None or grid.shape[0] < 2:
        return grid
    d = grid.diff()
    n = torch.ceil(d / max_step).clamp(min=1).long()
    starts = torch.repeat_interleave(grid[:-1], n)
    step = torch.repeat_interleave(d / n, n)
    k = torch.arange(int(n.sum()), device=grid.device) - torch.repeat_interleave(n.cumsum(0) - n, n)
    return torch.cat([starts + k * step, grid[-1:]])


class ZOHField(nn.Module):
    """``(t, z) -> f(z, a(t))`` with ``a`` held constant on each grid interval.

    Args:
        f: module mapping ``(z (N, D), a (N, A)) -> dz/dt (N, D)``.
        grid: ``(U,)`` switch times (model units), increasing.
        actions: ``(N, U, A)``; ``actions[:, u]`` is held on ``[grid[u], grid[u+1])``.
        scale: optional ``(N, 1)`` factor on the derivative (time rescaling).
    """

    def __init__(
        self,
        f: nn.Module,
        grid: torch.Tensor,
        actions: torch.Tensor,
        scale: torch.Tensor | None = None,
    ):
        super().__init__()
        self.f, self.grid, self.actions, self.scale = f, grid, actions, scale
        self.nfe = 0

    def forward(self, t: torch.Tensor, z: torch.Tensor) -> torch.Tensor:
        self.nfe += 1
        i = torch.searchsorted(self.grid, t.reshape(1).to(self.grid.dtype), right=True) - 1
        a = self.actions[:, int(i.clamp(0, self.actions.shape[1] - 1))]
        dz = self.f(z, a)
        return dz if self.scale is None else dz * self.scale


def switch_times(grid: torch.Tensor, actions: torch.Tensor) -> torch.Tensor:
    """Grid times (excluding the ends) at which any row's held action changes."""
    if actions.shape[-1] == 0 or grid.shape[0] < 3:
        return grid[:0]
    changed = (actions[:, 1:-1] != actions[:, :-2]).any(-1).any(0)  # (U-2,), for grid[1:-1]
    return grid[1:-1][changed]


def solver_grid(grid: torch.Tensor, actions: torch.Tensor, max_step: float | None) -> torch.Tensor:
    """The fixed-step solver's grid: every output time when ``max_step`` is None, else the
    ends and the switch times, subdivided into steps of at most ``max_step``."""
    if max_step is None:
        return grid
    knots = torch.cat([grid[:1], switch_times(grid, actions), grid[-1:]])
    return subdivide(knots, max_step)


def odeint_zoh(
    f: nn.Module,
    z0: torch.Tensor,
    grid: torch.Tensor,
    actions: torch.Tensor,
    *,
    method: str = "rk4",
    max_step: float | None = None,
    rtol: float = 1e-3,
    atol: float = 1e-4,
    adjoint: bool = False,
    scale: torch.Tensor | None = None,
) -> torch.Tensor:
    """Solve ``dz/dt = f(z, a(t))`` from ``z0 (N, D)`` at ``grid[0]``; returns ``(U, N, D)``
    at every grid time. ``method`` goes straight to torchdiffeq (its error lists the valid
    names); ``max_step`` (model units) is the largest fixed step (see module docstring)."""
    field = ZOHField(f, grid, actions, scale)
    if method in FIXED_SOLVERS:
        fine = solver_grid(grid, actions, max_step)
        options = {"grid_constructor": lambda *_: fine, "perturb": True}
        kwargs = {}
    else:
        jumps = switch_times(grid, actions)
        options = {"jump_t": jumps} if jumps.shape[0] else {}
        kwargs = {"rtol": rtol, "atol": atol}
    solve = torchdiffeq.odeint_adjoint if adjoint else torchdiffeq.odeint
    if adjoint:
        kwargs["adjoint_params"] = tuple(f.parameters())
        kwargs["adjoint_options"] = dict(options)
    return solve(field, z0, grid, method=method, options=options, **kwargs)


def step_zoh(
    f: nn.Module,
    z: torch.Tensor,
    action: torch.Tensor,
    dt: torch.Tensor,
    *,
    method: str = "rk4",
    max_step: float | None = None,
    rtol: float = 1e-3,
    atol: float = 1e-4,
) -> torch.Tensor:
    """One step of a different length per row: ``z (N, D)``, ``action (N, A)`` held for
    ``dt (N,)`` model units. Solved on ``s in [0, 1]`` with ``dz/ds = dt * f(z, a)``, so
    all rows share one solve; fixed-step methods take ``ceil(max(dt) / max_step)`` steps."""
    grid = torch.tensor([0.0, 1.0], dtype=z.dtype, device=z.device)
    step = None
    if max_step is not None and method in FIXED_SOLVERS:
        step = 1.0 / max(1, math.ceil(float(dt.max()) / max_step))
    out = odeint_zoh(
        f, z, grid, action.unsqueeze(1), method=method, max_step=step,
        rtol=rtol, atol=atol, scale=dt.reshape(-1, 1).to(z.dtype),
    )  # fmt: skip
    return out[-1]
