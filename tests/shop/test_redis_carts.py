"""The shop with its carts in Redis (``SHOP_CART_STORE=redis``): browse, sign in, check out.

One app server is uvicorn in a thread of this process (real HTTP on
loopback) over SQLite, with the carts in the machine's Redis under a key
prefix of this test's own, deleted after. The guest cart merges into the
customer's at sign-in (the account itself read and written through the
shop's AsyncDatabase), the checkout orders once, and the ordered cart is
closed in Redis.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.commerce.test_cart_store_contract import REDIS_URL, drop_prefix, redis_store
from tests.shop._procs import ADDRESS, shop_env, shop_in_thread
from tests.shop.test_storefront import in_stock_sku


@pytest.fixture(scope="module")
def redis_app(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, str]]:
    """(app server URL, the carts' Redis key prefix)."""
    from shop.settings import Settings

    prefix = f"ck-test:shop:{uuid.uuid4().hex[:12]}:"
    redis_store(prefix).close()  # skips (fails under REQUIRE_SERVICES) without Redis
    data = tmp_path_factory.mktemp("shop-redis")
    env = shop_env(
        data,
        SHOP_CART_STORE="redis",
        SHOP_CART_REDIS_URL=REDIS_URL,
        SHOP_CART_REDIS_PREFIX=prefix,
        SHOP_SEED_PRODUCTS="6",
        SHOP_SERVER_NAME="app-redis",
    )
    assert Settings.from_env(env).cart_store == "redis"
    try:
        with shop_in_thread(env, "shop-redis") as (url, _):
            yield url, prefix
    finally:
        drop_prefix(prefix)


def test_a_checkout_with_the_carts_in_redis(redis_app: tuple[str, str]) -> None:
    import redis

    base, prefix = redis_app
    client = redis.Redis.from_url(REDIS_URL)
    try:
        with httpx.Client(base_url=base) as c:
            _, sku = in_stock_sku(c)
            c.post("/api/cart/add", json={"sku": sku, "qty": 2})
            guest = c.get("/api/cart").json()
            assert [(ln["sku"], ln["qty"]) for ln in guest["lines"]] == [(sku, 2)]
            assert client.exists(f"{prefix}c:{guest['cart_id']}")  # the cart lives in Redis
            r = c.post("/api/signin", json={"email": "ada@example.com", "password": "secret-1"})
            assert r.status_code == 200
            assert r.json()["created"]
            cart = r.json()["cart"]
            assert [(ln["sku"], ln["qty"]) for ln in cart["lines"]] == [(sku, 2)]
            merged = json.loads(client.get(f"{prefix}c:{guest['cart_id']}") or b"{}")
            assert merged["s"] == "merged"
            again = c.post("/api/signin", json={"email": "ada@example.com", "password": "wrong-1"})
            assert again.status_code == 409
            placed = c.post("/api/checkout", json={**ADDRESS, "card_number": "4242424242424242"})
            assert placed.status_code == 201
            order = placed.json()["order"]
            ordered = json.loads(client.get(f"{prefix}c:{cart['cart_id']}") or b"{}")
            assert ordered["s"] == "completed"
            assert 0 < client.pttl(f"{prefix}c:{cart['cart_id']}") <= 10 * 86_400_000
            assert c.get("/api/cart").json()["lines"] == []
            assert [o["id"] for o in c.get("/api/orders").json()["orders"]] == [order["id"]]
    finally:
        client.close()


def test_the_settings_refuse_an_unknown_cart_store(tmp_path: Path) -> None:
    from shop.settings import Settings

    from commercekit.errors import ConfigurationError

    with pytest.raises(ConfigurationError):
        Settings.from_env(shop_env(tmp_path, SHOP_CART_STORE="memcached"))
    assert Settings.from_env(shop_env(tmp_path)).cart_store == "sql"
