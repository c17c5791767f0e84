"""The order service's values."""

from __future__ import annotations

import attrs

from commercekit.money import Money

from ._status import FulfilmentStatus, OrderStatus, PaymentStatus

__all__ = ["Order", "OrderEvent", "OrderLine", "OrderPage"]


@attrs.frozen
class OrderLine:
    """One line as ordered: the price snapshot, and what was fulfilled, returned, refunded."""

    line_no: int
    sku: str
    qty: int
    unit_price: Money
    discount: Money
    tax: Money
    gross: Money
    fulfilled: int
    returned: int
    refunded: Money


@attrs.frozen
class Order:
    """An order with its three status axes and its totals (the parts add up to ``total``)."""

    id: str
    number: str
    checkout_key: str
    customer_id: str | None
    status: OrderStatus
    payment_status: PaymentStatus
    fulfilment_status: FulfilmentStatus
    subtotal: Money
    discount: Money
    shipping: Money
    tax: Money
    total: Money
    captured: Money
    refunded: Money
    payment_id: str
    reservation_id: str
    voucher: str | None
    version: int
    lines: tuple[OrderLine, ...]
    anonymous_id: str | None = None
    """The guest's analytics id the checkout carried (ties a guest's browsing to the order)."""

    @property
    def shipping_paid(self) -> Money:
        """The shipping the order was charged, with its tax: the total beyond its lines."""
        return self.total - sum((ln.gross for ln in self.lines), Money.zero(self.total.currency))

    @property
    def shipping_refunded(self) -> Money:
        """The shipping paid back so far: the refunds beyond what went to the lines."""
        lines = sum((ln.refunded for ln in self.lines), Money.zero(self.total.currency))
        return self.refunded - lines


@attrs.frozen
class OrderEvent:
    """One entry of an order's append-only event log."""

    id: int
    kind: str
    data: dict[str, object]
    at: float


@attrs.frozen
class OrderPage:
    """One page of orders, newest first; pass *next_after* as ``after=`` (None: last page)."""

    orders: tuple[Order, ...]
    next_after: str | None
