"""Refunds and cancellation of orders that paid shipping, on SQLite and PostgreSQL.

A cancel of a paid order pays back everything captured (lines, shipping, their
taxes) with the stock back, in one outcome; a crash between its steps leaves
what a retry finishes exactly once. Partial refunds refund shipping only when
asked, and never more than was paid.
"""

from __future__ import annotations

import contextlib
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import update

from commercekit.commerce import Commerce, metadata
from commercekit.commerce.orders import Order, OrderStatus, PaymentStatus
from commercekit.commerce.orders import _tables as t
from commercekit.commerce.pricing import FlatShipping
from commercekit.errors import (
    CurrencyMismatchError,
    InvalidInputError,
    InvalidStateError,
    InvalidTransitionError,
    UnavailableError,
)
from commercekit.money import Money
from commercekit.payments import (
    DeclineCode,
    Operation,
    Outcome,
    PaymentResult,
    PaymentService,
    PaymentState,
    SandboxGateway,
)
from commercekit.repository import Database, Node, ReplicatedTopology, sqlite_engine
from tests.commerce._shop import GOOD, cart_with, check_money_invariants, make_shop, outbox_events
from tests.commerce.conftest import FakeClock, checked_database

SHIPPING = FlatShipping(
    fees={c: Money.of(f, c) for c, f in (("EUR", "4.90"), ("JPY", "700"), ("KWD", "1.250"))}
)


@pytest.fixture(params=["sqlite", "postgresql", "mariadb"])
def any_db(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Database]:
    """A database with the commerce schema: a SQLite file, or a scratch PostgreSQL or MariaDB
    database."""
    if request.param == "sqlite":
        with checked_database(sqlite_engine(tmp_path / "shop.db")) as db:
            yield db
        return
    from commercekit.repository import engine_from_url
    from tests.integration._commerce import scratch_database

    server, what = {
        "postgresql": ("postgresql://postgres@127.0.0.1:5432", "PostgreSQL"),
        "mariadb": ("mysql://root@127.0.0.1:3306", "MariaDB"),
    }[request.param]
    with (
        scratch_database(server, what) as url,
        checked_database(engine_from_url(url, pool_size=5)) as db,
    ):
        yield db


def shop_with_shipping(
    db: Database, **options: Any
) -> tuple[Commerce, SandboxGateway, PaymentService]:
    return make_shop(db, shipping=SHIPPING, **options)


def paid_order(shop: Commerce, lines: dict[str, int] | None = None) -> Order:
    order = shop.checkout.place(
        cart_with(shop, lines or {"TEE": 2, "MUG": 1}), GOOD, region="DE"
    ).order
    assert order is not None
    assert order.payment_status is PaymentStatus.PAID
    return order


def refunds_sent(gateway: SandboxGateway) -> int:
    return sum(1 for _, r in gateway.operations if r.operation is Operation.REFUND)


def test_an_order_keeps_its_shipping_and_its_tax_apart_from_its_lines(any_db: Database) -> None:
    shop, _, _ = shop_with_shipping(any_db)
    order = paid_order(shop)
    # prices include 19% tax: lines 30.00, shipping 4.90 (0.78 of it tax)
    assert order.total == order.captured == Money.of("34.90", "EUR")
    assert order.shipping_paid == Money.of("4.90", "EUR")
    assert order.shipping_refunded == Money.zero("EUR")
    line_tax = sum((ln.tax for ln in order.lines), Money.zero("EUR"))
    assert order.tax - line_tax == Money.of("0.78", "EUR")  # shipping's tax


