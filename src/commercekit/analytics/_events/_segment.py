"""Typed constructors for Segment's specs: the e-commerce events (spec v2) and the
identity calls (``identify``, ``alias``), and metrics events wrapped as analytics events.

Each builds an :class:`AnalyticsEvent` with Segment's event and property names;
money goes in as :class:`commercekit.money.Money` and out as a decimal string.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from typing import Any

import attrs

from commercekit.errors import InvalidInputError, NotFoundError, UnsupportedTypeError
from commercekit.metrics import Event
from commercekit.money import Money

from ._event import ECOMMERCE_EVENTS, AnalyticsEvent, _text

__all__ = [
    "LineItem",
    "alias",
    "checkout_started",
    "ecommerce_event",
    "from_metrics_event",
    "identify",
    "order_completed",
    "order_refunded",
    "product_added",
    "product_removed",
    "product_viewed",
    "products_searched",
]


@attrs.frozen
class LineItem:
    """A product line: Segment's ``product_id``, ``sku``, ``price`` (unit price), ``quantity``.

    *product_id* is the product's id (what reports and recommendations count);
    *sku* the variant bought, when the product has several.
    """

    product_id: str
    price: Money
    quantity: int = 1
    sku: str | None = attrs.field(default=None, kw_only=True)

    def __attrs_post_init__(self) -> None:
        _text("product_id", self.product_id)
        if self.sku is not None:
            _text("sku", self.sku)
        if not isinstance(self.price, Money):
            raise UnsupportedTypeError(f"a price is Money, got {type(self.price).__name__}")
        q = self.quantity
        if isinstance(q, bool) or not isinstance(q, int) or q < 1:
            raise InvalidInputError(f"a quantity is a positive int, got {q!r}")

    def to_json(self) -> dict[str, Any]:
        """Segment's product object."""
        out: dict[str, Any] = {"product_id": self.product_id}
        if self.sku is not None:
            out["sku"] = self.sku
        out["price"] = str(self.price.amount)
        out["quantity"] = self.quantity
        return out


def _money(value: object, what: str) -> Money:
    if not isinstance(value, Money):
        raise UnsupportedTypeError(f"{what} is Money, got {type(value).__name__}")
    return value


def _ident(kwargs: Mapping[str, Any]) -> dict[str, Any]:
    allowed = {"customer_id", "anonymous_id", "timestamp_ms", "event_id"}
    extra = set(kwargs) - allowed
    if extra:
        raise InvalidInputError(f"unknown keyword arguments {sorted(extra)}")
    return dict(kwargs)


def ecommerce_event(name: str, properties: Mapping[str, Any], **ident: Any) -> AnalyticsEvent:
    """An event of Segment's e-commerce spec by name; an unknown name raises NotFoundError."""
    if name not in ECOMMERCE_EVENTS:
        raise NotFoundError(
            f"{name!r} is not an event of Segment's e-commerce spec v2 "
            "(names are Title Case, such as 'Order Completed'); build a custom "
            "AnalyticsEvent for other events"
        )
    return AnalyticsEvent(name, properties, **_ident(ident))


def products_searched(query: str, *, results: int, **ident: Any) -> AnalyticsEvent:
    """``Products Searched``; *results* (how many products matched) finds no-result searches."""
    if isinstance(results, bool) or not isinstance(results, int) or results < 0:
        raise InvalidInputError(f"results is a count of products, got {results!r}")
    return ecommerce_event(
        "Products Searched", {"query": _text("query", query), "results": results}, **ident
    )


def product_viewed(
    product_id: str, price: Money, *, sku: str | None = None, **ident: Any
) -> AnalyticsEvent:
    """``Product Viewed``."""
    item = LineItem(product_id, _money(price, "price"), sku=sku)
    props = {**item.to_json(), "currency": price.currency.code}
    props.pop("quantity")
    return ecommerce_event("Product Viewed", props, **ident)


def product_added(
    product_id: str,
    price: Money,
    quantity: int = 1,
    *,
    sku: str | None = None,
    cart_id: str | None = None,
    **ident: Any,
) -> AnalyticsEvent:
    """``Product Added`` (to a cart); *sku* is the variant added."""
    item = LineItem(product_id, _money(price, "price"), quantity, sku=sku)
    props = {**item.to_json(), "currency": price.currency.code}
    if cart_id is not None:
        props["cart_id"] = _text("cart_id", cart_id)
    return ecommerce_event("Product Added", props, **ident)


def product_removed(
    product_id: str, price: Money, quantity: int = 1, *, sku: str | None = None, **ident: Any
) -> AnalyticsEvent:
    """``Product Removed`` (from a cart); *sku* is the variant removed."""
    item = LineItem(product_id, _money(price, "price"), quantity, sku=sku)
    return ecommerce_event(
        "Product Removed", {**item.to_json(), "currency": price.currency.code}, **ident
    )


