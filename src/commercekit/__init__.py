"""commercekit: commerce building blocks for Python shops.

Each part is a sub-package that re-exports its public names:
``commercekit.money``, ``commercekit.errors``, ``commercekit.metrics``, and the
higher floors as they arrive. Nothing is created at import time.
"""

import importlib as _importlib

try:
    # Written from the git tag when the package is built or installed (hatch-vcs).
    __version__: str = _importlib.import_module("commercekit._version").__version__
except ImportError:  # a checkout used in place (PYTHONPATH=src), never built or installed
    __version__ = "0.0.0+unknown"

__all__ = ["__version__"]
