"""torchdiffeq's private solver table, read in one place.

torchdiffeq's public API (``odeint``, ``odeint_adjoint``) does not say which ``method`` names are
fixed-grid solvers, i.e. take the ``grid_constructor`` and ``perturb`` options; its private
``torchdiffeq._impl`` does (``SOLVERS``, ``FixedGridODESolver``), and its solver classes hold
each method's one-step formula (``_step_func``), which :func:`fixed_step` hands out so that a
loop over held-action intervals can take torchdiffeq's steps without ``odeint``'s per-call and
per-evaluation bookkeeping. Checked with torchdiffeq 0.2.5.
"""

from __future__ import annotations

from collections.abc import Callable
from functools import cache
from importlib.metadata import version

import torch

try:
    from torchdiffeq._impl.odeint import SOLVERS
    from torchdiffeq._impl.solvers import FixedGridODESolver
except ImportError as err:  # a release that moved its private modules
    raise ImportError(
        f"torchdiffeq {version('torchdiffeq')} no longer has torchdiffeq._impl.odeint.SOLVERS or "
        "torchdiffeq._impl.solvers.FixedGridODESolver, which worldmodel/_compat/torchdiffeq.py "
        f"reads (written against 0.2.5): {err}"
    ) from err

#: torchdiffeq's fixed-grid ``method`` names (they take ``grid_constructor`` and ``perturb``)
FIXED_SOLVERS: frozenset[str] = frozenset(
    name for name, solver in SOLVERS.items() if issubclass(solver, FixedGridODESolver)
)

#: ``step(func, t0, dt, t1, y0) -> dy``: one step's increment; ``func(t, y)`` is the field
Step = Callable[..., torch.Tensor]


@cache  # one solver object per method: it is asked for on every imagined step
def fixed_step(method: str) -> Step:
    """The one-step increment of torchdiffeq's fixed-grid ``method`` (``rk4`` is its 3/8-rule
    RK4, as ``odeint`` takes it), without perturbation (the caller steps inside an interval on
    which the field is smooth). ``ValueError`` for a name that is not a fixed-grid method."""
    if method not in FIXED_SOLVERS:
        raise ValueError(
            f"{method!r} is not one of torchdiffeq's fixed-grid methods {sorted(FIXED_SOLVERS)}"
        )
    solver = SOLVERS[method](func=None, y0=torch.zeros(0), atol=0.0, perturb=False)

    def step(func: Callable, t0, dt, t1, y0: torch.Tensor) -> torch.Tensor:
        return solver._step_func(func, t0, dt, t1, y0)[0]

    return step


__all__ = ["FIXED_SOLVERS", "Step", "fixed_step"]
