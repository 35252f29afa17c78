"""The packages' top levels: every name in ``__all__`` resolves, and importing them stays light
(torch and stable-baselines3 load only when a name that needs them is used)."""

from __future__ import annotations

import importlib
import subprocess
import sys

import pytest


@pytest.mark.parametrize("package", ["worldmodel", "envs", "agents"])
def test_every_public_name_resolves(package):
    module = importlib.import_module(package)
    missing = [name for name in module.__all__ if getattr(module, name, None) is None]
    assert not missing, f"{package}.__all__ names what it does not have: {missing}"
    with pytest.raises(AttributeError, match="no attribute"):
        module.__getattr__("no_such_name")


def test_top_level_imports_stay_light():
    code = (
        "import sys, worldmodel, envs, agents; "
        "print(sorted(m for m in ('torch', 'stable_baselines3') if m in sys.modules))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"


@pytest.mark.parametrize("package", ["worldmodel", "envs", "agents"])
def test_no_public_name_is_shadowed_by_a_submodule(package):
    """Importing a submodule binds its name on the package, so a top-level name equal to a
    submodule's would turn into that module once anything imported it."""
    import pkgutil

    module = importlib.import_module(package)
    submodules = {m.name for m in pkgutil.iter_modules(module.__path__)}
    assert not submodules & set(module.__all__)
