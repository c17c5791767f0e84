"""commercekit: commerce building blocks for Python shops.

Each part is a sub-package that re-exports its public names:
``commercekit.money``, ``commercekit.errors``, ``commercekit.metrics``, and the
higher floors as they arrive. Nothing is created at import time.
"""

__version__ = "0.1.0"

__all__ = ["__version__"]
