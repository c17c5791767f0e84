"""The commerce domain: catalog, pricing, carts, inventory, orders and the checkout saga."""

from ._shared import MAX_QUANTITY, metadata

__all__ = ["MAX_QUANTITY", "metadata"]
