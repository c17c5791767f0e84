"""Analytics events with identity, and typed constructors for Segment's e-commerce spec v2.

Every event has a unique, time-ordered ``event_id`` (UUIDv7), a customer id or
an anonymous id, and a timestamp in milliseconds. On the wire an event is one
JSON object (:meth:`AnalyticsEvent.to_json`); event names and property names
are Segment's (``"Order Completed"``, ``order_id``, ``products``, ``total``).
Money travels as a decimal string in major units plus ``currency`` (Segment's
numbers, written exactly), never as a float.
"""

# Longer than 400 lines because it is the event model with every constructor of Segment's
# specs that commercekit builds (the e-commerce events and the identity calls): one module
# to read against the spec, in a folder at its 15-module limit.

from __future__ import annotations

import json
import time
from collections.abc import Iterable, Mapping, Sequence
from types import MappingProxyType
from typing import Any

import attrs

from commercekit.errors import InvalidInputError, NotFoundError, UnsupportedTypeError
from commercekit.metrics import Event
from commercekit.money import Money
from commercekit.repository import new_event_id

__all__ = [
    "ECOMMERCE_EVENTS",
    "IDENTITY_EVENTS",
    "AnalyticsEvent",
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

ECOMMERCE_EVENTS = frozenset(
    {
        "Products Searched",
        "Product List Viewed",
        "Product List Filtered",
        "Promotion Viewed",
        "Promotion Clicked",
        "Product Clicked",
        "Product Viewed",
        "Product Added",
        "Product Removed",
        "Cart Viewed",
        "Checkout Started",
        "Checkout Step Viewed",
        "Checkout Step Completed",
        "Payment Info Entered",
        "Order Updated",
        "Order Completed",
        "Order Refunded",
        "Order Cancelled",
        "Coupon Entered",
        "Coupon Applied",
        "Coupon Denied",
        "Coupon Removed",
        "Product Added to Wishlist",
        "Product Removed from Wishlist",
        "Wishlist Product Added to Cart",
        "Product Shared",
        "Cart Shared",
        "Product Reviewed",
    }
)
"""The event names of Segment's e-commerce spec v2."""

IDENTITY_EVENTS = frozenset({"Identify", "Alias"})
"""The names of the identity events: Segment's ``identify`` and ``alias`` calls.

An ``Identify`` carries a customer id and an anonymous id, an ``Alias`` a
customer id and the ``previous_id`` property: either links the anonymous (or
previous) id to the customer id, so the aggregates count both as one person.
"""

_MAX_TEXT = 200
_MAX_ID = 64  # the outbox's and the processed table's key: longer ids could not be stored


_SCALARS = (str, int, bool, type(None))


def _check_json(value: Any, where: str) -> None:
    # Exact type checks first: this runs on every consumed event.
    t = type(value)
    if t is dict:
        for k, v in value.items():
            if type(k) is not str:
                raise UnsupportedTypeError(f"{where} has a non-str key {k!r}")
            if type(v) not in _SCALARS:
                _check_json(v, f"{where}.{k}")
        return
    if t is list or t is tuple:
        for i, v in enumerate(value):
            if type(v) not in _SCALARS:
                _check_json(v, f"{where}[{i}]")
        return
    if isinstance(value, float):
        raise UnsupportedTypeError(
            f"{where} is a float ({value!r}); money and counts travel as decimal strings or ints"
        )
    if isinstance(value, Mapping):
        _check_json(dict(value), where)
    elif not isinstance(value, _SCALARS):
        raise UnsupportedTypeError(f"{where} is a {type(value).__name__}, not plain JSON")


def _freeze(value: Mapping[str, Any]) -> Mapping[str, Any]:
    if not isinstance(value, Mapping):
        raise UnsupportedTypeError(f"event properties are a mapping, got {type(value).__name__}")
    _check_json(value, "properties")
    return MappingProxyType(dict(value))


def _text(what: str, value: object, most: int = _MAX_TEXT) -> str:
    if not isinstance(value, str) or not value or len(value) > most:
        raise InvalidInputError(f"{what} is a str of 1 to {most} characters, got {value!r}")
    return value


def linked_id(name: str, customer_id: Any, anonymous_id: Any, props: Mapping[str, Any]) -> str:
    """The id an identity event links to its customer id (refused when it links nothing)."""
    source = anonymous_id if name == "Identify" else props.get("previous_id")
    what = "an anonymous_id" if name == "Identify" else "a 'previous_id' property"
    if customer_id is None:
        raise InvalidInputError(f"{name!r} needs a customer_id (the id it links to)")
    if not isinstance(source, str) or not 0 < len(source) <= _MAX_TEXT:
        raise InvalidInputError(f"{name!r} needs {what} of 1 to {_MAX_TEXT} characters")
    if source == customer_id:
        raise InvalidInputError(f"{name!r} links {source!r} to itself")
    return source


def _check_identity(
    name: object, event_id: object, customer_id: object, anonymous_id: object, ts: object
) -> None:
    """The rules every event's name, id, customer and timestamp keep (one place for both paths)."""
    _text("an event name", name)
    _text("an event id", event_id, _MAX_ID)
    if customer_id is None and anonymous_id is None:
        raise InvalidInputError(
            f"event {name!r} needs a customer_id or an anonymous_id (Segment's rule)"
        )
    if customer_id is not None:
        _text("customer_id", customer_id)
    if anonymous_id is not None:
        _text("anonymous_id", anonymous_id)
    if type(ts) is not int or not 0 <= ts < 1 << 47:
        raise InvalidInputError(f"timestamp_ms is an int of epoch milliseconds, got {ts!r}")


@attrs.frozen
class AnalyticsEvent:
    """One customer-behaviour event with identity.

    Build the e-commerce ones with the typed constructors (:func:`order_completed`
    and the rest) or :func:`ecommerce_event`; custom events directly.
    """

    name: str
    properties: Mapping[str, Any] = attrs.field(converter=_freeze)
    customer_id: str | None = None
    anonymous_id: str | None = None
    timestamp_ms: int = attrs.field(factory=lambda: int(time.time() * 1000))
    event_id: str = attrs.field(factory=new_event_id)

    def __attrs_post_init__(self) -> None:
        _check_identity(
            self.name, self.event_id, self.customer_id, self.anonymous_id, self.timestamp_ms
        )
        if self.name in IDENTITY_EVENTS:
            linked_id(self.name, self.customer_id, self.anonymous_id, self.properties)

    @property
    def who(self) -> str:
        """The customer id, or the anonymous id when there is none."""
        return self.customer_id if self.customer_id is not None else str(self.anonymous_id)

    def to_json(self) -> dict[str, Any]:
        """The wire form: a JSON object with Segment's field names."""
        out: dict[str, Any] = {
            "event_id": self.event_id,
            "event": self.name,
            "timestamp_ms": self.timestamp_ms,
            "properties": dict(self.properties),
        }
        if self.customer_id is not None:
            out["customer_id"] = self.customer_id
        if self.anonymous_id is not None:
            out["anonymous_id"] = self.anonymous_id
        return out

    def to_bytes(self) -> bytes:
        """:meth:`to_json` as compact UTF-8 JSON."""
        return json.dumps(self.to_json(), separators=(",", ":"), sort_keys=True).encode()

    @classmethod
    def from_json(cls, data: object) -> AnalyticsEvent:
        """Read the wire form back; a malformed one raises :class:`InvalidInputError`."""
        if not isinstance(data, Mapping):
            raise InvalidInputError(f"an event is a JSON object, got {type(data).__name__}")
        for field in ("event_id", "event", "timestamp_ms"):
            if field not in data:
                raise InvalidInputError(f"the event has no {field!r}")
        props = data.get("properties", {})
        try:
            return cls(
                name=data["event"],
                properties=props,
                customer_id=data.get("customer_id"),
                anonymous_id=data.get("anonymous_id"),
                timestamp_ms=data["timestamp_ms"],
                event_id=data["event_id"],
            )
        except UnsupportedTypeError as exc:
            raise InvalidInputError(str(exc)) from exc

    @classmethod
    def from_bytes(cls, body: bytes) -> AnalyticsEvent:
        """Parse one wire message (UTF-8 JSON); malformed input raises InvalidInputError."""
        try:
            data = json.loads(body)
        except (ValueError, UnicodeDecodeError) as exc:
            raise InvalidInputError(f"the message is not JSON: {exc}") from exc
        except RecursionError:  # the decoder recurses once a level: a few thousand '['
            raise InvalidInputError("the message is not JSON: nested too deep") from None
        return cls.from_json(data)


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


def identify(
    customer_id: str, anonymous_id: str, *, traits: Mapping[str, Any] | None = None, **ident: Any
) -> AnalyticsEvent:
    """``Identify``: the visitor known as *anonymous_id* is customer *customer_id*.

    Segment's ``identify`` call, sent when a visitor signs in or signs up:
    the aggregates count the anonymous id's events, before and after this
    one, as the customer's (see "Identity" in ``docs/analytics.md``).
    *traits* are Segment's traits (plain JSON; keep secrets out of them).
    """
    _text("customer_id", customer_id)
    _text("anonymous_id", anonymous_id)
    if customer_id == anonymous_id:
        raise InvalidInputError(f"identify links two ids, got {customer_id!r} twice")
    ident = _ident(ident)
    for key in ("customer_id", "anonymous_id"):
        if key in ident:
            raise InvalidInputError(f"{key} is identify's own argument")
    props = {} if traits is None else {"traits": dict(traits)}
    return AnalyticsEvent(
        "Identify", props, customer_id=customer_id, anonymous_id=anonymous_id, **ident
    )


def alias(previous_id: str, customer_id: str, **ident: Any) -> AnalyticsEvent:
    """``Alias``: the events of *previous_id* are customer *customer_id*'s (Segment's alias)."""
    _text("previous_id", previous_id)
    _text("customer_id", customer_id)
    if previous_id == customer_id:
        raise InvalidInputError(f"alias links two ids, got {customer_id!r} twice")
    ident = _ident(ident)
    for key in ("customer_id", "anonymous_id"):
        if key in ident:
            raise InvalidInputError(f"{key} is alias's own argument")
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
