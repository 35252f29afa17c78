"""torchdiffeq's private solver table, read in one place.

torchdiffeq's public API (``odeint``, ``odeint_adjoint``) does not say which ``method`` names are
fixed-grid solvers, i.e. take the ``grid_constructor`` and ``perturb`` options; its private
``torchdiffeq._impl`` does (``SOLVERS``, ``FixedGridODESolver``). Checked with torchdiffeq 0.2.5.
"""

from __future__ import annotations

from importlib.metadata import version

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

__all__ = ["FIXED_SOLVERS"]
