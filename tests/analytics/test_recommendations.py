"""Item-to-item recommendations find planted bought-together pairs among noise."""

from __future__ import annotations

import os
import random
import time
from pathlib import Path

from commercekit.analytics import (
    AnalyticsStore,
    Delivery,
    LineItem,
    Reports,
    order_completed,
)
from commercekit.money import Money
from commercekit.repository import Database, Node, ReplicatedTopology, sqlite_engine


def history(orders: int, products: int, pairs: int, seed: int = 5) -> list[bytes]:
    """One order per customer: half hold a planted pair, every one holds random noise."""
    rng = random.Random(seed)
    price = Money.of("9.99", "EUR")
    out = []
    for n in range(orders):
        items: list[str] = []
        if rng.random() < 0.5:
            k = rng.randrange(pairs)
            items += [f"a{k}", f"b{k}"]
        items += [f"p{rng.randrange(products)}" for _ in range(rng.randint(1, 4))]
        lines = [LineItem(p, price) for p in dict.fromkeys(items)]
        total = price * len(lines)
        event = order_completed(f"o{n}", total, lines, customer_id=f"c{n}", timestamp_ms=n)
        out.append(event.to_bytes())
    return out


def apply_all(store: AnalyticsStore, bodies: list[bytes], batch: int = 1000) -> None:
    for i in range(0, len(bodies), batch):
        store.apply([Delivery(str(i + j), b) for j, b in enumerate(bodies[i : i + batch])])


def test_planted_pairs_are_in_each_others_top_10(tmp_path: Path) -> None:
    pairs = 50
    large = os.environ.get("COMMERCEKIT_LARGE") == "1"  # the full size
    orders, products = (100_000, 10_000) if large else (3_000, 600)
    bodies = history(orders=orders, products=products, pairs=pairs)
    store = AnalyticsStore(
        Database(ReplicatedTopology(Node("p", sqlite_engine(tmp_path / "a.db"))))
    )
    store.create()
    started = time.perf_counter()
    apply_all(store, bodies[:-20])
    build_s = time.perf_counter() - started
    started = time.perf_counter()
    apply_all(store, bodies[-20:], batch=1)  # incremental: one order per transaction
    per_order_ms = (time.perf_counter() - started) / 20 * 1000
    reports = Reports(store)
    found = 0
    for k in range(pairs):
        a, b = f"a{k}", f"b{k}"
        found += b in [r.product for r in reports.also_bought(a, k=10)]
        found += a in [r.product for r in reports.also_bought(b, k=10)]
    print(
        f"{orders} orders over {products} products: "
        f"build {build_s:.2f} s, incremental {per_order_ms:.2f} ms per order, "
        f"{found}/{2 * pairs} planted partners in the top 10"
    )
    assert found >= 0.95 * 2 * pairs
    noise = reports.also_bought("p7", k=10)
    assert all(0 < r.score <= 1 for r in noise)
    assert reports.also_bought("unknown") == []


def test_reports_count_products_by_product_id_and_read_the_old_sku_shape(tmp_path: Path) -> None:
    """Segment's shape (the product in product_id, the variant in sku) counts by product; an
    order line of the shape commercekit wrote before (the SKU in product_id, sku equal to
    it) still reads, and counts under its product when the store can map SKUs."""
    price = Money.of("5.00", "EUR")
    new = order_completed(
        "o1",
        price * 3,
        [LineItem("tee", price, 2, sku="TEE-M"), LineItem("mug", price, sku="MUG-1")],
        customer_id="c1",
        timestamp_ms=1,
    )
    old_body = (
        b'{"event_id":"old-1","event":"Order Completed","timestamp_ms":2,"customer_id":"c2",'
        b'"properties":{"order_id":"o0","total":"10.00","revenue":"10.00","currency":"EUR",'
        b'"products":[{"product_id":"TEE-L","sku":"TEE-L","price":"5.00","quantity":1},'
        b'{"product_id":"MUG-1","sku":"MUG-1","price":"5.00","quantity":1}]}}'
    )
    skus = {"TEE-M": "tee", "TEE-L": "tee", "MUG-1": "mug"}
    for product_of, bought in (
        (skus.get, {"tee": 3, "mug": 2}),
        (None, {"tee": 2, "mug": 1, "TEE-L": 1, "MUG-1": 1}),  # as the reports had them
    ):
        engine = sqlite_engine(tmp_path / f"{product_of is None}.db")
        store = AnalyticsStore(
            Database(ReplicatedTopology(Node("p", engine))), product_of=product_of
        )
        store.create()
        result = store.apply([Delivery("1", new.to_bytes()), Delivery("2", old_body)])
        assert result.applied == 2
        reports = Reports(store)
        assert {p.product: p.count for p in reports.top_products("bought")} == bought
        if product_of is not None:
            assert [r.product for r in reports.also_bought("tee")] == ["mug"]
            assert {p.product for p in reports.product_revenue()} == {"tee", "mug"}
