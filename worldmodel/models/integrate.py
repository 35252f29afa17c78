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

:func:`held_steps` is the fast path for the common case, consecutive intervals of one held
action each with a length per row (a model's own steps, one imagined step): it loops over the
intervals itself and takes torchdiffeq's fixed-step formula inside each, so no step crosses a
switch by construction and ``odeint``'s per-evaluation bookkeeping (time lookup, perturbation,
interpolation) is skipped; :func:`step_zoh` uses it for fixed-step methods.
"""

from __future__ import annotations

import torch
import torchdiffeq
from torch import nn

# torchdiffeq's fixed-grid methods (they take grid_constructor and perturb)
from worldmodel._compat.torchdiffeq import FIXED_SOLVERS, fixed_step


def subdivide_counts(knots: torch.Tensor, n: torch.Tensor) -> torch.Tensor:
    """``knots (M,)`` with interval ``i`` split into ``n[i]`` equal steps; knots kept exactly."""
    d = knots.diff()
    starts = torch.repeat_interleave(knots[:-1], n)
    step = torch.repeat_interleave(d / n, n)
    k = torch.arange(int(n.sum()), device=knots.device) - torch.repeat_interleave(
        n.cumsum(0) - n, n
    )
    return torch.cat([starts + k * step, knots[-1:]])


def step_counts(duration: torch.Tensor, max_step: float) -> torch.Tensor:
    """Equal steps of at most ``max_step`` per interval of ``duration`` (long, >= 1). A
    duration within float rounding (1e-5 relative) of a multiple of ``max_step`` takes that
    many steps: an interval of exactly the env's dt, stored in float32, is one step, not two."""
    return torch.ceil(duration / max_step * (1 - 1e-5)).clamp(min=1).long()


def subdivide(grid: torch.Tensor, max_step: float | None) -> torch.Tensor:
    """``grid (U,)`` with every interval split into equal steps of at most ``max_step``."""
    if max_step is None or grid.shape[0] < 2:
        return grid
    return subdivide_counts(grid, step_counts(grid.diff(), max_step))


def _per_interval(scale: torch.Tensor | None) -> bool:
    return scale is not None and scale.shape[-1] > 1


def switch_index(actions: torch.Tensor, scale: torch.Tensor | None = None) -> torch.Tensor:
    """Interior grid indices at which any row's held action (or per-interval scale) changes."""
    U = actions.shape[1]
    if U < 3:
        return torch.zeros(0, dtype=torch.long, device=actions.device)
    changed = torch.zeros(U - 2, dtype=torch.bool, device=actions.device)
    if actions.shape[-1]:
        changed |= (actions[:, 1:-1] != actions[:, :-2]).any(-1).any(0)
    if _per_interval(scale):
        # a change of step length by more than 0.1 % of it; equal steps computed from float32
        # times differ by up to ~1 ulp of the time (2e-5 of a 0.005 s step at t = 1 s), and
        # treating that noise as switches made dopri5 restart at almost every point
        now, before = scale[:, 1:-1], scale[:, :-2]
        changed |= ((now - before).abs() > 1e-3 * torch.maximum(now.abs(), before.abs())).any(0)
    return torch.nonzero(changed).flatten() + 1


def switch_times(
    grid: torch.Tensor, actions: torch.Tensor, scale: torch.Tensor | None = None
) -> torch.Tensor:
    """Grid times (excluding the ends) at which any row's held action changes."""
    return grid[switch_index(actions, scale)]


def solver_grid(
    grid: torch.Tensor,
    actions: torch.Tensor,
    max_step: float | None,
    scale: torch.Tensor | None = None,
) -> torch.Tensor:
    """The fixed-step solver's grid: every output time when ``max_step`` is None, else the
    ends and the switch times, each interval split so that no row's step (``scale`` times the
    grid step) exceeds ``max_step``."""
    if max_step is None:
        return grid
    U = grid.shape[0]
    knots = torch.cat(
        [
            torch.zeros(1, dtype=torch.long, device=grid.device),
            switch_index(actions, scale),
            torch.full((1,), U - 1, dtype=torch.long, device=grid.device),
        ]
    )
    d = grid.diff()
    if scale is None:
        phys = d.unsqueeze(0)
    elif _per_interval(scale):
        phys = d * scale[:, : U - 1].abs()
    else:
        phys = d * scale.abs()
    cum = torch.cat([torch.zeros_like(phys[:, :1]), phys.cumsum(-1)], -1)
    dur = (cum[:, knots[1:]] - cum[:, knots[:-1]]).amax(0)
    return subdivide_counts(grid[knots], step_counts(dur, max_step))


