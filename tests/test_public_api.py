"""Each public module's ``__all__`` names exactly its public names, and they are documented."""

from __future__ import annotations

import importlib
import inspect
import pkgutil

import pytest

import commercekit


def public_modules() -> list[str]:
    names = ["commercekit"]
    for info in pkgutil.walk_packages(commercekit.__path__, "commercekit."):
        if not any(part.startswith("_") for part in info.name.split(".")):
            names.append(info.name)
    return names


@pytest.mark.parametrize("name", public_modules())
def test_all_matches_the_public_names(name: str) -> None:
    module = importlib.import_module(name)
    exported = set(module.__all__)
    for attr in exported:
        assert getattr(module, attr) is not None, f"{name}.{attr} is in __all__ but missing"
    defined = {
        attr
        for attr, value in vars(module).items()
        if not attr.startswith("_")
        and not inspect.ismodule(value)
        and attr not in {"annotations", "TYPE_CHECKING", "Any"}
    }
    assert defined <= exported, f"{name} defines public names missing from __all__"


@pytest.mark.parametrize("name", public_modules())
def test_public_names_have_docstrings(name: str) -> None:
    module = importlib.import_module(name)
    assert module.__doc__
    for attr in module.__all__:
        value = getattr(module, attr)
        if inspect.isclass(value) or inspect.isfunction(value):
            assert inspect.getdoc(value), f"{name}.{attr} has no docstring"


def test_version_is_set() -> None:
    assert commercekit.__version__.count(".") == 2


def test_nothing_runs_at_import_time() -> None:
    import subprocess
    import sys

    code = (
        "import threading, commercekit, commercekit.metrics, commercekit.errors, "
        "commercekit.testing; print(threading.active_count())"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, timeout=60
    )
    assert out.stdout.strip() == "1"
