"""The one way commercekit imports an optional dependency: :func:`require`."""

from __future__ import annotations

import importlib
from types import ModuleType

from commercekit.errors import MissingExtraError

__all__ = ["missing_extra", "require"]


def missing_extra(feature: str, extra: str, cause: ImportError | None = None) -> MissingExtraError:
    """The error saying that *feature* needs the ``[extra]`` extra, and how to install it."""
    missing = f" ({cause.name} is not installed)" if cause is not None and cause.name else ""
    return MissingExtraError(
        f"{feature} needs the [{extra}] extra{missing}: pip install 'commercekit[{extra}]'"
    )


def require(module: str, *, extra: str, feature: str) -> ModuleType:
    """Import and return *module*, which *feature* needs from the ``[extra]`` extra.

    Raises:
        MissingExtraError: *module* (or something it imports) is not installed.
    """
    try:
        return importlib.import_module(module)
    except ImportError as exc:
        raise missing_extra(feature, extra, exc) from exc