class ZOHField(nn.Module):
    """``(t, z) -> f(z, a(t))`` with ``a`` held constant on each grid interval.

    Args:
        f: module mapping ``(z (N, D), a (N, A)) -> dz/dt (N, D)``.
        grid: ``(U,)`` switch times (model units), increasing.
        actions: ``(N, U, A)``; ``actions[:, u]`` is held on ``[grid[u], grid[u+1])``.
        scale: optional factor on the derivative (time rescaling): ``(N, 1)`` for the whole
            solve, or ``(N, U)`` per grid interval.
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
        j = int(i.clamp(0, self.actions.shape[1] - 1))
        dz = self.f(z, self.actions[:, j])
        if self.scale is None:
            return dz
        return dz * (self.scale[:, j : j + 1] if self.scale.shape[-1] > 1 else self.scale)


def _sub_grid(fine: torch.Tensor):
    """A torchdiffeq ``grid_constructor`` for any sub-interval ``t`` of ``fine``'s span (in
    either direction): ``t``'s ends with the points of ``fine`` strictly between them."""

    def construct(_func, _y0, t: torch.Tensor) -> torch.Tensor:
        lo, hi = torch.minimum(t[0], t[-1]), torch.maximum(t[0], t[-1])
        f = fine.to(t.dtype)
        inner = f[(f > lo) & (f < hi)]
        if t[0] > t[-1]:
            inner = inner.flip(0)
        return torch.cat([t[:1], inner, t[-1:]])

    return construct


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
    names); ``max_step`` is the largest fixed step in the units of ``grid * scale`` (see the
    module docstring)."""
    field = ZOHField(f, grid, actions, scale)
    adjoint_options = None
    if method in FIXED_SOLVERS:
        fine = solver_grid(grid, actions, max_step, scale)
        options = {"grid_constructor": lambda *_: fine, "perturb": True}
        # the adjoint solves backward one output interval at a time, and torchdiffeq asserts
        # that the solver grid starts and ends at that interval's ends: give it the part of
        # the forward grid inside the interval (perturb stays right in reverse: torchdiffeq
        # negates time, so a step's start still sees the action held on the step)
        adjoint_options = {"grid_constructor": _sub_grid(fine), "perturb": True}
        kwargs = {}
    else:
        jumps = switch_times(grid, actions, scale)
        options = {"jump_t": jumps} if jumps.shape[0] else {}
        kwargs = {"rtol": rtol, "atol": atol}
    solve = torchdiffeq.odeint_adjoint if adjoint else torchdiffeq.odeint
    if adjoint:
        kwargs["adjoint_params"] = tuple(f.parameters())
        kwargs["adjoint_options"] = dict(options) if adjoint_options is None else adjoint_options
    return solve(field, z0, grid, method=method, options=options, **kwargs)


def held_steps(
    f: nn.Module,
    z0: torch.Tensor,
    actions: torch.Tensor,
    duration: torch.Tensor,
    *,
    method: str = "rk4",
    max_step: float | None = None,
) -> torch.Tensor:
    """Integrate ``dz/dt = f(z, a)`` from ``z0 (N, D)`` over ``K`` consecutive intervals, each
    row holding ``actions[:, k] (N, A)`` for ``duration[:, k]`` model units (``(N, K)``; 0
    leaves the row where it is, negative goes back in time); returns ``(N, K + 1, D)``, the
    start and the state after each interval. Fixed-step ``method`` only; interval ``k`` takes
    ``ceil(max |duration[:, k]| / max_step)`` equal steps for every row (one when ``max_step``
    is None). Equal to :func:`odeint_zoh` on the grid ``0, 1, ..., K`` with ``scale=duration``
    up to float rounding."""
    if duration.shape != actions.shape[:2] or z0.shape[0] != actions.shape[0]:
        raise ValueError(
            f"held_steps wants z0 (N, D), actions (N, K, A), duration (N, K); got "
            f"{tuple(z0.shape)}, {tuple(actions.shape)}, {tuple(duration.shape)}"
        )
    step = fixed_step(method)
    K = actions.shape[1]
    if max_step is None:
        counts = [1] * K
    else:
        counts = step_counts(duration.abs().amax(0), max_step).tolist()
    z, out = z0, [z0]
    for k in range(K):
        a = actions[:, k]

        def field(_t, y: torch.Tensor, perturb=None, a=a) -> torch.Tensor:
            return f(y, a)

        # each row's own step length (N, 1) stands in for dt: the field is autonomous, so the
        # time arguments are unused and only ``dt * k`` terms carry the length
        h = duration[:, k : k + 1].to(z0.dtype) / counts[k]
        for _ in range(counts[k]):
            z = z + step(field, h, h, h, z)
        out.append(z)
    return torch.stack(out, 1)


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
    all rows share one solve; fixed-step methods take ``ceil(max(dt) / max_step)`` steps
    (:func:`held_steps`)."""
    if method in FIXED_SOLVERS:
        scale = dt.reshape(-1, 1).to(z.dtype)
        return held_steps(f, z, action.unsqueeze(1), scale, method=method, max_step=max_step)[:, -1]
    grid = torch.tensor([0.0, 1.0], dtype=z.dtype, device=z.device)
    out = odeint_zoh(
        f,
        z,
        grid,
        action.unsqueeze(1),
        method=method,
        max_step=max_step,
        rtol=rtol,
        atol=atol,
        scale=dt.reshape(-1, 1).to(z.dtype),
    )
    return out[-1]
