"""The storefront in a real browser (Debian's Chromium driven by Playwright), through the front.

Each scenario keeps a full-page screenshot under ``tmp/artifacts/shop/``
(``COMMERCEKIT_ARTIFACTS`` moves it). Chromium comes from the distribution
(``apt-get install chromium``); never ``playwright install``.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from shop.fleet import Fleet

from tests.shop.conftest import browser_page

ADDRESS = {"name": "Ada Lovelace", "line1": "Main St 1", "postcode": "10115", "city": "Berlin"}


@pytest.fixture
def page(browser: object, fleet: Fleet, request: pytest.FixtureRequest) -> Iterator[object]:
    yield from browser_page(browser, fleet.url, request.node.name)


def add_to_cart(page: object, product: str = "p001") -> None:
    page.goto(f"/products/{product}")  # type: ignore[attr-defined]
    page.click("#add-to-cart")  # type: ignore[attr-defined]
    page.wait_for_selector("#cart .line")  # type: ignore[attr-defined]


def checkout(page: object, card: str) -> None:
    page.click("#to-checkout")  # type: ignore[attr-defined]
    for name, value in ADDRESS.items():
        page.fill(f"input[name={name}]", value)  # type: ignore[attr-defined]
    page.fill("input[name=card_number]", card)  # type: ignore[attr-defined]
    page.fill("input[name=expiry]", "12/30")  # type: ignore[attr-defined]
    page.fill("input[name=cvc]", "123")  # type: ignore[attr-defined]
    page.click("#place-order")  # type: ignore[attr-defined]


def test_guest_checkout_ends_on_the_order_page(page: object) -> None:
    page.goto("/?q=tee")  # type: ignore[attr-defined]
    assert page.locator(".product").count() > 0  # type: ignore[attr-defined]
    img = page.locator(".product img").first  # type: ignore[attr-defined]
    assert img.evaluate("i => i.complete && i.naturalWidth > 0")  # loaded through the edge
    add_to_cart(page)
    checkout(page, "4242 4242 4242 4242")
    page.wait_for_selector("#thanks")  # type: ignore[attr-defined]
    number = page.inner_text("#order-number")  # type: ignore[attr-defined]
    assert number.startswith("CK-")
    page.click("text=All your orders")  # type: ignore[attr-defined]
    assert number in page.inner_text("#orders")  # type: ignore[attr-defined]


def test_a_checkout_works_without_javascript(
    browser: object, fleet: Fleet, request: pytest.FixtureRequest
) -> None:
    """Plain server-rendered HTML: search, add to the cart and check out with scripts off."""
    pages = browser_page(browser, fleet.url, request.node.name, javascript=False)
    page = next(pages)
    page.goto("/?q=mug")  # type: ignore[attr-defined]
    assert page.locator(".product").count() > 0  # type: ignore[attr-defined]
    add_to_cart(page, "p005")
    checkout(page, "4242 4242 4242 4242")
    page.wait_for_selector("#thanks")  # type: ignore[attr-defined]
    next(pages, None)  # the screenshot, then the context closes


def test_3d_secure_checkout(page: object) -> None:
    add_to_cart(page, "p003")
    checkout(page, "4000 0000 0000 3220")
    page.wait_for_selector("#authenticate")  # type: ignore[attr-defined]
    assert "3-D Secure" in page.content()  # type: ignore[attr-defined]
    page.click("#authenticate")  # type: ignore[attr-defined]
    page.wait_for_selector("#thanks")  # type: ignore[attr-defined]
    assert page.inner_text("#order-status") == "placed"  # type: ignore[attr-defined]


def test_declined_card_explains_itself(page: object) -> None:
    add_to_cart(page, "p004")
    checkout(page, "4000 0000 0000 0002")
    error = page.wait_for_selector("#payment-error")  # type: ignore[attr-defined]
    text = error.inner_text()
    assert "declined" in text
    assert "another card" in text
    # The address is kept, the card number is not.
    assert page.input_value("input[name=name]") == ADDRESS["name"]  # type: ignore[attr-defined]
    assert page.input_value("input[name=card_number]") == ""  # type: ignore[attr-defined]


def test_guest_cart_is_merged_on_sign_in(page: object) -> None:
    add_to_cart(page, "p006")
    page.click("text=Sign in")  # type: ignore[attr-defined]
    page.fill("input[name=email]", "merge@example.com")  # type: ignore[attr-defined]
    page.fill("input[name=password]", "secret-42")  # type: ignore[attr-defined]
    page.click("#signin")  # type: ignore[attr-defined]
    page.wait_for_selector(".notice")  # type: ignore[attr-defined]
    assert page.locator("#cart .line").count() == 1  # type: ignore[attr-defined]
    assert "merge@example.com" in page.inner_text("header")  # type: ignore[attr-defined]


OPERATIONS = ["ops-rps", "ops-latency", "ops-errors", "balancer", "cdn", "db-statements"]
BUSINESS = ["revenue", "funnel", "top", "abandoned", "cohorts", "stock"]


def test_admin_dashboard_draws_every_chart_with_data(page: object, fleet: Fleet) -> None:
    """Every operations and business chart has bars (after the scenarios above ran).

    Replica lag is drawn as "no replicas" on this SQLite fleet; the PostgreSQL
    test (test_postgres.py) checks it with bars.
    """
    password = (fleet.settings.data_dir / "admin.password").read_text().strip()
    page.goto("/admin")  # type: ignore[attr-defined]
    page.fill("input[name=password]", password)  # type: ignore[attr-defined]
    page.click("#admin-login")  # type: ignore[attr-defined]
    page.wait_for_selector("#charts")  # type: ignore[attr-defined]
    counts: dict[str, int] = {}
    for _ in range(60):  # the analytics consumer applies the orders within a few seconds
        counts = {n: chart_bars(page, n) for n in OPERATIONS + BUSINESS}
        if all(counts.values()):
            break
        page.wait_for_timeout(500)  # type: ignore[attr-defined]
        page.reload()  # type: ignore[attr-defined]
    assert all(counts.values()), counts
    assert counts["ops-rps"] == 2  # one bar per app server
    assert counts["balancer"] == 2 * 3  # in service, ejections, went down per server
    lag = page.locator("#chart-db-lag svg")  # type: ignore[attr-defined]
    assert lag.get_attribute("data-empty") == "this topology has no replicas"


def chart_bars(page: object, name: str) -> int:
    """How many bars chart *name* draws (0 when the chart is missing)."""
    return int(page.locator(f"#chart-{name} rect.bar").count())  # type: ignore[attr-defined]