def _order_props(
    order_id: str, total: Money, products: Iterable[LineItem], *, amount: str = "total"
) -> dict[str, Any]:
    items = list(products)
    for item in items:
        if not isinstance(item, LineItem):
            raise UnsupportedTypeError(f"products are LineItems, got {type(item).__name__}")
        if item.price.currency != total.currency:
            raise InvalidInputError(
                f"product {item.product_id} is priced in {item.price.currency.code}, "
                f"the order in {total.currency.code}"
            )
    return {
        "order_id": _text("order_id", order_id),
        amount: str(total.amount),
        "currency": total.currency.code,
        "products": [item.to_json() for item in items],
    }


def checkout_started(
    order_id: str, total: Money, products: Sequence[LineItem], **ident: Any
) -> AnalyticsEvent:
    """``Checkout Started``; *total* is what the order is worth: Segment's ``value``."""
    props = _order_props(order_id, _money(total, "total"), products, amount="value")
    return ecommerce_event("Checkout Started", props, **ident)


def order_completed(
    order_id: str, total: Money, products: Sequence[LineItem], **ident: Any
) -> AnalyticsEvent:
    """``Order Completed``: a paid order; *total* is what the customer paid."""
    props = _order_props(order_id, _money(total, "total"), products)
    props["revenue"] = props["total"]
    return ecommerce_event("Order Completed", props, **ident)


def order_refunded(order_id: str, total: Money, **ident: Any) -> AnalyticsEvent:
    """``Order Refunded``; *total* is the amount refunded."""
    return ecommerce_event(
        "Order Refunded", _order_props(order_id, _money(total, "total"), []), **ident
    )


def _link_ident(call: str, ids: Mapping[str, str], ident: Mapping[str, Any]) -> dict[str, Any]:
    # What identify and alias check alike: two distinct ids, then the identity keywords.
    # (An id that is one of the call's parameters cannot come in **ident: Python refuses it.)
    for key, value in ids.items():
        _text(key, value)
    first, second = ids.values()
    if first == second:
        raise InvalidInputError(f"{call} links two ids, got {first!r} twice")
    return _ident(ident)


def identify(
    customer_id: str, anonymous_id: str, *, traits: Mapping[str, Any] | None = None, **ident: Any
) -> AnalyticsEvent:
    """``Identify``: the visitor known as *anonymous_id* is customer *customer_id*.

    Segment's ``identify`` call, sent when a visitor signs in or signs up:
    the aggregates count the anonymous id's events, before and after this
    one, as the customer's (see "Identity" in ``docs/analytics.md``).
    *traits* are Segment's traits (plain JSON; keep secrets out of them).
    """
    ids = {"customer_id": customer_id, "anonymous_id": anonymous_id}
    ident = _link_ident("identify", ids, ident)
    props = {} if traits is None else {"traits": dict(traits)}
    return AnalyticsEvent(
        "Identify", props, customer_id=customer_id, anonymous_id=anonymous_id, **ident
    )


def alias(previous_id: str, customer_id: str, **ident: Any) -> AnalyticsEvent:
    """``Alias``: the events of *previous_id* are customer *customer_id*'s (Segment's alias)."""
    ident = _link_ident("alias", {"previous_id": previous_id, "customer_id": customer_id}, ident)
    if "anonymous_id" in ident:
        raise InvalidInputError("anonymous_id is alias's own argument")
    return AnalyticsEvent("Alias", {"previous_id": previous_id}, customer_id=customer_id, **ident)


def from_metrics_event(event: Event, *, anonymous_id: str = "system") -> AnalyticsEvent:
    """Wrap a :class:`commercekit.metrics.Event` as an analytics event.

    The attributes ``event`` (a Segment name, as the commerce layer emits
    ``ecommerce.product_viewed`` with ``event="Product Viewed"``), ``event_id``,
    ``customer_id`` and ``anonymous_id`` become the event's name and identity;
    the rest are its properties. Without an ``event_id`` the event gets a new
    one, and without a customer or anonymous id *anonymous_id*.
    """
    attrs_ = dict(event.attributes)
    name: Any = attrs_.pop("event", event.name)  # AnalyticsEvent refuses one that is no name
    event_id = attrs_.pop("event_id", None)
    customer, anonymous = attrs_.pop("customer_id", None), attrs_.pop("anonymous_id", None)
    if customer is None and anonymous is None:
        anonymous = anonymous_id
    ident: dict[str, Any] = {} if event_id is None else {"event_id": event_id}
    return AnalyticsEvent(
        name,
        attrs_,
        customer_id=None if customer is None else str(customer),
        anonymous_id=None if anonymous is None else str(anonymous),
        timestamp_ms=int(event.at_s * 1000),
        **ident,
    )