def test_cancelling_a_paid_order_with_shipping_refunds_everything_once(
    any_db: Database,
) -> None:
    shop, gateway, payments = shop_with_shipping(any_db)
    order = paid_order(shop)
    cancelled = shop.orders.cancel(order.id, reason="admin")
    assert cancelled.status is OrderStatus.CANCELLED
    assert cancelled.payment_status is PaymentStatus.REFUNDED
    assert cancelled.refunded == order.captured == Money.of("34.90", "EUR")
    assert cancelled.shipping_refunded == Money.of("4.90", "EUR")
    assert all(ln.refunded == ln.gross for ln in cancelled.lines)
    assert payments.payment(order.payment_id).refunded_minor == 3490
    for sku in ("TEE", "MUG"):
        level = shop.inventory.level(sku)
        assert (level.on_hand, level.allocated, level.reserved) == (100, 0, 0)
    assert shop.orders.cancel(order.id) == cancelled  # again: nothing more
    assert refunds_sent(gateway) == 1
    events = [e["event"] for e in outbox_events(shop)]
    assert (events.count("Order Cancelled"), events.count("Order Refunded")) == (1, 1)
    kinds = [e.kind for e in shop.orders.events(order.id)]
    assert kinds.count("refund_requested") == kinds.count("refunded") == 1
    check_money_invariants(shop, payments)


class Crash:
    """Stands in for a call that dies once: before the real call, or after it returned."""

    def __init__(self, real: Callable[..., Any], *, after: bool) -> None:
        self.real, self.after, self.fired = real, after, False

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        if self.fired:
            return self.real(*args, **kwargs)
        self.fired = True
        if not self.after:
            raise RuntimeError("the worker died before the call")
        self.real(*args, **kwargs)
        raise RuntimeError("the worker died after the call")


