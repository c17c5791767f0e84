"""Events: identity, typed errors for bad input, Segment's names, and the wire decoder.

The consumer's wire decoder keeps exactly the rules of ``AnalyticsEvent.from_bytes``.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Callable
from decimal import Decimal

import pytest

from commercekit.analytics import (
    ECOMMERCE_EVENTS,
    AnalyticsEvent,
    LineItem,
    checkout_started,
    ecommerce_event,
    order_completed,
    order_refunded,
    product_added,
    product_removed,
    product_viewed,
    products_searched,
)
from commercekit.analytics._events._wire import decode_wire
from commercekit.errors import InvalidInputError, NotFoundError, UnsupportedTypeError
from commercekit.money import Money
from tests.analytics._history import generate, malformed_bodies


def test_decode_wire_reads_what_from_bytes_reads() -> None:
    for e in generate(300, seed=3):
        body = e.to_bytes()
        event = AnalyticsEvent.from_bytes(body)
        props = dict(event.properties)
        if event.name == "Identify":  # the consumer reads the id it links, as an alias has it
            props = {"previous_id": event.anonymous_id}
        want = (event.event_id, event.name, event.who, event.timestamp_ms, props)
        assert decode_wire(body) == want


BAD = [
    *malformed_bodies(),
    b"\xff\xfe",
    b"[1, 2]",
    b'{"event_id":"e","event":"X","timestamp_ms":true,"customer_id":"c","properties":{}}',
    b'{"event_id":"e","event":"X","timestamp_ms":1,"customer_id":"c","properties":[]}',
    b'{"event_id":"e","event":"X","timestamp_ms":1,"customer_id":"c","properties":{"a":[NaN]}}',
    b'{"event_id":"e","event":"X","timestamp_ms":1,"customer_id":"c","properties":{"q":1e3}}',
    b'{"event_id":"","event":"X","timestamp_ms":1,"customer_id":"c","properties":{}}',
    json.dumps(
        {"event_id": "e", "event": "X", "timestamp_ms": 1, "anonymous_id": "a" * 201}
    ).encode(),
    # Identity events that link nothing: no id to link, no customer, or an id to itself.
    b'{"event_id":"e","event":"Identify","timestamp_ms":1,"customer_id":"c","properties":{}}',
    b'{"event_id":"e","event":"Identify","timestamp_ms":1,"anonymous_id":"a","properties":{}}',
    b'{"event_id":"e","event":"Identify","timestamp_ms":1,"customer_id":"c","anonymous_id":"c"}',
    b'{"event_id":"e","event":"Alias","timestamp_ms":1,"customer_id":"c","properties":{}}',
    b'{"event_id":"e","event":"Alias","timestamp_ms":1,"customer_id":"c",'
    b'"properties":{"previous_id":7}}',
    # Nested past the decoder's recursion: RecursionError, not a typed error, before.
    b"[" * 100_000,
    b'{"event_id":"e","event":"X","timestamp_ms":1,"customer_id":"c","properties":{"a":'
    + b"[" * 100_000
    + b"}}",
]


@pytest.mark.parametrize("body", BAD, ids=range(len(BAD)))
def test_decode_wire_refuses_what_from_bytes_refuses(body: bytes) -> None:
    with pytest.raises(InvalidInputError):
        AnalyticsEvent.from_bytes(body)
    with pytest.raises(InvalidInputError):
        decode_wire(body)


# -- bad input gets a typed error (DESIGN.md: "Bad input gets a clear, typed error") ----------

EUR = Money.of("19.99", "EUR")


@pytest.mark.parametrize("event_id", ["", None, 7, "e" * 65])
def test_an_event_without_a_usable_id_is_refused(event_id: object) -> None:
    with pytest.raises(InvalidInputError, match="event id"):
        AnalyticsEvent("Product Viewed", {}, customer_id="c1", event_id=event_id)  # type: ignore[arg-type]
    body = {"event": "Product Viewed", "timestamp_ms": 1, "customer_id": "c1", "properties": {}}
    with pytest.raises(InvalidInputError, match="event_id"):
        AnalyticsEvent.from_json(body)  # no id at all
    with pytest.raises(InvalidInputError, match="event_id"):
        decode_wire(json.dumps(body).encode())


def test_an_event_id_is_time_ordered_and_unique() -> None:
    ids = [product_viewed("tee", EUR, customer_id="c1").event_id for _ in range(2000)]
    assert len(set(ids)) == len(ids)
    assert all(uuid.UUID(i).version == 7 for i in ids)
    stamps = [uuid.UUID(i).int >> 80 for i in ids]  # UUIDv7: the millisecond leads
    assert stamps == sorted(stamps)  # ids made later sort later, to the millisecond


def test_an_event_needs_a_customer_or_an_anonymous_id() -> None:
    with pytest.raises(InvalidInputError, match="customer_id or an anonymous_id"):
        product_viewed("tee", EUR)


@pytest.mark.parametrize("name", ["Order Placed", "order completed", "Product Purchased", ""])
def test_an_unknown_name_in_the_typed_constructor_is_refused(name: str) -> None:
    with pytest.raises(NotFoundError, match="Segment's e-commerce spec v2"):
        ecommerce_event(name, {}, customer_id="c1")


def test_unknown_identity_keywords_are_refused() -> None:
    with pytest.raises(InvalidInputError, match="unknown keyword"):
        product_viewed("tee", EUR, customer_id="c1", user_id="u1")


@pytest.mark.parametrize(
    "build",
    [
        lambda: product_viewed("tee", 19.99, customer_id="c1"),  # type: ignore[arg-type]
        lambda: product_added("tee", 19.99, 2, customer_id="c1"),  # type: ignore[arg-type]
        lambda: LineItem("tee", 19.99),  # type: ignore[arg-type]
        lambda: order_completed("o1", 19.99, [LineItem("tee", EUR)], customer_id="c1"),  # type: ignore[arg-type]
        lambda: order_refunded("o1", 5.0, customer_id="c1"),  # type: ignore[arg-type]
        lambda: checkout_started("o1", Decimal("19.99"), [], customer_id="c1"),  # type: ignore[arg-type]
        lambda: AnalyticsEvent("Custom", {"amount": 1.5}, customer_id="c1"),
        lambda: AnalyticsEvent("Custom", {"nested": [{"x": 0.1}]}, customer_id="c1"),
    ],
    ids=["viewed", "added", "line", "completed", "refunded", "decimal", "custom", "nested"],
)
def test_money_as_a_float_is_refused(build: Callable[[], object]) -> None:
    with pytest.raises(UnsupportedTypeError):
        build()


def test_an_order_priced_in_two_currencies_is_refused() -> None:
    with pytest.raises(InvalidInputError, match="priced in USD"):
        order_completed("o1", EUR, [LineItem("tee", Money.of("1.00", "USD"))], customer_id="c1")


# -- Segment's e-commerce spec v2: the events' names and property names ------------------------

# The spec's properties of each event the typed constructors build, plus what commercekit
# adds: `currency` beside every price (Money is never a bare number) and `results` on
# Products Searched (the count that finds searches with no result).
SPEC_PROPERTIES = {
    "Products Searched": {"query"} | {"results"},
    "Product Viewed": {"product_id", "price", "quantity", "currency", "value"},
    "Product Added": {"cart_id", "product_id", "price", "quantity"} | {"currency"},
    "Product Removed": {"cart_id", "product_id", "price", "quantity"} | {"currency"},
    "Checkout Started": {"order_id", "value", "revenue", "currency", "products"},
    "Order Completed": {"order_id", "total", "revenue", "subtotal", "currency", "products"},
    "Order Refunded": {"order_id", "total", "currency", "products"},
}
PRODUCT_PROPERTIES = {"product_id", "price", "quantity"}


def test_typed_constructors_use_the_specs_names_and_property_names() -> None:
    items = [LineItem("tee", EUR, 2)]
    who = {"customer_id": "c1"}
    built = [
        products_searched("red hat", results=0, **who),
        product_viewed("tee", EUR, **who),
        product_added("tee", EUR, 2, cart_id="cart-1", **who),
        product_removed("tee", EUR, **who),
        checkout_started("o1", EUR * 2, items, **who),
        order_completed("o1", EUR * 2, items, **who),
        order_refunded("o1", EUR, **who),
    ]
    assert [e.name for e in built] == list(SPEC_PROPERTIES)
    assert {e.name for e in built} <= ECOMMERCE_EVENTS
    for event in built:
        props = set(event.properties)
        assert props <= SPEC_PROPERTIES[event.name], (event.name, props)
        for product in event.properties.get("products", []):
            assert set(product) <= PRODUCT_PROPERTIES
    checkout = built[4].properties
    assert (checkout["value"], checkout["currency"]) == ("39.98", "EUR")  # the spec's `value`
    order = built[5].properties
    assert (order["total"], order["revenue"], order["currency"]) == ("39.98", "39.98", "EUR")
    assert order["products"] == [{"product_id": "tee", "price": "19.99", "quantity": 2}]
