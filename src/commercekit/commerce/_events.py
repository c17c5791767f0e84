"""Business events in the Segment e-commerce v2 spec's names and property names.

Two channels, by what is at stake:

* **Browsing events** (Products Searched, Product List Viewed, Product Viewed,
  Product Added, Product Removed, Cart Viewed, Checkout Started, Checkout Step
  Completed, Payment Info Entered, Coupon Applied, Order Updated) go through
  the metrics hook's event channel (:meth:`Metrics.emit`): they never block,
  may be dropped under overload, and drops are counted there.
* **Money events** (Order Completed, Order Cancelled, Order Refunded) are
  appended to the transactional outbox (:class:`commercekit.repository.Outbox`)
  in the same unit of work as the change they describe: never lost, never
  written twice (the event id is derived from the change, so a retried unit of
  work appends nothing new). A relay publishes them (commercekit.analytics).

Every event has a unique ``event_id``. Money travels as decimal strings in
the currency's minor-unit precision (``"19.99"``), never as a float.
"""

from __future__ import annotations

import uuid
from collections.abc import Mapping
from typing import Any, Final

from commercekit.analytics import ecommerce_event, record
from commercekit.errors import InvalidInputError
from commercekit.metrics import AttributeValue, Event, Metrics
from commercekit.money import Money
from commercekit.repository import Outbox, UnitOfWork, new_event_id

from ._shared import metadata

__all__ = [
    "BROWSING_EVENTS",
    "MONEY_EVENTS",
    "OUTBOX",
    "OUTBOX_TOPIC",
    "BusinessEvents",
    "event_slug",
    "money_text",
]

BROWSING_EVENTS: Final = (
    "Products Searched",
    "Product List Viewed",
    "Product Viewed",
    "Product Added",
    "Product Removed",
    "Cart Viewed",
    "Checkout Started",
    "Checkout Step Completed",
    "Payment Info Entered",
    "Coupon Applied",
    "Order Updated",
)
MONEY_EVENTS: Final = ("Order Completed", "Order Cancelled", "Order Refunded")
OUTBOX_TOPIC: Final = "analytics"
"""The outbox topic of the money events (``commercekit.analytics``'s relay reads it)."""

OUTBOX: Final = Outbox(metadata, table_name="commercekit_outbox")
"""The default outbox of the money events: its table is on the commerce metadata."""

_NAMESPACE = uuid.UUID("6f1d3a8e-2c57-4b8e-9a51-0d7c2f4e9b13")


def event_slug(name: str) -> str:
    """The metrics event name of a Segment event: ``ecommerce.product_viewed`` and so on."""
    return "ecommerce." + name.lower().replace(" ", "_")


def money_text(amount: Money) -> str:
    """*amount* as a plain decimal string (``"19.99"``), the form events carry money in."""
    return str(amount.amount)


class BusinessEvents:
    """Emits browsing events through *metrics* and appends money events to *outbox*."""

    def __init__(self, metrics: Metrics, outbox: Outbox) -> None:
        self._metrics = metrics
        self.outbox = outbox

    def browse(self, name: str, properties: Mapping[str, AttributeValue]) -> str:
        """Emit browsing event *name* (one of :data:`BROWSING_EVENTS`); return its event id."""
        if name not in BROWSING_EVENTS:
            raise InvalidInputError(f"{name!r} is not a browsing event of the Segment spec")
        event_id = new_event_id()
        self._metrics.emit(
            Event(event_slug(name), {"event": name, "event_id": event_id, **properties})
        )
        return event_id

    def money(
        self,
        uow: UnitOfWork,
        name: str,
        dedup_key: str,
        properties: Mapping[str, Any],
        *,
        customer_id: str | None = None,
        anonymous_id: str | None = None,
    ) -> str:
        """Append money event *name* in *uow*; its id derives from *dedup_key* (one per change).

        The event carries *customer_id* and *anonymous_id* (a guest's analytics
        id) as given; with neither, the anonymous id is ``order:<order id>``.
        """
        if name not in MONEY_EVENTS:
            raise InvalidInputError(f"{name!r} is not a money event")
        event_id = str(uuid.uuid5(_NAMESPACE, f"{name}\x1f{dedup_key}"))
        who: dict[str, str] = {}
        if customer_id is not None:
            who["customer_id"] = customer_id
        if anonymous_id is not None:
            who["anonymous_id"] = anonymous_id
        if not who:
            who["anonymous_id"] = f"order:{properties.get('order_id', dedup_key)}"
        event = ecommerce_event(name, properties, event_id=event_id, **who)
        record(uow, self.outbox, event)  # the analytics wire form, topic "analytics"
        return event_id
