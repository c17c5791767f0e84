"""A change to the cart while its checkout waits for 3-D Secure goes into a new open cart.

The checkout froze the cart (``CartStatus.FROZEN``) before the payment; the
buyer adds from another tab meanwhile. As Oscar does with a frozen basket,
the session gets a new open cart for the change, the cart page says a checkout
is in progress and links to its challenge, and the challenge still completes
the frozen cart's lines only. A failed challenge opens the frozen cart again
with the new cart's lines merged in. One app server is uvicorn in a thread of
this process (real HTTP on loopback) over SQLite.
"""

from __future__ import annotations

import re
import threading
import time
from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from tests.shop._procs import ADDRESS, csrf_of, shop_env, shop_in_thread

THREE_DS = "4000000000003220"


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, Any]]:
    """The app's URL and its Shop (for what the background worker would do meanwhile)."""
    env = shop_env(tmp_path_factory.mktemp("shop-frozen"), SHOP_SEED_PRODUCTS="6")
    with shop_in_thread(env, "shop-frozen") as served:
        yield served


@pytest.fixture(scope="module")
def app_url(served: tuple[str, Any]) -> str:
    return served[0]


@pytest.fixture
def client(app_url: str) -> Iterator[httpx.Client]:
    """A new visitor."""
    with httpx.Client(base_url=app_url) as c:
        yield c


def two_skus(c: httpx.Client) -> tuple[str, str]:
    skus = []
    for p in c.get("/api/products", params={"in_stock": "1"}).json()["products"]:
        stock = c.get(f"/api/products/{p['id']}").json()["stock"]
        skus.append(next(s for s, n in stock.items() if n > 3))
    return skus[0], skus[1]


def lines(cart: dict[str, object]) -> dict[str, int]:
    return {ln["sku"]: ln["qty"] for ln in cart["lines"]}  # type: ignore[attr-defined]


def test_the_json_api_adds_to_a_new_cart_during_3ds(client: httpx.Client) -> None:
    first, second = two_skus(client)
    client.post("/api/cart/add", json={"sku": first, "qty": 1})
    frozen = client.get("/api/cart").json()["cart_id"]
    paused = client.post("/api/checkout", json={**ADDRESS, "card_number": THREE_DS})
    assert paused.status_code == 202, paused.text
    cid, challenge = paused.json()["checkout_id"], paused.json()["challenge"]

    added = client.post("/api/cart/add", json={"sku": second, "qty": 2})
    assert added.status_code == 200, added.text
    cart = added.json()
    assert cart["cart_id"] != frozen
    assert lines(cart) == {second: 2}
    assert cart["checkout_in_progress"] == [{"checkout_id": cid, "challenge": challenge}]
    changed = client.post("/api/cart/set", json={"sku": second, "qty": 3})
    assert lines(changed.json()) == {second: 3}

    done = client.post(challenge, json={"outcome": "pass"})
    assert done.status_code == 201, done.text
    assert {ln["sku"]: ln["qty"] for ln in done.json()["order"]["lines"]} == {first: 1}
    after = client.get("/api/cart").json()
    assert lines(after) == {second: 3}  # the new cart is the session's cart still
    assert after["checkout_in_progress"] == []


def test_the_cart_page_links_to_the_challenge_after_an_add_during_3ds(
    client: httpx.Client,
) -> None:
    first, second = two_skus(client)
    pid = client.get("/api/products").json()["products"][0]["id"]
    token = csrf_of(client.get(f"/products/{pid}").text)
    client.post("/cart/add", data={"sku": first, "qty": "2", "csrf": token})
    r = client.post("/checkout", data={**ADDRESS, "card_number": THREE_DS, "csrf": token})
    assert r.status_code == 303
    challenge = r.headers["location"]
    assert challenge.startswith("/checkout/3ds/")

    added = client.post("/cart/add", data={"sku": second, "qty": "1", "csrf": token})
    assert added.status_code == 303, added.text  # not the error page
    page = client.get("/cart")
    assert page.status_code == 200
    assert 'id="checkout-in-progress"' in page.text
    assert f'href="{challenge}"' in page.text
    assert re.search(rf'class="line" data-sku="{re.escape(second)}"', page.text)
    assert f'data-sku="{first}"' not in page.text

    assert "Confirm payment" in client.get(challenge).text
    done = client.post(challenge, data={"outcome": "pass", "csrf": token})
    assert done.status_code == 303
    order = client.get("/api/orders/" + done.headers["location"].split("/")[2].split("?")[0])
    assert {ln["sku"]: ln["qty"] for ln in order.json()["lines"]} == {first: 2}
    page = client.get("/cart").text
    assert 'id="checkout-in-progress"' not in page
    assert f'data-sku="{second}"' in page


