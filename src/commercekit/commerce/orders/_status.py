"""The three status axes of an order, each with one transition table.

::

    order:       placed ──> completed
                   └──────> cancelled
    payment:     authorized ──> paid ──> partially_refunded ──> refunded
                   └──> voided    └────────────────────────────> refunded
    fulfilment:  unfulfilled ──> partially_fulfilled ──> fulfilled
                   └────────────────────────────────────> fulfilled
                 fulfilled ──> partially_returned ──> returned
                   └──────────────────────────────> returned

``transition(axis_from, to)`` raises :class:`InvalidTransitionError` for any
move not in its table; terminal states have no way out. A status change in
the database is a compare-and-set UPDATE from the status it was read in, so
of two concurrent changes (a cancel and a fulfilment) exactly one wins.
"""

from __future__ import annotations

import enum
from collections.abc import Mapping
from typing import TypeVar

from commercekit.errors import InvalidTransitionError

__all__ = [
    "FULFILMENT_TRANSITIONS",
    "ORDER_TRANSITIONS",
    "PAYMENT_TRANSITIONS",
    "FulfilmentStatus",
    "OrderStatus",
    "PaymentStatus",
    "transition",
]


class OrderStatus(enum.Enum):
    """The order itself: placed, then completed or cancelled."""

    PLACED = "placed"
    COMPLETED = "completed"
    CANCELLED = "cancelled"


class PaymentStatus(enum.Enum):
    """The money of an order."""

    AUTHORIZED = "authorized"
    PAID = "paid"
    PARTIALLY_REFUNDED = "partially_refunded"
    REFUNDED = "refunded"
    VOIDED = "voided"


class FulfilmentStatus(enum.Enum):
    """The goods of an order."""

    UNFULFILLED = "unfulfilled"
    PARTIALLY_FULFILLED = "partially_fulfilled"
    FULFILLED = "fulfilled"
    PARTIALLY_RETURNED = "partially_returned"
    RETURNED = "returned"


_O, _P, _F = OrderStatus, PaymentStatus, FulfilmentStatus

ORDER_TRANSITIONS: Mapping[OrderStatus, frozenset[OrderStatus]] = {
    _O.PLACED: frozenset({_O.COMPLETED, _O.CANCELLED}),
    _O.COMPLETED: frozenset(),
    _O.CANCELLED: frozenset(),
}
PAYMENT_TRANSITIONS: Mapping[PaymentStatus, frozenset[PaymentStatus]] = {
    _P.AUTHORIZED: frozenset({_P.PAID, _P.VOIDED}),
    _P.PAID: frozenset({_P.PARTIALLY_REFUNDED, _P.REFUNDED}),
    _P.PARTIALLY_REFUNDED: frozenset({_P.PARTIALLY_REFUNDED, _P.REFUNDED}),
    _P.REFUNDED: frozenset(),
    _P.VOIDED: frozenset(),
}
FULFILMENT_TRANSITIONS: Mapping[FulfilmentStatus, frozenset[FulfilmentStatus]] = {
    _F.UNFULFILLED: frozenset({_F.PARTIALLY_FULFILLED, _F.FULFILLED}),
    _F.PARTIALLY_FULFILLED: frozenset({_F.PARTIALLY_FULFILLED, _F.FULFILLED}),
    _F.FULFILLED: frozenset({_F.PARTIALLY_RETURNED, _F.RETURNED}),
    _F.PARTIALLY_RETURNED: frozenset({_F.PARTIALLY_RETURNED, _F.RETURNED}),
    _F.RETURNED: frozenset(),
}

_TABLES: dict[type[enum.Enum], Mapping[object, frozenset[object]]] = {
    OrderStatus: ORDER_TRANSITIONS,  # type: ignore[dict-item]
    PaymentStatus: PAYMENT_TRANSITIONS,  # type: ignore[dict-item]
    FulfilmentStatus: FULFILMENT_TRANSITIONS,  # type: ignore[dict-item]
}


S = TypeVar("S", OrderStatus, PaymentStatus, FulfilmentStatus)


def transition(current: S, to: S) -> S:
    """Return *to* if its axis's table allows ``current -> to``; else InvalidTransitionError."""
    table = _TABLES[type(current)]
    if type(to) is not type(current) or to not in table[current]:
        raise InvalidTransitionError(
            f"{type(current).__name__} cannot go from {current.value} to {to.value}"
        )
    return to
