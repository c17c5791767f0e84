"""The order service: three status axes with one transition table each, an event log, returns.

See ``docs/commerce.md`` ("Orders").
"""

from ._base import order_number
from ._model import Order, OrderEvent, OrderLine, OrderPage
from ._service import Orders
from ._status import (
    FULFILMENT_TRANSITIONS,
    ORDER_TRANSITIONS,
    PAYMENT_TRANSITIONS,
    FulfilmentStatus,
    OrderStatus,
    PaymentStatus,
    transition,
)

__all__ = [
    "FULFILMENT_TRANSITIONS",
    "ORDER_TRANSITIONS",
    "PAYMENT_TRANSITIONS",
    "FulfilmentStatus",
    "Order",
    "OrderEvent",
    "OrderLine",
    "OrderPage",
    "OrderStatus",
    "Orders",
    "PaymentStatus",
    "order_number",
    "transition",
]