def test_a_failed_challenge_opens_the_frozen_cart_with_the_new_lines_merged(
    client: httpx.Client,
) -> None:
    first, second = two_skus(client)
    client.post("/api/cart/add", json={"sku": first, "qty": 1})
    frozen = client.get("/api/cart").json()["cart_id"]
    paused = client.post("/api/checkout", json={**ADDRESS, "card_number": THREE_DS})
    client.post("/api/cart/add", json={"sku": second, "qty": 1})
    failed = client.post(paused.json()["challenge"], json={"outcome": "fail"})
    assert failed.status_code == 402, failed.text
    cart = client.get("/api/cart").json()
    assert cart["cart_id"] == frozen
    assert lines(cart) == {first: 1, second: 1}
    assert cart["checkout_in_progress"] == []
    placed = client.post("/api/checkout", json={**ADDRESS, "card_number": "4242424242424242"})
    assert placed.status_code == 201, placed.text
    assert {ln["sku"] for ln in placed.json()["order"]["lines"]} == {first, second}


def test_a_visitor_who_signs_in_during_3ds_keeps_a_cart_of_their_own_when_it_fails(
    client: httpx.Client,
) -> None:
    """A guest's checkout waits for 3-D Secure; the guest signs in (the frozen cart cannot
    merge, so the customer gets a cart of their own) and the challenge then fails. The lines
    the checkout froze go into the customer's cart: opening the guest's cart again as the
    session's, with the customer's merged into it, made the next order a guest cart's order
    that belonged to nobody (no customer, no anonymous id)."""
    first, second = two_skus(client)
    client.post("/api/cart/add", json={"sku": first, "qty": 1})
    paused = client.post("/api/checkout", json={**ADDRESS, "card_number": THREE_DS})
    assert paused.status_code == 202, paused.text
    email = f"frozen-{paused.json()['checkout_id'][:8]}@example.com"
    signed = client.post("/api/signin", json={"email": email, "password": "secret-1"})
    assert signed.status_code == 200, signed.text
    client.post("/api/cart/add", json={"sku": second, "qty": 1})
    failed = client.post(paused.json()["challenge"], json={"outcome": "fail"})
    assert failed.status_code == 402, failed.text
    assert lines(client.get("/api/cart").json()) == {first: 1, second: 1}
    placed = client.post("/api/checkout", json={**ADDRESS, "card_number": "4242424242424242"})
    assert placed.status_code == 201, placed.text
    order = placed.json()["order"]
    assert [o["id"] for o in client.get("/api/orders").json()["orders"]] == [order["id"]]


def test_a_challenge_left_to_expire_gives_the_frozen_lines_back_to_the_session(
    client: httpx.Client, served: tuple[str, Any]
) -> None:
    """The buyer never answers the challenge and adds to a new cart meanwhile; the 3-D Secure
    window runs out and ``Checkout.recover()`` (the app's background worker) opens the frozen
    cart again. The session's cart then has both carts' lines, as after a failed challenge:
    the frozen cart's lines had been left in a cart no session held."""
    import sqlalchemy as sa

    from commercekit.commerce.checkout import CheckoutStatus

    shop = served[1]
    first, second = two_skus(client)
    client.post("/api/cart/add", json={"sku": first, "qty": 1})
    paused = client.post("/api/checkout", json={**ADDRESS, "card_number": THREE_DS})
    assert paused.status_code == 202, paused.text
    cid = paused.json()["checkout_id"]
    client.post("/api/cart/add", json={"sku": second, "qty": 1})
    with shop.db.unit_of_work() as uow:  # the window ran out
        uow.session.execute(
            sa.text("UPDATE ck_checkouts SET lease_until = 0 WHERE id = :id"), {"id": cid}
        )
    shop.commerce.checkout.recover()
    assert shop.commerce.checkout.status(cid) is not CheckoutStatus.ACTION_REQUIRED
    for _ in range(2):  # and the session keeps it
        cart = client.get("/api/cart").json()
        assert lines(cart) == {first: 1, second: 1}
        assert cart["checkout_in_progress"] == []


