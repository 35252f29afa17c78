"""Lazy top-level names for a package: imported from their module on first use, so that
importing the package stays light (no torch, no stable-baselines3 until a name needs them)."""

from __future__ import annotations

import importlib
from collections.abc import Callable, Mapping
from typing import Any


def lazy_getattr(package: str, modules: Mapping[str, str]) -> Callable[[str], Any]:
    """A module-level ``__getattr__`` for ``package`` that returns ``name`` from the module
    ``modules[name]`` and raises ``AttributeError`` for any other name."""

    def __getattr__(name: str) -> Any:
        if name in modules:
            return getattr(importlib.import_module(modules[name]), name)
        raise AttributeError(f"module {package!r} has no attribute {name!r}")

    return __getattr__
