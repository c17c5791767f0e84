"""GA4: Segment e-commerce events mapped to Google Analytics 4's recommended events.

``ga4_event`` maps one :class:`AnalyticsEvent` to GA4's name and parameters
(``Order Completed`` -> ``purchase`` with ``transaction_id``, ``value``,
``currency`` and ``items``); ``GA4Client`` sends batches to the Measurement
Protocol (``POST /mp/collect?measurement_id=...&api_secret=...``, at most 25
events per request). GA4's ``user_id`` belongs to a request, so events go in
requests per client and customer: a visitor's events before sign-in go
without it, those from the sign-in (``Identify`` -> ``login``) on with it.
Money goes out as a JSON number written from its exact decimal text, never
through a float. The API secret never appears in a repr
or an error.
"""

from __future__ import annotations

import json
import re
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Sequence
from decimal import Decimal, InvalidOperation
from typing import Any

from commercekit.errors import InvalidInputError, UnavailableError

from ._event import AnalyticsEvent

__all__ = ["GA4_EVENT_NAMES", "GA4Client", "ga4_event", "ga4_payload"]

GA4_EVENT_NAMES = {
    "Products Searched": "search",
    "Product List Viewed": "view_item_list",
    "Product Clicked": "select_item",
    "Product Viewed": "view_item",
    "Product Added": "add_to_cart",
    "Product Removed": "remove_from_cart",
    "Cart Viewed": "view_cart",
    "Checkout Started": "begin_checkout",
    "Payment Info Entered": "add_payment_info",
    "Order Completed": "purchase",
    "Order Refunded": "refund",
    "Promotion Viewed": "view_promotion",
    "Promotion Clicked": "select_promotion",
    "Product Added to Wishlist": "add_to_wishlist",
    "Product Shared": "share",
    "Identify": "login",
    "Alias": "login",
}
"""Segment e-commerce names and the GA4 recommended event each becomes."""

_MAX_BATCH = 25


class _Number:
    """A decimal written into the JSON text as a bare number."""

    def __init__(self, text: str) -> None:
        self.text = text


def _number(value: object) -> _Number:
    try:
        d = Decimal(str(value))
    except InvalidOperation as exc:
        raise InvalidInputError(f"not a decimal amount: {value!r}") from exc
    if not d.is_finite():
        raise InvalidInputError(f"not a finite amount: {value!r}")
    return _Number(format(d, "f"))


def _snake(name: str) -> str:
    text = re.sub(r"[^0-9a-zA-Z]+", "_", name).strip("_").lower()
    return (text if text[:1].isalpha() else f"e_{text}")[:40]


def ga4_event(event: AnalyticsEvent) -> dict[str, Any]:
    """GA4's ``{"name": ..., "params": {...}}`` for *event* (others become snake_case)."""
    p = event.properties
    params: dict[str, Any] = {}
    if "currency" in p:
        params["currency"] = p["currency"]
    if "total" in p or "value" in p:  # Segment's order total, or a checkout's value
        params["value"] = _number(p["total"] if "total" in p else p["value"])
    elif "price" in p:
        params["value"] = _number(Decimal(str(p["price"])) * int(p.get("quantity", 1)))
    if "order_id" in p:
        params["transaction_id"] = p["order_id"]
    if "query" in p:
        params["search_term"] = p["query"]
    products = p.get("products")
    if "product_id" in p:
        products = [p]
    if products:
        params["items"] = [
            {
                "item_id": item["product_id"],
                **({"item_variant": item["sku"]} if item.get("sku") else {}),
                **({"price": _number(item["price"])} if "price" in item else {}),
                "quantity": int(item.get("quantity", 1)),
            }
            for item in products
        ]
    return {"name": GA4_EVENT_NAMES.get(event.name, _snake(event.name)), "params": params}


def _dump(value: Any) -> str:
    numbers: list[str] = []

    def default(obj: object) -> str:
        if isinstance(obj, _Number):
            numbers.append(obj.text)
            return f"\x00{len(numbers) - 1}\x00"
        raise TypeError(type(obj).__name__)

    text = json.dumps(value, default=default, separators=(",", ":"))
    return re.sub(r'"\\u0000(\d+)\\u0000"', lambda m: numbers[int(m.group(1))], text)


