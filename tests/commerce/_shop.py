"""A small shop for the commerce tests: the services over one database, stock and prices seeded."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
from sqlalchemy import func, select

from commercekit.commerce import OUTBOX, Commerce
from commercekit.commerce.catalog import Catalog
from commercekit.commerce.inventory import Inventory
from commercekit.commerce.orders import PaymentStatus
from commercekit.errors import InvalidInputError
from commercekit.metrics import Metrics
from commercekit.money import Money
from commercekit.payments import (
    Card,
    IdempotencyStore,
    InMemoryIdempotencyStore,
    Operation,
    PaymentService,
    PaymentState,
    SandboxGateway,
)
from commercekit.repository import Database

GOOD = Card("4242 4242 4242 4242", 12, 2035, cvv="123")
DECLINED = Card("4000 0000 0000 0002", 12, 2035, cvv="123")
THREE_DS = Card("4000 0000 0000 3220", 12, 2035, cvv="123")


def make_shop(
    db: Database,
    *,
    clock: Callable[[], float] | None = None,
    gateway: SandboxGateway | None = None,
    store: IdempotencyStore | None = None,
    metrics: Metrics | None = None,
    seed: bool = True,
    skus: dict[str, int] | None = None,
    **options: Any,
) -> tuple[Commerce, SandboxGateway, PaymentService]:
    gateway = gateway or SandboxGateway()
    kwargs: dict[str, Any] = {}
    if clock is not None:
        kwargs["clock"] = clock
        options.setdefault("clock", clock)
    payments = PaymentService(
        gateway, store or InMemoryIdempotencyStore(), metrics=metrics, **kwargs
    )
    shop = Commerce.from_database(
        db,
        payments=payments,
        metrics=metrics,
        tax_rates={"DE": "0.19"},
        prices_include_tax=True,
        **options,
    )
    if seed:
        stock = skus if skus is not None else {"TEE": 100, "MUG": 100, "CAP": 100}
        for sku, qty in stock.items():
            shop.catalog.add_product(sku.title(), [sku], product_id=f"p-{sku}")
            shop.catalog.set_price(sku, Money.of("10.00", "EUR"))
            shop.inventory.set_stock(sku, qty)
    return shop, gateway, payments


def cart_with(shop: Commerce, lines: dict[str, int], *, customer_id: str | None = None) -> str:
    cart = shop.carts.create("EUR", customer_id=customer_id)
    for sku, qty in lines.items():
        shop.carts.add(cart.id, sku, qty)
    return cart.id


def check_money_invariants(shop: Commerce, payments: PaymentService) -> None:
    """0 orders without an authorized payment, 0 captures without an order, captured = paid."""
    from commercekit.commerce.checkout import _tables as ct
    from commercekit.commerce.orders import _tables as ot

    with shop.db.unit_of_work() as uow:
        orders = uow.session.execute(
            select(ot.orders.c.payment_id, ot.orders.c.payment_status, ot.orders.c.captured_minor)
        ).all()
        attempts = list(uow.session.execute(select(ct.checkouts.c.id)).scalars())
    by_payment = {pid: (status, captured) for pid, status, captured in orders}
    for pid, (status, captured) in by_payment.items():
        payment = payments.payment(pid)
        assert payment.authorized_minor > 0, f"order without an authorized payment: {pid}"
        if status == PaymentStatus.PAID.value:
            assert payment.captured_minor == captured, pid
    for pid in attempts:
        payment = payments.payment(pid)
        if payment.captured_minor:
            assert pid in by_payment, f"a capture without an order: {pid}"
        if pid not in by_payment:
            assert payment.state in (
                PaymentState.CREATED,
                PaymentState.FAILED,
                PaymentState.VOIDED,
            ), f"{pid} holds money ({payment.state.value}) without an order"


def check_listing_filters(catalog: Catalog, tag: str) -> None:
    """Text, attribute, price and activity filters with keyset pages (any engine).

    *tag* is unique to the run, so a database shared with other tests' products
    answers for these products only.
    """
    eur = Money.of
    rows = [  # id, name, product attributes, variant attributes, price
        (
            "a",
            f"Linen Shirt {tag}",
            {"category": "shirts"},
            {"size": "L", "colour": "Blå"},
            "30.00",
        ),
        ("b", f"Oxford shirt {tag}", {"category": "shirts"}, {"size": "M"}, "45.00"),
        ("c", f"Mug {tag}", {"category": "kitchen"}, {"size": "L"}, "9.50"),
        ("d", f"50%_off Shirt {tag}", {"category": "shirts"}, {"size": "S"}, "12.00"),
        ("e", f"Hidden shirt {tag}", {"category": "shirts"}, {"size": "L"}, "20.00"),
    ]
    for key, name, attributes, variant, price in rows:
        sku = f"{tag}-{key}"
        catalog.add_product(
            name, [(sku, variant)], product_id=f"{tag}-{key}", attributes=attributes
        )
        catalog.set_price(sku, eur(price, "EUR"))
    catalog.set_active(f"{tag}-e", False)

    def ids(**filters: Any) -> list[str]:
        found, after = [], None
        while True:  # pages of 1, so every filter is also checked across keyset pages
            filters.setdefault("text", tag)
            page = catalog.list_products(limit=1, after=after, **filters)
            found += [p.id.removeprefix(f"{tag}-") for p in page.products]
            if page.next_after is None:
                return found
            after = page.next_after

    assert ids() == ["a", "b", "c", "d"]
    assert ids(text=f"SHIRT {tag}") == ["a", "b", "d"]  # every word, any case
    assert ids(text=f"{tag} blå") == ["a"]  # variant attribute values, non-ASCII folded
    assert ids(text=f"{tag} BLÅ") == ["a"]
    assert ids(text=f"{tag} 50%_") == ["d"]  # LIKE's wildcards are plain characters
    assert ids(text=f"{tag} 5%") == []
    assert ids(attributes={"category": "shirts"}) == ["a", "b", "d"]
    assert ids(attributes={"category": "shirts", "size": "L"}) == ["a"]  # variant's too
    assert ids(attributes={"category": "Shirts"}) == []  # exact, on every engine
    assert ids(attributes={"size": "l"}) == []
    assert ids(min_price=eur("10.00", "EUR"), max_price=eur("30.00", "EUR")) == ["a", "d"]
    assert ids(max_price=eur("9.50", "EUR")) == ["c"]
    assert ids(min_price=eur("1.00", "USD")) == []  # no USD prices
    assert ids(active=False) == ["e"]
    assert ids(include_inactive=True) == ["a", "b", "c", "d", "e"]
    with pytest.raises(InvalidInputError):
        catalog.list_products(min_price=eur("5", "EUR"), max_price=eur("1", "EUR"))
    with pytest.raises(InvalidInputError):
        catalog.list_products(min_price=eur("1", "EUR"), max_price=eur("5", "USD"))
    with pytest.raises(InvalidInputError):
        catalog.list_products(text=" ".join(["w"] * 11))


def live_reservations(shop: Commerce) -> int:
    from commercekit.commerce.inventory import _tables as it

    with shop.db.unit_of_work() as uow:
        return int(
            uow.session.execute(
                select(func.count())
                .select_from(it.reservations)
                .where(it.reservations.c.status == "live")
            ).scalar_one()
        )


def outbox_events(shop: Commerce) -> list[dict[str, Any]]:
    with shop.db.unit_of_work() as uow:
        return [e.payload for e in OUTBOX.events(uow)]


def authorizations(gateway: SandboxGateway) -> int:
    return sum(1 for _, r in gateway.operations if r.operation is Operation.AUTHORIZE)


__all__ = [
    "DECLINED",
    "GOOD",
    "THREE_DS",
    "Money",
    "authorizations",
    "cart_with",
    "check_listing_filters",
    "check_money_invariants",
    "live_reservations",
    "make_shop",
    "outbox_events",
]


def check_batch_availability(db: Database, inventory: Inventory, tag: str) -> None:
    """``available_many`` over 1,200 SKUs (three IN-list chunks) agrees with the one-SKU read."""
    from commercekit.commerce.inventory import _tables as t

    skus = [f"{tag}-{i:04d}" for i in range(1200)]
    stocked = skus[::2]
    with db.unit_of_work() as uow:  # one insert: a test fixture, not the service's path
        uow.session.execute(
            t.stock.insert(),
            [
                {"sku": s, "location": "default", "on_hand": 3, "allocated": 0, "reserved": 0}
                for s in stocked
            ],
        )
    last = stocked[-1]
    inventory.set_stock(last, 4, location="annex")
    inventory.reserve(f"{tag}-r", {stocked[0]: 2, last: 3})  # last: from "annex", first by name
    try:
        got = inventory.available_many([*reversed(skus), "NO-SUCH-" + tag])
        assert list(got)[:2] == [skus[-1], last]  # the order asked
        want = dict.fromkeys(skus, 0) | dict.fromkeys(stocked, 3) | {stocked[0]: 1}
        want[last] = 4  # annex 4 - 3 reserved, default 3
        assert {s: got[s] for s in skus} == want
        assert got["NO-SUCH-" + tag] == 0
        assert inventory.available(last) == 4
        at_annex = inventory.available_many([last, stocked[0]], location="annex")
        assert at_annex == {last: 1, stocked[0]: 0}
    finally:
        inventory.release(f"{tag}-r")
