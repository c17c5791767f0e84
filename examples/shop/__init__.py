"""An example shop assembled from commercekit's parts: the reference for wiring them.

Run it from ``examples/``: ``python -m shop serve`` (one app server) or
``python -m shop up`` (a fleet of app servers behind the front balancer, the
image edge and the analytics consumer). See ``docs/tutorial.md``.
"""

from shop.settings import Settings

__all__ = ["Settings"]