@pytest.mark.parametrize("finish", ["cancel again", "recover"])
@pytest.mark.parametrize(
    "where", ["before the refund", "after the refund", "before it was recorded"]
)
def test_a_crash_between_the_steps_of_cancel_is_finished_once_by_a_retry(
    any_db: Database, where: str, finish: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    clock = FakeClock()
    shop, gateway, payments = shop_with_shipping(any_db, clock=clock)
    order = paid_order(shop)
    if where == "before it was recorded":
        crash = Crash(shop.orders._events.money, after=False)
        real_money = shop.orders._events.money

        def money(uow: Any, name: str, *args: Any, **kwargs: Any) -> None:
            if name == "Order Refunded":
                return crash(uow, name, *args, **kwargs)  # type: ignore[no-any-return]
            return real_money(uow, name, *args, **kwargs)

        monkeypatch.setattr(shop.orders._events, "money", money)
    else:
        crash = Crash(payments.refund, after=where == "after the refund")
        monkeypatch.setattr(payments, "refund", crash)
    with pytest.raises(RuntimeError, match="died"):
        shop.orders.cancel(order.id)
    assert crash.fired
    half = shop.orders.get(order.id)
    # never cancelled without the refund decided: the cancel and the decision are one
    assert half.status is OrderStatus.CANCELLED
    assert half.refunded == order.captured
    assert shop.inventory.level("TEE").allocated == 0
    if finish == "recover":  # the periodic job, once the refund is no longer in flight
        assert shop.orders.recover_refunds() == []
        clock.advance(61)
        assert shop.orders.recover_refunds() == [order.id]
        assert shop.orders.recover_refunds() == []
    done = shop.orders.cancel(order.id)  # the retry finishes it (or finds it finished)
    assert (done.status, done.payment_status) == (OrderStatus.CANCELLED, PaymentStatus.REFUNDED)
    assert payments.payment(order.payment_id).refunded_minor == order.captured.amount_minor
    assert refunds_sent(gateway) == 1  # never refunded twice
    assert shop.orders.cancel(order.id) == done
    assert [e["event"] for e in outbox_events(shop)].count("Order Refunded") == 1
    check_money_invariants(shop, payments)


def test_a_crash_inside_the_cancel_writes_nothing(
    any_db: Database, monkeypatch: pytest.MonkeyPatch
) -> None:
    shop, gateway, payments = shop_with_shipping(any_db)
    order = paid_order(shop)
    crash = Crash(shop.inventory.cancel_allocation, after=False)
    monkeypatch.setattr(shop.inventory, "cancel_allocation", crash)
    with pytest.raises(RuntimeError, match="died"):
        shop.orders.cancel(order.id)
    same = shop.orders.get(order.id)
    assert (same.status, same.payment_status, same.refunded) == (
        OrderStatus.PLACED,
        PaymentStatus.PAID,
        Money.zero("EUR"),
    )
    assert shop.inventory.level("TEE").allocated == 2
    assert refunds_sent(gateway) == 0
    assert shop.orders.cancel(order.id).payment_status is PaymentStatus.REFUNDED
    assert refunds_sent(gateway) == 1
    check_money_invariants(shop, payments)


def test_a_full_refund_of_a_fulfilled_order_pays_back_its_shipping(any_db: Database) -> None:
    shop, gateway, payments = shop_with_shipping(any_db)
    order = paid_order(shop)
    shop.orders.fulfil(order.id, {"TEE": 2, "MUG": 1})
    refunded = shop.orders.refund(order.id, key="full")
    assert refunded.payment_status is PaymentStatus.REFUNDED
    assert refunded.refunded == refunded.captured == Money.of("34.90", "EUR")
    assert refunded.shipping_refunded == refunded.shipping_paid
    assert shop.orders.refund(order.id, key="full") == refunded  # once per key
    with pytest.raises(InvalidTransitionError):
        shop.orders.refund(order.id, key="more")  # nothing left
    assert payments.payment(order.payment_id).refunded_minor == 3490
    assert refunds_sent(gateway) == 1
    check_money_invariants(shop, payments)


def test_partial_refunds_refund_shipping_only_when_asked_and_never_more_than_paid(
    any_db: Database,
) -> None:
    shop, _, payments = shop_with_shipping(any_db)
    order = paid_order(shop)
    eur = Money.of
    goods = shop.orders.refund(order.id, eur("5.00", "EUR"), key="goodwill")
    assert goods.shipping_refunded == eur("0", "EUR")
    assert sum((ln.refunded for ln in goods.lines), eur("0", "EUR")) == eur("5.00", "EUR")
    part = shop.orders.refund(order.id, key="late", shipping=eur("1.90", "EUR"))
    assert part.shipping_refunded == eur("1.90", "EUR")
    assert part.payment_status is PaymentStatus.PARTIALLY_REFUNDED
    before = shop.orders.get(order.id)
    for kwargs in (
        {"amount": eur("25.01", "EUR")},  # 25.00 left on the lines
        {"shipping": eur("3.01", "EUR")},  # 3.00 of shipping left
        {"amount": eur("1.00", "EUR"), "shipping": eur("3.01", "EUR")},
        {"amount": eur("0", "EUR")},
        {"amount": eur("-1", "EUR")},
    ):
        with pytest.raises(InvalidInputError):
            shop.orders.refund(order.id, key="too-much", **kwargs)
    with pytest.raises(CurrencyMismatchError):
        shop.orders.refund(order.id, Money.of("1", "USD"), key="usd")
    assert shop.orders.get(order.id) == before  # a refused refund writes nothing
    rest = shop.orders.refund(order.id, eur("25.00", "EUR"), key="rest", shipping=True)
    assert rest.payment_status is PaymentStatus.REFUNDED
    assert rest.refunded == rest.captured
    assert rest.shipping_refunded == rest.shipping_paid
    assert payments.payment(order.payment_id).refunded_minor == rest.refunded.amount_minor
    check_money_invariants(shop, payments)


def test_a_return_after_goodwill_refunds_is_refunded_what_the_lines_have_left(
    any_db: Database,
) -> None:
    shop, _, payments = shop_with_shipping(any_db)
    order = paid_order(shop, {"TEE": 1})
    shop.orders.fulfil(order.id, {"TEE": 1})
    shop.orders.refund(order.id, Money.of("8.00", "EUR"), key="goodwill")
    back = shop.orders.return_items(order.id, {"TEE": 1}, key="rma-1")
    assert back.lines[0].refunded == back.lines[0].gross  # 2.00 more, not 10.00
    assert back.shipping_refunded == Money.zero("EUR")
    assert shop.inventory.level("TEE").on_hand == 100
    check_money_invariants(shop, payments)


def test_a_return_that_cannot_be_refunded_is_refused_before_it_is_written(
    any_db: Database,
) -> None:
    shop, _, payments = shop_with_shipping(any_db, capture="fulfilment")
    order = shop.checkout.place(cart_with(shop, {"TEE": 1}), GOOD, region="DE").order
    assert order is not None
    shop.orders.fulfil(order.id, {"TEE": 1})  # shipped, its payment only authorized
    with pytest.raises(InvalidTransitionError, match="refund=False"):
        shop.orders.return_items(order.id, {"TEE": 1}, key="rma-1")
    assert shop.orders.get(order.id).lines[0].returned == 0
    assert shop.inventory.level("TEE").on_hand == 99
    back = shop.orders.return_items(order.id, {"TEE": 1}, key="rma-1", refund=False)
    assert back.lines[0].returned == 1
    assert shop.inventory.level("TEE").on_hand == 100
    check_money_invariants(shop, payments)


_REFUND = st.tuples(
    st.integers(min_value=-5, max_value=4000),  # goods, minor units (<= 0: none)
    st.sampled_from([False, True, 0, 1, 300, 2000]),  # shipping: no, all, or an amount
)


def test_partial_refunds_never_pay_back_more_than_was_captured(tmp_path: Path) -> None:
    engine = sqlite_engine(tmp_path / "shop.db")
    db = Database(ReplicatedTopology(Node("primary", engine)))
    db.create_all(metadata)
    shop, _, payments = make_shop(db, shipping=SHIPPING, skus={"TEE": 10_000, "MUG": 10_000})
    for code, price in (("JPY", "1500"), ("KWD", "3.125")):
        for sku in ("TEE", "MUG"):
            shop.catalog.set_price(sku, Money.of(price, code))
    runs = iter(range(10**6))

    @settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
    @given(
        code=st.sampled_from(["EUR", "JPY", "KWD"]),
        qty=st.tuples(st.integers(1, 3), st.integers(0, 2)),
        refunds=st.lists(_REFUND, max_size=6),
    )
    def check(code: str, qty: tuple[int, int], refunds: list[tuple[int, bool | int]]) -> None:
        cart = shop.carts.create(code)
        shop.carts.add(cart.id, "TEE", qty[0])
        if qty[1]:
            shop.carts.add(cart.id, "MUG", qty[1])
        order = shop.checkout.place(cart.id, GOOD, region="DE").order
        assert order is not None
        unit = order.total.currency
        for i, (goods, ship) in enumerate(refunds):
            amount = Money.from_minor(goods, unit) if goods > 0 else None
            shipping = ship if isinstance(ship, bool) else Money.from_minor(ship, unit)
            with contextlib.suppress(InvalidInputError, InvalidTransitionError):  # refused
                shop.orders.refund(order.id, amount, key=f"r{next(runs)}-{i}", shipping=shipping)
            now = shop.orders.get(order.id)
            assert now.refunded <= now.captured
            assert Money.zero(unit) <= now.shipping_refunded <= now.shipping_paid
            assert all(ln.refunded <= ln.gross for ln in now.lines)
            paid_back = payments.payment(order.payment_id).refunded_minor
            assert paid_back == now.refunded.amount_minor  # to the minor unit
            full = now.refunded == now.captured
            assert (now.payment_status is PaymentStatus.REFUNDED) == full

    try:
        check()
        check_money_invariants(shop, payments)
    finally:
        db.close()
        engine.dispose()


def test_a_declined_refund_is_taken_back_off_the_order(
    any_db: Database, monkeypatch: pytest.MonkeyPatch
) -> None:
    shop, _, payments = shop_with_shipping(any_db)
    order = paid_order(shop)
    before = shop.orders.refund(order.id, Money.of("3.00", "EUR"), key="first")

    def declined(payment_id: str, amount: Money, *, idempotency_key: str) -> PaymentResult:
        return PaymentResult(
            Operation.REFUND,
            Outcome.DECLINED,
            "ref",
            amount,
            PaymentState.CAPTURED,
            "sandbox",
            decline_code=DeclineCode.PROCESSING_ERROR,
        )

    monkeypatch.setattr(payments, "refund", declined)
    with pytest.raises(InvalidStateError, match="declined"):
        shop.orders.refund(order.id, key="second", shipping=True)
    after = shop.orders.get(order.id)
    assert (after.refunded, after.payment_status) == (before.refunded, before.payment_status)
    assert after.lines == before.lines
    assert after.shipping_refunded == Money.zero("EUR")
    with pytest.raises(InvalidStateError, match="another key"):
        shop.orders.refund(order.id, key="second", shipping=True)
    monkeypatch.undo()
    again = shop.orders.refund(order.id, key="third", shipping=True)
    assert again.shipping_refunded == again.shipping_paid
    assert payments.payment(order.payment_id).refunded_minor == again.refunded.amount_minor
    check_money_invariants(shop, payments)


def test_two_concurrent_refunds_with_one_key_decide_it_once(
    any_db: Database, monkeypatch: pytest.MonkeyPatch
) -> None:
    shop, gateway, payments = shop_with_shipping(any_db)
    order = paid_order(shop)
    orders = shop.orders
    first_locked, second_asked = threading.Event(), threading.Event()
    real_steps = orders._locked_steps

    def locked_steps(s: Any, order_id: str, **kwargs: Any) -> Any:
        if threading.current_thread().name == "second":
            first_locked.wait(5)
            second_asked.set()  # ... and the second asks for the lock the first holds
            return real_steps(s, order_id, **kwargs)
        steps = real_steps(s, order_id, **kwargs)  # the first holds the order's lock ...
        first_locked.set()
        second_asked.wait(5)
        time.sleep(0.2)  # the second is waiting on the row now
        return steps

    monkeypatch.setattr(orders, "_locked_steps", locked_steps)
    out: dict[str, object] = {}

    def call() -> None:
        name = threading.current_thread().name
        try:
            out[name] = orders.refund(order.id, Money.of("5.00", "EUR"), key="k1").refunded
        except Exception as e:
            out[name] = e

    threads = [threading.Thread(target=call, name=n) for n in ("first", "second")]
    for th in threads:
        th.start()
    for th in threads:
        th.join()
    assert out == {"first": Money.of("5.00", "EUR"), "second": Money.of("5.00", "EUR")}
    after = orders.get(order.id)
    assert after.refunded == Money.of("5.00", "EUR")
    assert payments.payment(order.payment_id).refunded_minor == 500
    assert refunds_sent(gateway) == 1
    kinds = [e.kind for e in orders.events(order.id)]
    assert kinds.count("refund_requested") == kinds.count("refunded") == 1
    assert orders.recover_refunds(older_than_s=0) == []
    check_money_invariants(shop, payments)


def test_caller_keys_never_meet_the_keys_of_cancels_and_returns(any_db: Database) -> None:
    shop, gateway, payments = shop_with_shipping(any_db)
    order = paid_order(shop, {"TEE": 2})
    for key in ("cancel", "cancel:1", "return:rma-1"):
        with pytest.raises(InvalidInputError, match="reserved"):
            shop.orders.refund(order.id, Money.of("3.00", "EUR"), key=key)
    assert shop.orders.get(order.id).refunded == Money.zero("EUR")
    assert refunds_sent(gateway) == 0
    shop.orders.fulfil(order.id, {"TEE": 2})
    shop.orders.refund(order.id, Money.of("1.00", "EUR"), key="rma-1")
    back = shop.orders.return_items(order.id, {"TEE": 1}, key="rma-1")  # its own refund
    assert back.refunded == Money.of("11.00", "EUR")
    assert payments.payment(order.payment_id).refunded_minor == 1100
    check_money_invariants(shop, payments)


def test_a_cancel_refunds_everything_after_a_refund_logged_under_cancel(
    any_db: Database,
) -> None:
    shop, gateway, payments = shop_with_shipping(any_db)
    order = paid_order(shop)
    # a caller's refund keyed "cancel", as written before the key was reserved
    shop.orders._refund(order.id, Money.of("3.00", "EUR"), key="cancel", shipping=False)
    done = shop.orders.cancel(order.id, reason="admin")
    assert (done.status, done.payment_status) == (OrderStatus.CANCELLED, PaymentStatus.REFUNDED)
    assert done.refunded == done.captured == Money.of("34.90", "EUR")
    assert payments.payment(order.payment_id).refunded_minor == 3490
    assert shop.orders.cancel(order.id) == done
    assert refunds_sent(gateway) == 2
    assert shop.orders.recover_refunds(older_than_s=0) == []
    check_money_invariants(shop, payments)


def _declining(payments: PaymentService, suffix: str = "") -> Callable[..., PaymentResult]:
    """payments.refund, declining every refund whose key ends with *suffix*."""
    real = payments.refund

    def refund(payment_id: str, amount: Money, *, idempotency_key: str) -> PaymentResult:
        if not idempotency_key.endswith(suffix):
            return real(payment_id, amount, idempotency_key=idempotency_key)
        return PaymentResult(
            Operation.REFUND,
            Outcome.DECLINED,
            "ref",
            amount,
            PaymentState.CAPTURED,
            "sandbox",
            decline_code=DeclineCode.PROCESSING_ERROR,
        )

    return refund


@pytest.mark.parametrize("finish", ["cancel again", "recover"])
def test_a_cancel_whose_refund_was_declined_is_refunded_by_the_next_attempt(
    any_db: Database, finish: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    shop, _, payments = shop_with_shipping(any_db)
    order = paid_order(shop)
    monkeypatch.setattr(payments, "refund", _declining(payments))
    with pytest.raises(InvalidStateError, match="declined"):
        shop.orders.cancel(order.id)
    half = shop.orders.get(order.id)
    assert (half.status, half.payment_status) == (OrderStatus.CANCELLED, PaymentStatus.PAID)
    monkeypatch.undo()  # the provider takes refunds again
    if finish == "recover":
        assert shop.orders.recover_refunds(older_than_s=0) == [order.id]
        assert shop.orders.recover_refunds(older_than_s=0) == []
    done = shop.orders.cancel(order.id)
    assert (done.status, done.payment_status) == (OrderStatus.CANCELLED, PaymentStatus.REFUNDED)
    assert done.refunded == done.captured
    assert payments.payment(order.payment_id).refunded_minor == 3490
    assert shop.orders.recover_refunds(older_than_s=0) == []
    check_money_invariants(shop, payments)


def test_a_goodwill_refund_declined_around_a_cancel_is_refunded_by_the_cancel(
    any_db: Database, monkeypatch: pytest.MonkeyPatch
) -> None:
    shop, _, payments = shop_with_shipping(any_db)
    order = paid_order(shop)
    crash = Crash(payments.refund, after=False)
    monkeypatch.setattr(payments, "refund", crash)
    with pytest.raises(RuntimeError, match="died"):  # decided, never paid back
        shop.orders.refund(order.id, Money.of("3.00", "EUR"), key="goodwill")
    monkeypatch.setattr(payments, "refund", _declining(payments, ":goodwill"))
    with pytest.raises(InvalidStateError, match="declined"):
        shop.orders.cancel(order.id)
    done = shop.orders.cancel(order.id)
    assert (done.status, done.payment_status) == (OrderStatus.CANCELLED, PaymentStatus.REFUNDED)
    assert done.refunded == done.captured == Money.of("34.90", "EUR")
    assert payments.payment(order.payment_id).refunded_minor == 3490
    assert shop.orders.cancel(order.id) == done
    assert shop.orders.recover_refunds(older_than_s=0) == []
    check_money_invariants(shop, payments)


def test_recover_refunds_is_not_starved_by_orders_it_cannot_finish(
    any_db: Database, monkeypatch: pytest.MonkeyPatch
) -> None:
    clock = FakeClock()
    shop, _, payments = shop_with_shipping(any_db, clock=clock)
    drifted, failing, crashed = (paid_order(shop) for _ in range(3))
    # a count left above zero with nothing pending (as the same-key race wrote it)
    o = t.orders.c
    any_db.run(
        lambda u: u.session.execute(
            update(t.orders).where(o.id == drifted.id).values(refunds_pending=1)
        )
    )
    clock.advance(1)
    real = payments.refund

    def refund(payment_id: str, amount: Money, *, idempotency_key: str) -> PaymentResult:
        if payment_id == failing.payment_id:
            raise UnavailableError("the provider is down")
        return real(payment_id, amount, idempotency_key=idempotency_key)

    monkeypatch.setattr(payments, "refund", refund)
    with pytest.raises(UnavailableError):
        shop.orders.refund(failing.id, Money.of("5.00", "EUR"), key="k1")
    clock.advance(1)
    with monkeypatch.context() as m:
        m.setattr(payments, "refund", Crash(real, after=False))
        with pytest.raises(RuntimeError, match="died"):
            shop.orders.refund(crashed.id, Money.of("5.00", "EUR"), key="k2")
    clock.advance(61)
    assert shop.orders.recover_refunds(limit=1) == [drifted.id]  # its count set back
    assert shop.orders.recover_refunds(limit=1) == []  # the failing one, sent to the back
    clock.advance(61)
    assert shop.orders.recover_refunds(limit=1) == [crashed.id]
    assert payments.payment(crashed.payment_id).refunded_minor == 500
    monkeypatch.undo()
    clock.advance(61)
    assert shop.orders.recover_refunds() == [failing.id]
    assert shop.orders.recover_refunds() == []
    check_money_invariants(shop, payments)


@pytest.mark.parametrize("how", ["refund", "cancel"])
def test_a_partly_captured_order_is_refunded_what_its_capture_holds(
    any_db: Database, how: str
) -> None:
    shop, gateway, payments = shop_with_shipping(any_db)
    order = paid_order(shop)
    o = t.orders.c
    any_db.run(  # 30.00 of 34.90 captured
        lambda u: u.session.execute(
            update(t.orders).where(o.id == order.id).values(captured_minor=3000)
        )
    )
    if how == "cancel":
        done = shop.orders.cancel(order.id)
        assert done.status is OrderStatus.CANCELLED
    else:
        done = shop.orders.refund(order.id, key="full")
    assert done.payment_status is PaymentStatus.REFUNDED
    assert done.refunded == done.captured == Money.of("30.00", "EUR")
    assert all(ln.refunded <= ln.gross for ln in done.lines)
    assert Money.zero("EUR") < done.shipping_refunded < done.shipping_paid  # a share of each
    assert payments.payment(order.payment_id).refunded_minor == 3000
    assert refunds_sent(gateway) == 1
    assert shop.orders.recover_refunds(older_than_s=0) == []


def test_a_return_is_refunded_after_a_refund_logged_under_its_key(any_db: Database) -> None:
    shop, gateway, payments = shop_with_shipping(any_db)
    order = paid_order(shop, {"TEE": 2})
    shop.orders.fulfil(order.id, {"TEE": 2})
    # a caller's refund keyed "return:rma-1", as written before the key was reserved
    shop.orders._refund(order.id, Money.of("1.00", "EUR"), key="return:rma-1", shipping=False)
    back = shop.orders.return_items(order.id, {"TEE": 1}, key="rma-1")
    assert back.refunded == Money.of("11.00", "EUR")
    assert payments.payment(order.payment_id).refunded_minor == 1100
    assert shop.orders.return_items(order.id, {"TEE": 1}, key="rma-1") == back  # once per key
    assert shop.inventory.level("TEE").on_hand == 99
    assert refunds_sent(gateway) == 2
    check_money_invariants(shop, payments)


def test_two_concurrent_returns_with_one_key_count_it_once(any_db: Database) -> None:
    shop, _, payments = shop_with_shipping(any_db)
    for _ in range(3):
        order = paid_order(shop, {"TEE": 2})
        shop.orders.fulfil(order.id, {"TEE": 2})
        start = threading.Barrier(2)

        def call(order_id: str = order.id, start: threading.Barrier = start) -> None:
            start.wait()
            shop.orders.return_items(order_id, {"TEE": 1}, key="rma")

        threads = [threading.Thread(target=call) for _ in range(2)]
        for th in threads:
            th.start()
        for th in threads:
            th.join()
        back = shop.orders.get(order.id)
        assert back.lines[0].returned == 1
        assert back.refunded == Money.of("10.00", "EUR")
    check_money_invariants(shop, payments)


@contextlib.contextmanager
def log_reads(db: Database) -> Iterator[list[str]]:
    """The SELECTs of the order log (``order_events``) sent while the block runs."""
    from sqlalchemy import event

    engine = db._engines()[0]
    seen: list[str] = []

    def count(conn: Any, cursor: Any, statement: str, *args: Any) -> None:
        text = statement.lstrip().upper()
        if text.startswith("SELECT") and "ORDER_EVENTS" in text:
            seen.append(statement)

    event.listen(engine, "before_cursor_execute", count)
    try:
        yield seen
    finally:
        event.remove(engine, "before_cursor_execute", count)


def test_a_refund_reads_the_order_log_once_per_transaction(any_db: Database) -> None:
    """Deciding reads the log once (under the row lock), recording once: not again per step."""
    shop, _, payments = shop_with_shipping(any_db)
    order = paid_order(shop)
    with log_reads(any_db) as reads:
        shop.orders.refund(order.id, Money.of("5.00", "EUR"), key="k1")
    assert len(reads) == 2
    with log_reads(any_db) as reads:
        shop.orders.refund(order.id, Money.of("5.00", "EUR"), key="k1")  # done: one look
    assert len(reads) == 1
    with log_reads(any_db) as reads:
        shop.orders.cancel(order.id)
    assert len(reads) == 3  # the cancel's transaction, the pending refunds, the record
    check_money_invariants(shop, payments)


def test_two_concurrent_returns_of_one_order_refund_no_more_than_is_left(
    any_db: Database,
) -> None:
    """Two returns (two keys) of one order at once, after a goodwill refund took most of what
    the lines had: both are taken back, and the refunds together pay back what was left on the
    lines, once, as one after the other would; neither fails after its return was written."""
    shop, _, payments = shop_with_shipping(any_db)
    for _ in range(3):
        order = paid_order(shop, {"TEE": 1, "MUG": 1})
        shop.orders.fulfil(order.id, {"TEE": 1, "MUG": 1})
        shop.orders.refund(order.id, Money.of("12.00", "EUR"), key="goodwill")
        start = threading.Barrier(2)
        out: dict[str, object] = {}

        def call(
            sku: str,
            order_id: str = order.id,
            start: threading.Barrier = start,
            out: dict[str, object] = out,
        ) -> None:
            start.wait()
            try:
                out[sku] = shop.orders.return_items(order_id, {sku: 1}, key=f"rma-{sku}")
            except Exception as e:
                out[sku] = e

        threads = [threading.Thread(target=call, args=(sku,)) for sku in ("TEE", "MUG")]
        for th in threads:
            th.start()
        for th in threads:
            th.join()
        assert all(isinstance(v, Order) for v in out.values()), out
        back = shop.orders.get(order.id)
        assert [ln.returned for ln in back.lines] == [1, 1]
        assert back.refunded == Money.of("20.00", "EUR")  # the lines' 20.00, not 28.00
        assert back.shipping_refunded == Money.zero("EUR")
        assert payments.payment(order.payment_id).refunded_minor == 2000
    assert shop.inventory.level("TEE").on_hand == shop.inventory.level("MUG").on_hand == 100
    assert shop.orders.recover_refunds(older_than_s=0) == []
    check_money_invariants(shop, payments)
