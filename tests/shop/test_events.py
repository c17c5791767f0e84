"""The shop's events through Redis Streams or NATS JetStream, picked by ``SHOP_EVENTS_URL`` alone.

The app server's side publishes a browsing event and places an order (whose
Order Completed waits in the outbox); the analytics consumer's process
(``python -m shop consume``: the outbox relay and the consumer) carries both
through the machine's Redis or NATS into the aggregates the admin reads.
Each run uses a stream of its own, deleted after.
"""

from __future__ import annotations

import contextlib
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from commercekit.analytics import product_viewed
from commercekit.payments import Card
from tests.contract.test_eventlog_contract import NATS_URL, REDIS_URL, _nats_up, _redis_up
from tests.shop._procs import free_port, shop_env, start, stop, wait_ready


@contextlib.contextmanager
def events_url(kind: str) -> Iterator[str]:
    """A ``SHOP_EVENTS_URL`` on a stream of its own, deleted after."""
    name = f"ck_test_shop_{uuid.uuid4().hex[:10]}"
    if kind == "redis":
        _redis_up()
        yield f"{REDIS_URL}?stream={name}&group=analytics"
        import redis

        client = redis.Redis.from_url(REDIS_URL)
        client.delete(name)
        client.close()
    else:
        _nats_up()
        yield f"{NATS_URL}?stream={name}&durable=analytics"
        from commercekit.analytics import JetStreamLog

        cleaner = JetStreamLog(NATS_URL, stream=name)
        with contextlib.suppress(Exception):  # never created: nothing to delete
            cleaner.delete_stream()
        cleaner.close()


@pytest.mark.integration
@pytest.mark.parametrize("kind", ["redis", "nats"])
def test_events_reach_the_aggregates_through_the_configured_log(kind: str, tmp_path: Path) -> None:
    from shop.root import build_shop
    from shop.seed import seed
    from shop.settings import Settings

    with events_url(kind) as url:
        env = shop_env(tmp_path, SHOP_EVENTS_URL=url, SHOP_SEED_PRODUCTS="6")
        settings = Settings.from_env(env)
        shop = build_shop(settings)
        try:
            seed(shop)
            listing = next(i for i in shop.catalog.all() if i.available > 0)
            sku = next(s for s, n in listing.stock.items() if n > 0)
            shop.track(product_viewed(listing.id, listing.price, anonymous_id="visitor-1"))
            assert shop.flush_events() == 1
            c = shop.commerce
            cart = c.carts.create(settings.currency)
            c.carts.add(cart.id, sku, 1)
            placed = c.checkout.place(
                cart.id,
                Card("4242424242424242", 12, 2030, cvv="123"),
                region=settings.region,
                return_url="/checkout/3ds",
                anonymous_id="visitor-1",
            )
            assert placed.order is not None
            port = free_port()
            consumer = start(
                ["consume", "--port", str(port), "--consumer", "analytics-7"],
                env,
                tmp_path / "consumer.log",
            )
            try:
                wait_ready(f"http://127.0.0.1:{port}/healthz", consumer)
                deadline = time.monotonic() + 30
                health = httpx.get(f"http://127.0.0.1:{port}/healthz").json()
                while health["applied"] < 2 and time.monotonic() < deadline:
                    time.sleep(0.1)
                    health = httpx.get(f"http://127.0.0.1:{port}/healthz").json()
            finally:
                stop(consumer)
            assert health["applied"] >= 2, health
            assert health["status"] == "ok", health
            if kind == "redis":  # --consumer names it in the group (a second one for failover)
                import redis

                client = redis.Redis.from_url(REDIS_URL)
                stream = url.partition("stream=")[2].partition("&")[0]
                consumers = client.xinfo_consumers(stream, "analytics")
                client.close()
                assert [bytes(c["name"]) for c in consumers] == [b"analytics-7"], consumers
            revenue = shop.reports.revenue()
            assert [(d.orders, d.gross) for d in revenue] == [(1, placed.order.total)]
            viewed = shop.reports.funnel("checkout").total.counts[0]
            assert viewed == 1
        finally:
            shop.close()
