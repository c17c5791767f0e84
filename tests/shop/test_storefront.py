"""The storefront and its JSON API over real HTTP, straight to one of the fleet's app servers."""

from __future__ import annotations

import contextlib
import json
import re
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
import sqlalchemy as sa

from commercekit.analytics import SqlEventLog
from tests.shop._procs import ADDRESS, csrf_of


def in_stock_sku(c: httpx.Client, product_id: str | None = None) -> tuple[str, str]:
    """(product id, SKU) of a variant with stock."""
    products = c.get("/api/products", params={"in_stock": "1"}).json()["products"]
    for p in products:
        if product_id and p["id"] != product_id:
            continue
        stock = c.get(f"/api/products/{p['id']}").json()["stock"]
        for sku, n in stock.items():
            if n > 2:
                return p["id"], sku
    raise AssertionError("no product in stock")


def test_listing_search_filters_and_pages(app_server: tuple[str, Path]) -> None:
    base, _ = app_server
    with httpx.Client(base_url=base) as c:
        everything = c.get("/api/products").json()
        assert len(everything["products"]) == 12
        assert everything["next_after"] == everything["products"][-1]["id"]
        second = c.get("/api/products", params={"after": everything["next_after"]}).json()
        assert len(second["products"]) == 12  # 24 products: two keyset pages
        assert second["next_after"] is None
        assert {p["id"] for p in second["products"]}.isdisjoint(
            p["id"] for p in everything["products"]
        )
        mugs = c.get("/api/products", params={"category": "mugs"}).json()
        assert len(mugs["products"]) == 6
        assert mugs["next_after"] is None
        assert all(p["category"] == "mugs" for p in mugs["products"])
        red = c.get("/api/products", params={"q": "red tee"}).json()["products"]
        assert red
        assert all("Red" in p["name"] and "Tee" in p["name"] for p in red)
        cheap = c.get("/api/products", params={"max_price": "20"}).json()["products"]
        assert all(float(p["price"]) <= 20 for p in cheap)
        stocked = c.get("/api/products", params={"in_stock": "1"}).json()["products"]
        assert all(p["available"] > 0 for p in stocked)
        assert c.get("/api/products", params={"max_price": "lots"}).status_code == 400
        html = c.get("/", params={"q": "mug"}).text
        assert 'id="result-count"' in html
        assert "Mug" in html


def test_product_page_has_cdn_image_urls_and_stock(app_server: tuple[str, Path]) -> None:
    base, _ = app_server
    with httpx.Client(base_url=base) as c:
        pid, _sku = in_stock_sku(c)
        page = c.get(f"/products/{pid}").text
        # Served through the edge (SHOP_ASSET_BASE), under a fingerprinted name.
        image = re.search(r'<img src="(http://127\.0\.0\.1:\d+/assets/products/[^"]+)"', page)
        assert image is not None
        assert re.search(r"\.[0-9a-f]{12}\.svg$", image.group(1))
        assert "in stock" in page
        got = httpx.get(image.group(1))
        assert got.status_code == 200
        assert "immutable" in got.headers["cache-control"]
        assert c.get("/assets/products/unknown.svg").status_code == 404
        assert c.get("/products/nope").status_code == 404


def test_product_page_shows_what_customers_also_bought(app_server: tuple[str, Path]) -> None:
    """Two products ordered together: each page shows the other (the consumer applied it)."""
    base, data = app_server
    with httpx.Client(base_url=base) as c:
        mugs = c.get("/api/products", params={"category": "mugs", "in_stock": "1"}).json()
        first, second = mugs["products"][-2:]  # not the pages the other tests order from
        for p in (first, second):
            stock = c.get(f"/api/products/{p['id']}").json()["stock"]
            sku = next(s for s, n in stock.items() if n > 0)
            assert c.post("/api/cart/add", json={"sku": sku, "qty": 1}).status_code == 200
        r = c.post("/api/checkout", json={**ADDRESS, "card_number": "4242424242424242"})
        assert r.status_code == 201, r.text
        deadline = time.monotonic() + 30
        page = c.get(f"/products/{first['id']}").text
        while 'id="also-bought"' not in page and time.monotonic() < deadline:
            time.sleep(0.25)
            page = c.get(f"/products/{first['id']}").text
    section = page.partition('id="also-bought"')[2].partition("</div>\n")[0]
    assert f'href="/products/{second["id"]}"' in section, page
    title = re.search(r"<title>(.*?)</title>", page, re.S)
    assert title is not None
    assert first["name"] in title.group(1)
    assert "<" not in title.group(1), title.group(1)  # the page's title only
    with _admin(base, data) as (admin, _):  # top products by product, as the other charts
        dashboard = admin.get("/admin").text
    top = dashboard.partition('id="chart-top"')[2].partition("</svg>")[0]
    assert f">{second['id']}<" in top, top
    assert f">{second['id'].upper()}-" not in top, top


