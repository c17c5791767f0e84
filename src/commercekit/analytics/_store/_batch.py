"""One batch's aggregate changes, summed in memory before the store writes them.

Reading an event's properties as the aggregates count them (the product a line
counts under, its quantity and price, a search's query and results) is pure:
no SQL here.
"""

from __future__ import annotations

from collections import Counter, defaultdict
from collections.abc import Callable, Sequence
from typing import Any

from commercekit.errors import CommerceKitError, InvalidInputError
from commercekit.money import Money

from ._funnel import FunnelSpec
from ._identity import Link
from ._keys import day_of, week_of

Wire = tuple[str, str, str, int, dict[str, Any]]


def _money(props: Any, field: str) -> Money:
    try:
        return Money.of(str(props[field]), str(props["currency"]))
    except KeyError as exc:
        raise InvalidInputError(f"the event has no {exc.args[0]!r} property") from exc
    except CommerceKitError as exc:
        raise InvalidInputError(f"bad {field!r}: {exc}") from exc


def _is_id(value: object) -> bool:
    return isinstance(value, str) and 0 < len(value) <= 200


ProductOf = Callable[[str], "str | None"]


def product_key(p: Any, product_of: ProductOf | None = None) -> str:
    """The product a Segment product object counts under: its ``product_id``.

    Both shapes are read: the spec's (``product_id`` the product, ``sku`` the
    variant) and the one commercekit's order events had before, whose
    ``product_id`` held the SKU (``sku`` equal to it): *product_of* maps such
    a SKU to its product (None keeps the SKU, as the reports had it).
    """
    product_id = p.get("product_id") if isinstance(p, dict) else None
    if not _is_id(product_id):
        raise InvalidInputError(f"a product needs a product_id of 1 to 200 characters, got {p!r}")
    if product_of is not None and p.get("sku") == product_id:
        mapped = product_of(product_id)
        if _is_id(mapped):
            return str(mapped)
    return str(product_id)


def _lines(props: Any, currency: str, product_of: ProductOf | None) -> list[tuple[str, int, int]]:
    products = props.get("products", [])
    if not isinstance(products, list):
        raise InvalidInputError("'products' is a list")
    out = []
    for p in products:
        product = product_key(p, product_of)
        q = p.get("quantity", 1)
        if isinstance(q, bool) or not isinstance(q, int) or q < 1:
            raise InvalidInputError(f"a quantity is a positive int, got {q!r}")
        price = _money({"price": p.get("price"), "currency": currency}, "price")
        out.append((product, price.amount_minor, q))
    return out


class _Batch:
    """The aggregate changes of one batch, summed in memory before the upserts."""

    def __init__(self) -> None:
        self.revenue: Counter[tuple[str, str, str]] = Counter()
        self.product_revenue: Counter[tuple[str, str, str, str]] = Counter()
        self.product_counts: Counter[tuple[str, str, str]] = Counter()
        self.first_add: dict[str, int] = {}
        self.last_order: dict[str, int] = {}
        self.searches: Counter[tuple[str, str]] = Counter()
        self.weeks: set[tuple[str, str]] = set()
        self.purchases: dict[str, list[str]] = defaultdict(list)
        self.funnel_rows: list[dict[str, Any]] = []
        self.links: dict[str, tuple[Link, str]] = {}  # source -> (least link, its event id)

    def add(
        self,
        event: Wire,
        funnels: Sequence[FunnelSpec],
        product_of: ProductOf | None,
    ) -> None:
        event_id, name, who, ts, props = event
        if name == "Identify" or name == "Alias":
            link = (ts, event_id, who)
            source = props["previous_id"]  # decode_wire checked it
            held = self.links.get(source)
            if held is None or link < held[0]:
                self.links[source] = (link, event_id)
            return
        day = day_of(ts)
        if name == "Order Completed":
            total = _money(props, "total")
            cur = total.currency.code
            lines = _lines(props, cur, product_of)
            self.revenue[(day, cur, "orders")] += 1
            self.revenue[(day, cur, "gross_minor")] += total.amount_minor
            for product, price, q in lines:
                self.product_revenue[(day, product, cur, "quantity")] += q
                self.product_revenue[(day, product, cur, "revenue_minor")] += price * q
                self.product_counts[(day, product, "bought")] += q
                self.purchases[who].append(product)
            self.last_order[who] = max(ts, self.last_order.get(who, ts))
            self.weeks.add((who, week_of(ts)))
        elif name == "Order Refunded":
            total = _money(props, "total")
            self.revenue[(day, total.currency.code, "refunds")] += 1
            self.revenue[(day, total.currency.code, "refunded_minor")] += total.amount_minor
        elif name in ("Product Viewed", "Product Added"):
            if not _is_id(props.get("product_id")):
                raise InvalidInputError(f"{name!r} needs a product_id of 1 to 200 characters")
            product = product_key(props, product_of)
            q = props.get("quantity", 1) if name == "Product Added" else 1
            if isinstance(q, bool) or not isinstance(q, int) or q < 1:
                raise InvalidInputError(f"a quantity is a positive int, got {q!r}")
            kind = "viewed" if name == "Product Viewed" else "added"
            self.product_counts[(day, product, kind)] += q
            if kind == "added":
                self.first_add[who] = min(ts, self.first_add.get(who, ts))
        elif name == "Products Searched":
            query, results = props.get("query"), props.get("results")
            if not isinstance(query, str) or not query or len(query) > 200:
                raise InvalidInputError(f"'Products Searched' needs a query, got {query!r}")
            if isinstance(results, bool) or not isinstance(results, int) or results < 0:
                raise InvalidInputError(f"'results' is a count, got {results!r}")
            self.searches[(query, "searches")] += 1
            self.searches[(query, "no_result")] += int(results == 0)
        for f in funnels:
            step = f.index(name)
            if step is not None:
                self.funnel_rows.append(
                    {"funnel": f.name, "customer": who, "step": step, "ts_ms": ts}
                )
