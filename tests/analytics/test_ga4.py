"""GA4 Measurement Protocol: names, parameters and the wire format, against a loopback server."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest

from commercekit.analytics import (
    GA4Client,
    LineItem,
    alias,
    checkout_started,
    ga4_event,
    ga4_payload,
    identify,
    order_completed,
    order_refunded,
    product_added,
    product_viewed,
    products_searched,
)
from commercekit.errors import InvalidInputError, UnavailableError
from commercekit.money import Money


@pytest.fixture
def collector() -> Iterator[tuple[str, list[dict[str, Any]]]]:
    received: list[dict[str, Any]] = []

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            length = int(self.headers["Content-Length"])
            raw = self.rfile.read(length)
            received.append({"path": self.path, "body": raw, "type": self.headers["Content-Type"]})
            self.send_response(204)
            self.end_headers()

        def log_message(self, *args: object) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}/mp/collect", received
    server.shutdown()
    server.server_close()
    thread.join(5)


def test_purchase_goes_out_as_ga4_expects(collector: tuple[str, list[dict[str, Any]]]) -> None:
    url, received = collector
    items = [LineItem("tee", Money.of("19.99", "EUR"), 2), LineItem("mug", Money.of("0.10", "EUR"))]
    order = order_completed(
        "o-1", Money.of("40.08", "EUR"), items, customer_id="c1", timestamp_ms=1_700_000_000_000
    )
    client = GA4Client("G-TEST123", "s3cret-value", endpoint=url)
    search_at = 1_700_000_090_000  # a minute and a half later, in the same request
    searched = products_searched("red hat", results=0, customer_id="c1", timestamp_ms=search_at)
    assert client.send([order, searched]) == 1
    (req,) = received
    query = parse_qs(urlsplit(req["path"]).query)
    assert query == {"measurement_id": ["G-TEST123"], "api_secret": ["s3cret-value"]}
    assert req["type"] == "application/json"
    assert b'"value":40.08' in req["body"]  # a JSON number, written from the exact decimal
    body = json.loads(req["body"])
    assert body["client_id"] == "c1"
    assert body["user_id"] == "c1"
    assert body["timestamp_micros"] == 1_700_000_000_000_000
    purchase, search = body["events"]
    assert purchase["name"] == "purchase"
    assert purchase["params"]["transaction_id"] == "o-1"
    assert purchase["params"]["currency"] == "EUR"
    assert purchase["params"]["items"] == [
        {"item_id": "tee", "price": 19.99, "quantity": 2},
        {"item_id": "mug", "price": 0.1, "quantity": 1},
    ]
    assert search == {
        "name": "search",
        "params": {"search_term": "red hat"},
        "timestamp_micros": search_at * 1000,  # each event at its own time, not the first's
    }
    assert purchase["timestamp_micros"] == 1_700_000_000_000_000
    assert "s3cret" not in repr(client)


def test_mapping_and_errors() -> None:
    added = product_added("tee", Money.of("5.00", "JPY"), 3, anonymous_id="a1")
    assert ga4_event(added)["name"] == "add_to_cart"
    assert ga4_event(added)["params"]["value"].text == "15"
    client = GA4Client("G-X", "secret-2", endpoint="http://127.0.0.1:9/mp/collect", timeout_s=1)
    with pytest.raises(UnavailableError) as info:
        client.send([added])
    assert "secret-2" not in str(info.value)
    with pytest.raises(InvalidInputError):
        GA4Client("G-X", "")


def test_checkout_and_refund_carry_ga4s_required_parameters() -> None:
    items = [LineItem("tee", Money.of("19.99", "EUR"), 2)]
    begin = ga4_event(checkout_started("o-1", Money.of("39.98", "EUR"), items, customer_id="c1"))
    assert begin["name"] == "begin_checkout"
    assert begin["params"]["value"].text == "39.98"  # from Segment's `value`
    assert begin["params"]["currency"] == "EUR"
    assert [i["item_id"] for i in begin["params"]["items"]] == ["tee"]
    refund = ga4_event(order_refunded("o-1", Money.of("5.00", "EUR"), customer_id="c1"))
    assert refund["name"] == "refund"
    assert refund["params"]["transaction_id"] == "o-1"
    assert (refund["params"]["value"].text, refund["params"]["currency"]) == ("5.00", "EUR")


def test_a_visitor_signing_in_goes_out_with_user_id_from_the_sign_in_on(
    collector: tuple[str, list[dict[str, Any]]],
) -> None:
    """GA4's user_id is the request's: events before and after sign-in go in two requests
    of the same client, the later ones (the sign-in's ``login`` first) with the user id."""
    url, received = collector
    eur = Money.of("20.00", "EUR")
    events = [
        product_viewed("tee", eur, sku="TEE-M", anonymous_id="v7", timestamp_ms=1_000),
        identify("cus_1", "v7", timestamp_ms=2_000),
        product_added("tee", eur, sku="TEE-M", customer_id="cus_1", anonymous_id="v7"),
    ]
    assert GA4Client("G-X", "s", endpoint=url).send(events) == 2
    before, after = (json.loads(r["body"]) for r in received)
    assert before["client_id"] == after["client_id"] == "v7"
    assert "user_id" not in before
    assert after["user_id"] == "cus_1"
    assert [e["name"] for e in before["events"]] == ["view_item"]
    assert [e["name"] for e in after["events"]] == ["login", "add_to_cart"]
    (item,) = before["events"][0]["params"]["items"]
    assert (item["item_id"], item["item_variant"]) == ("tee", "TEE-M")
    assert ga4_event(alias("v7", "cus_1"))["name"] == "login"
    with pytest.raises(InvalidInputError, match="one user"):
        ga4_payload(events[1:] + events[:1], client_id="v7")