def test_cart_add_change_remove_with_csrf(app_server: tuple[str, Path]) -> None:
    base, _ = app_server
    with httpx.Client(base_url=base) as c:
        pid, sku = in_stock_sku(c)
        token = csrf_of(c.get(f"/products/{pid}").text)
        assert c.post("/cart/add", data={"sku": sku, "qty": "1"}).status_code == 403
        r = c.post("/cart/add", data={"sku": sku, "qty": "2", "csrf": token})
        assert r.status_code == 303
        assert c.get("/api/cart").json()["lines"][0]["qty"] == 2
        c.post("/cart/set", data={"sku": sku, "qty": "3", "csrf": token})
        assert c.get("/api/cart").json()["lines"][0]["qty"] == 3
        c.post("/cart/remove", data={"sku": sku, "csrf": token})
        assert c.get("/api/cart").json()["lines"] == []
        # The JSON API refuses a form-encoded body (what a cross-site form would send).
        assert c.post("/api/cart/add", data={"sku": sku}).status_code == 403
        assert c.post("/api/cart/add", json={"sku": "NOPE-1"}).status_code == 404
        assert c.post("/api/cart/add", json={"sku": sku, "qty": "x"}).status_code == 400


def test_guest_checkout_decline_and_3ds(app_server: tuple[str, Path]) -> None:
    base, data = app_server
    with httpx.Client(base_url=base) as c:
        _, sku = in_stock_sku(c)
        c.post("/api/cart/add", json={"sku": sku, "qty": 1})
        declined = c.post("/api/checkout", json={**ADDRESS, "card_number": "4000000000009995"})
        assert declined.status_code == 402
        assert "insufficient funds" in declined.json()["message"]
        token = csrf_of(c.get("/checkout").text)
        page = c.post(
            "/checkout", data={**ADDRESS, "card_number": "4000 0000 0000 0002", "csrf": token}
        )
        assert page.status_code == 402
        assert "declined the card" in page.text
        assert 'value="4000' not in page.text  # the card number is never echoed back
        r = c.post("/checkout", data={**ADDRESS, "card_number": "4000000000003220", "csrf": token})
        assert r.status_code == 303
        assert r.headers["location"].startswith("/checkout/3ds/")
        challenge = c.get(r.headers["location"]).text
        assert "Confirm payment" in challenge
        r = c.post(r.headers["location"], data={"outcome": "pass", "csrf": token})
        assert r.status_code == 303
        assert r.headers["location"].startswith("/orders/")
        order_page = c.get(r.headers["location"]).text
        assert "Thank you" in order_page
        assert re.search(r"CK-[0-9A-Z]{4}-[0-9A-Z]{4}", order_page)
        assert c.get("/api/cart").json()["lines"] == []
        assert len(c.get("/api/orders").json()["orders"]) == 1
    with httpx.Client(base_url=base) as stranger:  # another visitor cannot read the order
        oid = r.headers["location"].split("/")[2].split("?")[0]
        assert stranger.get(f"/api/orders/{oid}").status_code == 404
    # The browsing events reached the event log, the order's in the outbox.
    log = SqlEventLog(sa.create_engine(f"sqlite:///{data / 'events.db'}"), group="test")
    names: set[str] = set()
    deadline = time.monotonic() + 5
    while time.monotonic() < deadline and "Checkout Started" not in names:
        names |= {json.loads(d.body)["event"] for d in log.consume(500, 0.2)}
    log.close()
    assert {"Product Viewed", "Product Added", "Checkout Started"} <= names


