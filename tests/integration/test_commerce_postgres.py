"""The commerce services on PostgreSQL: one order per checkout, faults at every saga step,
and a worker SIGKILLed mid-saga (what it shares with MariaDB, no oversell from threads and
processes and no deadlock, is in ``test_commerce_engines.py``).

Runs on the machine's PostgreSQL (127.0.0.1:5432) in a database created for
this module and dropped after it. Inventory and money invariants are checked
after every test.
"""

from __future__ import annotations

import multiprocessing
import os
import threading
from collections.abc import Iterator
from typing import Any

import pytest

from commercekit.commerce import Commerce
from commercekit.commerce.checkout import STEPS, CheckoutStatus
from commercekit.commerce.orders import PaymentStatus
from commercekit.errors import OutOfStockError
from commercekit.payments import PaymentService, PaymentState
from commercekit.repository import Database
from tests.commerce._shop import (
    authorizations,
    check_money_invariants,
    live_reservations,
)
from tests.integration import _commerce as h

pytestmark = pytest.mark.integration

stress = pytest.mark.skipif(
    not os.environ.get("COMMERCEKIT_STRESS"),
    reason="a longer run: set COMMERCEKIT_STRESS=1 (benchmarks/checkout.py measures more)",
)


@pytest.fixture(scope="module")
def pg_url() -> Iterator[str]:
    with h.scratch_database(h.POSTGRES, "PostgreSQL") as url:
        db = h.open_database(url)
        h.create_schema(db, url)
        db.close()
        h.dispose_all()
        yield url


@pytest.fixture
def env(pg_url: str) -> Iterator[tuple[Database, Commerce, PaymentService]]:
    with h.commerce_env(pg_url, pg_url) as env:
        yield env


sku = h.sku


def test_twenty_identical_submissions_one_order_one_authorization(
    env: tuple[Database, Commerce, PaymentService],
) -> None:
    _, shop, payments = env
    item = sku("TEE")
    h.seed(shop, {item: 5})
    cart_id = h.new_cart(shop, {item: 2})
    barrier = threading.Barrier(20)
    results: list[Any] = []

    def submit() -> None:
        barrier.wait()
        results.append(shop.checkout.place(cart_id, h.GOOD, region="DE"))

    threads = [threading.Thread(target=submit) for _ in range(20)]
    for th in threads:
        th.start()
    for th in threads:
        th.join()
    assert len(results) == 20
    assert len({r.order.id for r in results}) == 1
    assert sum(r.replayed for r in results) == 19
    gateway = payments._gateway  # the sandbox this service calls
    assert authorizations(gateway) == 1


@stress
def test_forty_full_checkouts_of_mixed_baskets_from_eight_workers(
    env: tuple[Database, Commerce, PaymentService],
) -> None:
    _, shop, _ = env
    skus = [sku(f"M{i}") for i in range(5)]
    h.seed(shop, dict.fromkeys(skus, 1000))
    carts = [h.new_cart(shop, b) for b in h.random_baskets(skus, 40, seed=11)]
    orders, sold, errors = h.buy_all(shop, carts, threads=8)
    assert errors == []
    assert (orders, sold) == (40, 0)


_QUICK = {("after", "place_order")}


class Once:
    def __init__(self, phase: str, step: str) -> None:
        self.phase, self.step, self.fired = phase, step, False

    def __call__(self, phase: str, step: str, checkout_id: str) -> None:
        if (phase, step) == (self.phase, self.step) and not self.fired:
            self.fired = True
            raise RuntimeError(f"injected fault {phase} {step}")


@pytest.mark.parametrize(
    ("phase", "step"),
    [
        pytest.param(phase, step, marks=() if (phase, step) in _QUICK else (stress,))
        for phase in ("before", "after")
        for step in STEPS
    ],
)
def test_a_fault_at_every_step(
    env: tuple[Database, Commerce, PaymentService], step: str, phase: str
) -> None:
    db, seeded, payments = env
    item = sku("TEE")
    h.seed(seeded, {item: 10})
    hook = Once(phase, step)
    shop = h.shop_for(db, payments, hooks=hook)
    cart_id = h.new_cart(shop, {item: 2})
    with pytest.raises(RuntimeError, match="injected"):
        shop.checkout.place(cart_id, h.GOOD, region="DE")
    shop.checkout.recover()
    assert [r for r in shop.checkout.recover() if r.checkout_id.startswith(cart_id)] == []
    assert live_reservations(shop) == 0
    check_money_invariants(shop, payments)
    order = shop.orders.by_checkout(f"{cart_id}.1")
    if order is not None:
        assert order.payment_status is PaymentStatus.PAID
    else:
        assert shop.checkout.status(f"{cart_id}.1") is CheckoutStatus.COMPENSATED
        assert shop.inventory.available(item) == 10


@pytest.mark.parametrize(
    "at",
    [
        pytest.param("before:place_order", marks=stress),
        "after:place_order",
        pytest.param("before:capture", marks=stress),
    ],
)
def test_a_worker_sigkilled_mid_saga_is_recovered_by_a_fresh_process(
    env: tuple[Database, Commerce, PaymentService], pg_url: str, localstripe: str, at: str
) -> None:
    _, shop, _ = env
    item = sku("TEE")
    h.seed(shop, {item: 10})
    cart_id = h.new_cart(shop, {item: 3})
    ctx = multiprocessing.get_context("spawn")
    victim = ctx.Process(target=h.killed_process, args=(pg_url, pg_url, localstripe, cart_id, at))
    victim.start()
    victim.join(timeout=120)
    assert victim.exitcode == -9  # SIGKILL, mid-saga
    assert shop.checkout.status(f"{cart_id}.1") is CheckoutStatus.RUNNING
    out: Any = ctx.Queue()
    rescuer = ctx.Process(target=h.recovering_process, args=(pg_url, pg_url, localstripe, out))
    rescuer.start()
    recovered = dict(out.get(timeout=120))
    rescuer.join(timeout=30)
    assert rescuer.exitcode == 0
    checkout_id = f"{cart_id}.1"
    payments = h.payments_for(pg_url, stripe_url=localstripe)
    payment = payments.payment(checkout_id)
    if at == "before:place_order":
        assert recovered[checkout_id] == "compensated"
        assert payment.state is PaymentState.VOIDED
        assert shop.orders.by_checkout(checkout_id) is None
        assert shop.inventory.available(item) == 10
    else:
        assert recovered[checkout_id] == "recovered"
        order = shop.orders.by_checkout(checkout_id)
        assert order is not None
        assert payment.state is PaymentState.CAPTURED
        assert shop.checkout.status(checkout_id) is CheckoutStatus.COMPLETED
    assert live_reservations(shop) == 0
    check_money_invariants(shop, payments)


def test_sold_out_is_typed_and_holds_nothing(
    env: tuple[Database, Commerce, PaymentService],
) -> None:
    _, shop, _ = env
    rare = sku("RARE")
    h.seed(shop, {rare: 1})
    with pytest.raises(OutOfStockError):
        shop.checkout.place(h.new_cart(shop, {rare: 2}), h.GOOD, region="DE")
    assert shop.inventory.level(rare).reserved == 0
