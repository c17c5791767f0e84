"""The cart service: always-writeable carts whose lines merge like Dynamo's, in a swappable store.

``Carts`` keeps its carts in a :class:`CartStore`: :class:`SqlCartStore` (the
default, the commerce database) or :class:`RedisCartStore` (Redis, with an
expiry refreshed on every write). See ``docs/commerce.md`` ("Cart").
"""

from ._crdt import CartState, Dot
from ._redis import RedisCartStore
from ._service import Cart, Carts
from ._sql import SqlCartStore
from ._store import CartChange, CartRecord, CartStatus, CartStore

__all__ = [
    "Cart",
    "CartChange",
    "CartRecord",
    "CartState",
    "CartStatus",
    "CartStore",
    "Carts",
    "Dot",
    "RedisCartStore",
    "SqlCartStore",
]