def test_sign_in_merges_the_guest_cart(app_server: tuple[str, Path]) -> None:
    base, _ = app_server
    with httpx.Client(base_url=base) as c:
        _, sku = in_stock_sku(c)
        c.post("/api/cart/add", json={"sku": sku, "qty": 2})
        r = c.post("/api/signin", json={"email": "grace@example.com", "password": "secret-1"})
        assert r.status_code == 200
        assert r.json()["created"]
        assert r.json()["cart"]["lines"][0]["qty"] == 2
        assert (
            c.post(
                "/api/signin", json={"email": "grace@example.com", "password": "wrong-pw"}
            ).status_code
            == 409
        )
    with httpx.Client(base_url=base) as later:  # the same customer on another device
        _, other = in_stock_sku(later)
        later.post("/api/cart/add", json={"sku": other, "qty": 1})
        r = later.post("/api/signin", json={"email": "grace@example.com", "password": "secret-1"})
        assert r.status_code == 200
        assert not r.json()["created"]
        assert {line["sku"] for line in r.json()["cart"]["lines"]} >= {other}
        placed = later.post("/api/checkout", json={**ADDRESS, "card_number": "4242424242424242"})
        assert placed.status_code == 201
        oid = placed.json()["order"]["id"]
    # The customer's orders (Orders.for_customer) follow them to a new session.
    with httpx.Client(base_url=base) as third:
        assert third.get(f"/api/orders/{oid}").status_code == 404
        third.post("/api/signin", json={"email": "grace@example.com", "password": "secret-1"})
        assert [o["id"] for o in third.get("/api/orders").json()["orders"]] == [oid]
        assert third.get(f"/api/orders/{oid}").status_code == 200


def test_health_metrics_and_access_log(app_server: tuple[str, Path]) -> None:
    base, data = app_server
    with httpx.Client(base_url=base) as c:
        assert c.get("/healthz").json()["status"] == "ok"
        c.get("/products/p001")
        text = c.get("/metrics").text
        assert "shop_http_requests_total{" in text
        assert 'route="/products/:id"' in text
        assert "shop_http_request_duration_seconds_bucket" in text
    line = re.compile(
        r'^127\.0\.0\.1 - - \[[^\]]+\] "GET /products/p001 HTTP/1\.1" 200 \d+ '
        r"\d+\.\d{4} app-1$",
        re.M,
    )
    deadline = time.monotonic() + 5  # the access log is flushed every 0.5 s
    while not line.search((data / "logs" / "app-1.log").read_text()):
        assert time.monotonic() < deadline, "no access-log line for the request"
        time.sleep(0.1)


def test_admin_needs_its_password_and_runs_orders_and_stock(app_server: tuple[str, Path]) -> None:
    base, data = app_server
    password = (data / "admin.password").read_text().strip()
    with httpx.Client(base_url=base) as c:
        _, sku = in_stock_sku(c)
        c.post("/api/cart/add", json={"sku": sku, "qty": 1})
        placed = c.post("/api/checkout", json={**ADDRESS, "card_number": "4242424242424242"})
        order = placed.json()["order"]
    with httpx.Client(base_url=base) as admin:
        assert admin.get("/admin").headers["location"] == "/admin/login"
        token = csrf_of(admin.get("/admin/login").text)
        wrong = admin.post("/admin/login", data={"password": "guess", "csrf": token})
        assert wrong.status_code == 401
        assert (
            admin.post("/admin/login", data={"password": password, "csrf": token}).status_code
            == 303
        )
        page = admin.get("/admin").text
        assert page.count('class="chart"') >= 4  # revenue, funnel, top products, stock
        assert 'id="chart-stock"' in page
        assert 'class="bar"' in page
        assert order["number"] in page
        product = f"/api/products/{sku.split('-')[0].lower()}"
        levels = []
        for _ in range(2):  # the app server that restocked shows it at once
            admin.post("/admin/restock", data={"sku": sku, "qty": "5", "csrf": token})
            levels.append(admin.get(product).json()["stock"][sku])
        assert levels[1] == levels[0] + 5
        r = admin.post(f"/admin/orders/{order['id']}/fulfil", data={"csrf": token})
        assert r.status_code == 303
        assert "fulfilled" in admin.get("/admin").text
        assert admin.post(f"/admin/orders/{order['id']}/fulfil", data={}).status_code == 403


