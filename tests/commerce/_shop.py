"""A small shop for the commerce tests: the services over one database, stock and prices seeded."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from sqlalchemy import func, select

from commercekit.commerce import OUTBOX, Commerce
from commercekit.commerce.orders import PaymentStatus
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
    "check_money_invariants",
    "live_reservations",
    "make_shop",
    "outbox_events",
]