def ga4_payload(events: Sequence[AnalyticsEvent], *, client_id: str) -> str:
    """The Measurement Protocol JSON body for up to 25 events of one client and one user.

    The events' customer id is the request's ``user_id``; events of several
    customers (or of a customer and a visitor not signed in) raise
    :class:`InvalidInputError`: send them in separate requests (``GA4Client`` does).
    """
    if not 1 <= len(events) <= _MAX_BATCH:
        raise InvalidInputError(
            f"a GA4 request carries 1 to {_MAX_BATCH} events, got {len(events)}"
        )
    if len({e.customer_id for e in events}) > 1:
        raise InvalidInputError(
            "a GA4 request's user_id is one user's: these events name several customers "
            "(or a customer and a visitor not signed in)"
        )
    # Each event carries its own time: the request's timestamp_micros is only the default
    # of events without one (GA4's hierarchy), so a batch keeps its events' order in time.
    body: dict[str, Any] = {
        "client_id": client_id,
        "timestamp_micros": events[0].timestamp_ms * 1000,
        "events": [{**ga4_event(e), "timestamp_micros": e.timestamp_ms * 1000} for e in events],
    }
    if events[0].customer_id is not None:
        body["user_id"] = events[0].customer_id
    return _dump(body)


class GA4Client:
    """Sends events to GA4's Measurement Protocol (an ``EventLog``-free destination)."""

    def __init__(
        self,
        measurement_id: str,
        api_secret: str,
        *,
        endpoint: str = "https://www.google-analytics.com/mp/collect",
        timeout_s: float = 5.0,
    ) -> None:
        if not measurement_id or not api_secret:
            raise InvalidInputError("GA4 needs a measurement id and an API secret")
        if urllib.parse.urlsplit(endpoint).scheme not in ("http", "https"):
            raise InvalidInputError(f"a GA4 endpoint is an http(s) URL, got {endpoint!r}")
        self.measurement_id = measurement_id
        self._secret = api_secret
        self.endpoint = endpoint
        self._timeout_s = timeout_s

    def __repr__(self) -> str:
        return f"GA4Client(measurement_id={self.measurement_id!r}, endpoint={self.endpoint!r})"

    def send(self, events: Sequence[AnalyticsEvent]) -> int:
        """Send *events*, grouped by client and user, in batches of 25; returns requests made.

        The client is the event's anonymous id (the customer id without one; an
        ``Alias``'s previous id), the user its customer id.
        """
        by_client: dict[tuple[str, str | None], list[AnalyticsEvent]] = {}
        for e in events:
            client = e.anonymous_id or e.who
            if e.name == "Alias" and e.anonymous_id is None:
                client = str(e.properties.get("previous_id", client))
            by_client.setdefault((client, e.customer_id), []).append(e)
        query = urllib.parse.urlencode(
            {"measurement_id": self.measurement_id, "api_secret": self._secret}
        )
        sent = 0
        for (client_id, _user), batch in by_client.items():
            for i in range(0, len(batch), _MAX_BATCH):
                body = ga4_payload(batch[i : i + _MAX_BATCH], client_id=client_id).encode()
                request = urllib.request.Request(  # noqa: S310 - http(s) only, checked above
                    f"{self.endpoint}?{query}",
                    data=body,
                    headers={"Content-Type": "application/json"},
                    method="POST",
                )
                try:
                    timeout = self._timeout_s
                    with urllib.request.urlopen(request, timeout=timeout) as answer:  # noqa: S310
                        answer.read()
                except (urllib.error.URLError, OSError) as exc:
                    host = urllib.parse.urlsplit(self.endpoint).netloc
                    reason = getattr(exc, "code", None) or type(exc).__name__
                    raise UnavailableError(f"GA4 at {host} refused or failed: {reason}") from None
                sent += 1
        return sent