def _orders(base: str, n: int, qty: int) -> tuple[list[str], httpx.Cookies]:
    """*n* guest orders of *qty* units each (placed in one session, whose cookies come back)."""
    placed = []
    with httpx.Client(base_url=base) as c:
        _, sku = in_stock_sku(c)
        for _ in range(n):
            c.post("/api/cart/add", json={"sku": sku, "qty": qty})
            r = c.post("/api/checkout", json={**ADDRESS, "card_number": "4242424242424242"})
            assert r.status_code == 201, r.text
            placed.append(r.json()["order"]["id"])
        return placed, c.cookies


@contextlib.contextmanager
def _admin(base: str, data: Path) -> Iterator[tuple[httpx.Client, str]]:
    """A client signed in to the admin, and its CSRF token."""
    with httpx.Client(base_url=base) as admin:
        token = csrf_of(admin.get("/admin/login").text)
        password = (data / "admin.password").read_text().strip()
        signed_in = admin.post("/admin/login", data={"password": password, "csrf": token})
        assert signed_in.status_code == 303
        yield admin, token


def test_admin_cancels_and_refunds_orders(app_server: tuple[str, Path]) -> None:
    base, data = app_server
    (cancel, refund), cookies = _orders(base, 2, qty=3)  # over 50 EUR: free shipping
    with _admin(base, data) as (admin, token):
        for oid, action in ((cancel, "cancel"), (refund, "fulfil"), (refund, "refund")):
            r = admin.post(f"/admin/orders/{oid}/{action}", data={"csrf": token})
            assert r.status_code == 303, (action, r.text)
    with httpx.Client(base_url=base, cookies=cookies) as owner:
        cancelled = owner.get(f"/api/orders/{cancel}").json()
        assert (cancelled["status"], cancelled["payment_status"]) == ("cancelled", "refunded")
        refunded = owner.get(f"/api/orders/{refund}").json()
        assert (refunded["fulfilment_status"], refunded["payment_status"]) == (
            "fulfilled",
            "refunded",
        )


def test_admin_cancels_and_refunds_orders_that_paid_shipping(app_server: tuple[str, Path]) -> None:
    base, data = app_server
    (cancel, refund), cookies = _orders(base, 2, qty=1)  # under 50 EUR: 4.90 EUR shipping
    with _admin(base, data) as (admin, token):
        statuses = [
            admin.post(f"/admin/orders/{oid}/{action}", data={"csrf": token}).status_code
            for oid, action in ((cancel, "cancel"), (refund, "fulfil"), (refund, "refund"))
        ]
    with httpx.Client(base_url=base, cookies=cookies) as owner:
        cancelled = owner.get(f"/api/orders/{cancel}").json()
        refunded = owner.get(f"/api/orders/{refund}").json()
    assert statuses == [303, 303, 303]
    assert (cancelled["status"], cancelled["payment_status"]) == ("cancelled", "refunded")
    assert refunded["payment_status"] == "refunded"


def test_an_action_the_order_refuses_is_a_409_with_its_reason(
    app_server: tuple[str, Path],
) -> None:
    """The admin's mistake, not the server's: a 503 would make the front count a failure."""
    base, data = app_server
    (order,), _ = _orders(base, 1, qty=3)
    with _admin(base, data) as (admin, token):
        assert admin.post(f"/admin/orders/{order}/fulfil", data={"csrf": token}).status_code == 303
        refused = admin.post(f"/admin/orders/{order}/cancel", data={"csrf": token})
    assert refused.status_code == 409, refused.text
    assert "cannot go from completed to cancelled" in refused.text


@pytest.mark.parametrize(
    "body", [b"not json", b"[1, 2]", b"[" * 100_000], ids=["text", "array", "nested"]
)
def test_a_json_api_body_that_is_no_json_object_is_a_400(
    app_server: tuple[str, Path], body: bytes
) -> None:
    """A crafted body nested past the decoder raised RecursionError: a 500, not a 400."""
    base, _ = app_server
    with httpx.Client(base_url=base) as c:
        answer = c.post("/api/cart/add", content=body, headers={"content-type": "application/json"})
        assert answer.status_code == 400, answer.text
        assert answer.json()["error"] == "InvalidInputError"
        assert "JSON" in answer.json()["message"]
