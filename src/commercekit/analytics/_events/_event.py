"""Analytics events with identity: the model, and the rules every event keeps.

Every event has a unique, time-ordered ``event_id`` (UUIDv7), a customer id or
an anonymous id, and a timestamp in milliseconds. On the wire an event is one
JSON object (:meth:`AnalyticsEvent.to_json`); event names and property names
are Segment's (``"Order Completed"``, ``order_id``, ``products``, ``total``).
Money travels as a decimal string in major units plus ``currency`` (Segment's
numbers, written exactly), never as a float. The typed constructors are in
``_segment``.
"""

from __future__ import annotations

import json
import time
from collections.abc import Mapping
from types import MappingProxyType
from typing import Any

import attrs

from commercekit.errors import InvalidInputError, UnsupportedTypeError
from commercekit.repository import new_event_id

__all__ = ["ECOMMERCE_EVENTS", "IDENTITY_EVENTS", "AnalyticsEvent"]

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