def test_a_visitor_who_signs_in_during_a_checkout_that_fails_keeps_its_lines(
    client: httpx.Client, served: tuple[str, Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    """A guest's checkout (no 3-D Secure) is waiting for the payment; the guest signs in from
    another tab (the frozen cart cannot merge, so the customer gets a cart of their own) and
    the card is then declined. The checkout opens the guest's cart again: its lines go into
    the customer's cart. They had been left in a cart no session held (and the declined
    checkout's answer had carried the guest's session back, signing the visitor out)."""
    shop = served[1]
    first, second = two_skus(client)
    client.post("/api/cart/add", json={"sku": first, "qty": 1})
    paying, signed_in = threading.Event(), threading.Event()
    authorize = shop.gateway.authorize

    def slow_authorize(*args: Any, **kwargs: Any) -> Any:
        paying.set()
        assert signed_in.wait(30), "the sign-in did not happen"
        return authorize(*args, **kwargs)

    monkeypatch.setattr(shop.gateway, "authorize", slow_authorize)
    answers: list[httpx.Response] = []
    declined_card = {**ADDRESS, "card_number": "4000000000000002"}
    tab = threading.Thread(
        target=lambda: answers.append(client.post("/api/checkout", json=declined_card))
    )
    tab.start()
    try:
        assert paying.wait(30), "the checkout did not reach the payment"
        email = f"declined-{first[:6].lower()}-{time.monotonic_ns()}@example.com"
        signed = client.post("/api/signin", json={"email": email, "password": "secret-1"})
        assert signed.status_code == 200, signed.text
        client.post("/api/cart/add", json={"sku": second, "qty": 1})
    finally:
        signed_in.set()
        tab.join(30)
    monkeypatch.undo()
    assert answers, "the checkout did not answer"
    assert answers[0].status_code == 402, answers[0].text
    assert lines(client.get("/api/cart").json()) == {first: 1, second: 1}
    placed = client.post("/api/checkout", json={**ADDRESS, "card_number": "4242424242424242"})
    assert placed.status_code == 201, placed.text
    order = placed.json()["order"]
    assert [o["id"] for o in client.get("/api/orders").json()["orders"]] == [order["id"]]


def test_removing_a_line_of_the_frozen_cart_during_3ds_starts_no_cart(
    client: httpx.Client,
) -> None:
    """During the challenge the frozen cart's lines are the checkout's: removing one is
    refused (409, saying why) and creates no cart, and removing a line that is in no cart
    changes nothing. Either had left the session an empty new cart in place of the frozen
    one, and the 409 had been a 200 that removed nothing."""
    first, second = two_skus(client)
    client.post("/api/cart/add", json={"sku": first, "qty": 1})
    frozen = client.get("/api/cart").json()["cart_id"]
    paused = client.post("/api/checkout", json={**ADDRESS, "card_number": THREE_DS})
    assert paused.status_code == 202, paused.text

    refused = client.post("/api/cart/remove", json={"sku": first})
    assert refused.status_code == 409, refused.text
    assert "3-D Secure" in refused.json()["message"]
    nothing = client.post("/api/cart/remove", json={"sku": second})
    assert nothing.status_code == 200, nothing.text
    assert nothing.json()["cart_id"] == frozen  # no new (empty) cart
    zero = client.post("/api/cart/set", json={"sku": first, "qty": 0})
    assert zero.status_code == 409, zero.text
    assert client.get("/api/cart").json()["cart_id"] == frozen

    failed = client.post(paused.json()["challenge"], json={"outcome": "fail"})
    assert failed.status_code == 402, failed.text
    cart = client.get("/api/cart").json()
    assert cart["cart_id"] == frozen
    assert lines(cart) == {first: 1}
    removed = client.post("/api/cart/remove", json={"sku": first})
    assert removed.status_code == 200, removed.text
    assert lines(removed.json()) == {}


def test_a_remove_the_catalog_fails_for_changes_nothing(
    client: httpx.Client, served: tuple[str, Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    """The listing (for Product Removed) is read before the line is removed: a catalog that
    fails answers 503 and the line is still there. It had been removed, answered 503."""
    from commercekit.errors import DatabaseUnavailableError

    shop = served[1]
    first, second = two_skus(client)
    client.post("/api/cart/add", json={"sku": first, "qty": 1})
    client.post("/api/cart/add", json={"sku": second, "qty": 1})

    def down(product_id: str) -> Any:
        raise DatabaseUnavailableError("the catalog is unavailable")

    monkeypatch.setattr(shop.catalog, "get", down)
    failed = client.post("/api/cart/remove", json={"sku": second})
    monkeypatch.undo()
    assert failed.status_code == 503, failed.text
    assert lines(client.get("/api/cart").json()) == {first: 1, second: 1}
