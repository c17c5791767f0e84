"""The cart service: persisted, always-writeable carts whose lines merge like Dynamo's.

See ``docs/commerce.md`` ("Cart").
"""

from ._crdt import CartState, Dot
from ._service import Cart, Carts, CartStatus

__all__ = ["Cart", "CartState", "CartStatus", "Carts", "Dot"]
