"""The checkout saga on SQLite: placement, replays, declines, 3-D Secure, faults at every step."""

from __future__ import annotations

import threading
import uuid
from collections.abc import Callable
from typing import Any

import pytest

from commercekit.analytics import AnalyticsEvent
from commercekit.commerce.cart import CartStatus
from commercekit.commerce.checkout import STEPS, CheckoutStatus
from commercekit.commerce.inventory import ReservationStatus
from commercekit.commerce.orders import OrderPage, OrderStatus, PaymentStatus
from commercekit.errors import (
    CartFrozenError,
    EmptyCartError,
    InvalidInputError,
    InvalidTransitionError,
    NotFoundError,
    OutOfStockError,
    PaymentDeclinedError,
)
from commercekit.metrics import InMemoryMetrics
from commercekit.money import Money
from commercekit.payments import PaymentState
from commercekit.repository import Database
from tests.commerce._shop import (
    DECLINED,
    GOOD,
    THREE_DS,
    authorizations,
    cart_with,
    check_money_invariants,
    live_reservations,
    make_shop,
    outbox_events,
)
from tests.commerce.conftest import FakeClock
from tests.commerce.test_cart_store_contract import drop_prefix, redis_store


def test_a_checkout_places_one_paid_order_and_replays_it(db: Database, clock: FakeClock) -> None:
    metrics = InMemoryMetrics()
    shop, gateway, payments = make_shop(db, clock=clock, metrics=metrics)
    cart_id = cart_with(shop, {"TEE": 2, "MUG": 1})
    result = shop.checkout.place(cart_id, GOOD, region="DE")
    assert result.status is CheckoutStatus.COMPLETED
    assert not result.replayed
    order = result.order
    assert order is not None
    assert order.number.startswith("CK-")
    assert (order.status, order.payment_status) == (OrderStatus.PLACED, PaymentStatus.PAID)
    assert order.total == Money.of("30.00", "EUR")
    assert order.captured == order.total
    assert shop.inventory.level("TEE").allocated == 2
    assert shop.inventory.level("TEE").reserved == 0
    assert shop.carts.get(cart_id).status is CartStatus.COMPLETED
    again = shop.checkout.place(cart_id, GOOD, region="DE")
    assert again.replayed
    assert again.order is not None
    assert again.order.id == order.id
    assert authorizations(gateway) == 1
    events = outbox_events(shop)
    assert [e["event"] for e in events] == ["Order Completed"]
    props = events[0]["properties"]
    assert (props["order_id"], props["total"], props["currency"]) == (order.id, "30.00", "EUR")
    parsed = AnalyticsEvent.from_json(events[0])  # the analytics pipeline's wire form
    assert parsed.name == "Order Completed"
    assert parsed.event_id == events[0]["event_id"]
    # Segment's spec: the product's id in product_id, the variant bought in sku
    assert [p["product_id"] for p in parsed.properties["products"]] == ["p-MUG", "p-TEE"]
    assert [p["sku"] for p in parsed.properties["products"]] == ["MUG", "TEE"]
    assert [s for s, outcome, _ in shop.checkout.steps(result.checkout_id)] == [
        "started",
        "place_order",
        "completed",
    ]
    snap = metrics.snapshot()
    assert snap.value("commercekit_commerce_checkouts_total", outcome="completed") == 1
    assert snap.distribution("commercekit_commerce_checkout_step_seconds", step="authorize").count
    check_money_invariants(shop, payments)


def test_twenty_identical_submissions_give_one_order_and_nineteen_replays(
    db: Database,
) -> None:
    shop, gateway, payments = make_shop(db)
    cart_id = cart_with(shop, {"TEE": 1})
    barrier = threading.Barrier(20)
    results = []
    lock = threading.Lock()

    def submit() -> None:
        barrier.wait()
        r = shop.checkout.place(cart_id, GOOD, region="DE")
        with lock:
            results.append(r)

    threads = [threading.Thread(target=submit) for _ in range(20)]
    for th in threads:
        th.start()
    for th in threads:
        th.join()
    assert len(results) == 20
    assert len({r.order.id for r in results if r.order}) == 1
    assert sum(r.replayed for r in results) == 19
    assert authorizations(gateway) == 1
    check_money_invariants(shop, payments)


def test_a_decline_releases_the_stock_at_once_and_a_new_card_works(db: Database) -> None:
    shop, _, payments = make_shop(db)
    cart_id = cart_with(shop, {"TEE": 3})
    with pytest.raises(PaymentDeclinedError) as info:
        shop.checkout.place(cart_id, DECLINED, region="DE")
    assert info.value.decline_code == "card_declined"
    assert shop.inventory.level("TEE").reserved == 0
    assert live_reservations(shop) == 0
    result = shop.checkout.place(cart_id, GOOD, region="DE")  # a second attempt
    assert result.checkout_id.endswith(".2")
    assert result.order is not None
    check_money_invariants(shop, payments)


def test_three_d_secure_pauses_and_resumes(db: Database, clock: FakeClock) -> None:
    shop, gateway, payments = make_shop(db, clock=clock)
    cart_id = cart_with(shop, {"MUG": 2})
    paused = shop.checkout.place(cart_id, THREE_DS, region="DE")
    assert paused.status is CheckoutStatus.ACTION_REQUIRED
    assert paused.action is not None
    assert shop.inventory.level("MUG").reserved == 2  # held while the customer acts
    again = shop.checkout.place(cart_id, THREE_DS, region="DE")
    assert again.status is CheckoutStatus.ACTION_REQUIRED
    assert again.replayed
    gateway.authenticate(paused.action.reference, success=True)
    done = shop.checkout.complete_action(paused.checkout_id)
    assert done.status is CheckoutStatus.COMPLETED
    assert done.order is not None
    assert done.order.payment_status is PaymentStatus.PAID
    assert shop.checkout.complete_action(paused.checkout_id).replayed
    assert authorizations(gateway) == 1
    check_money_invariants(shop, payments)


def test_an_abandoned_challenge_gives_the_stock_back_after_its_window(
    db: Database, clock: FakeClock
) -> None:
    shop, _, payments = make_shop(db, clock=clock, action_timeout_s=600)
    cart_id = cart_with(shop, {"MUG": 2})
    paused = shop.checkout.place(cart_id, THREE_DS, region="DE")
    assert shop.checkout.recover() == []  # still inside its window
    clock.advance(601)
    [recovered] = shop.checkout.recover()
    assert recovered.outcome == "compensated"
    assert shop.inventory.level("MUG").reserved == 0
    assert payments.payment(paused.checkout_id).state is PaymentState.VOIDED
    check_money_invariants(shop, payments)


def test_a_failed_challenge_releases_the_stock(db: Database, clock: FakeClock) -> None:
    shop, gateway, payments = make_shop(db, clock=clock)
    cart_id = cart_with(shop, {"MUG": 1})
    paused = shop.checkout.place(cart_id, THREE_DS, region="DE")
    assert paused.action is not None
    gateway.authenticate(paused.action.reference, success=False)
    with pytest.raises(PaymentDeclinedError):
        shop.checkout.complete_action(paused.checkout_id)
    assert live_reservations(shop) == 0
    check_money_invariants(shop, payments)


@pytest.mark.parametrize("kind", ["sql", "redis"])
def test_the_cart_is_frozen_while_the_payment_runs_and_opens_again_on_a_decline(
    db: Database, clock: FakeClock, kind: str
) -> None:
    """As Oscar freezes a basket: no line goes into a cart while it is being paid for (the
    order would not have it), and a failed payment gives the cart back."""
    prefix = f"ck-test:{uuid.uuid4().hex[:12]}:"
    cart_store = redis_store(prefix) if kind == "redis" else None
    seen: list[CartStatus] = []
    shop: Any = None

    def during_payment(phase: str, step: str, checkout_id: str) -> None:
        if (phase, step) == ("before", "authorize"):
            cart_id = checkout_id.rpartition(".")[0]
            seen.append(shop.carts.get(cart_id).status)
            with pytest.raises(CartFrozenError):
                shop.carts.add(cart_id, "MUG")

    try:
        shop, _, payments = make_shop(db, clock=clock, cart_store=cart_store, hooks=during_payment)
        cart_id = cart_with(shop, {"TEE": 1})
        with pytest.raises(PaymentDeclinedError):
            shop.checkout.place(cart_id, DECLINED, region="DE")
        assert shop.carts.get(cart_id).status is CartStatus.OPEN
        shop.carts.add(cart_id, "CAP")
        result = shop.checkout.place(cart_id, GOOD, region="DE")
        assert seen == [CartStatus.FROZEN, CartStatus.FROZEN]
        assert result.order is not None
        assert {ln.sku: ln.qty for ln in result.order.lines} == {"CAP": 1, "TEE": 1}
        assert shop.carts.get(cart_id).status is CartStatus.COMPLETED
        assert shop.checkout.recover() == []
        check_money_invariants(shop, payments)
    finally:
        if cart_store is not None:
            cart_store.close()
            drop_prefix(prefix)


def test_bad_checkouts_are_typed(db: Database) -> None:
    shop, _, _ = make_shop(db, skus={"RARE": 1})
    empty = shop.carts.create("EUR")
    with pytest.raises(EmptyCartError):
        shop.checkout.place(empty.id, GOOD, region="DE")
    greedy = cart_with(shop, {"RARE": 2})
    with pytest.raises(OutOfStockError):
        shop.checkout.place(greedy, GOOD, region="DE")
    with pytest.raises(NotFoundError):  # refused before any attempt was written
        shop.checkout.status(f"{greedy}.1")
    assert live_reservations(shop) == 0


def test_each_place_call_is_timed_by_how_it_ended(db: Database) -> None:
    """``commercekit_commerce_checkout_seconds``: the checkout-latency SLO's histogram."""
    metrics = InMemoryMetrics()
    shop, _, _ = make_shop(db, metrics=metrics, skus={"TEE": 5, "MUG": 5, "RARE": 1})
    paid = cart_with(shop, {"TEE": 1})
    shop.checkout.place(paid, GOOD, region="DE")
    shop.checkout.place(paid, GOOD, region="DE")  # replayed
    with pytest.raises(PaymentDeclinedError):
        shop.checkout.place(cart_with(shop, {"MUG": 1}), DECLINED, region="DE")
    with pytest.raises(OutOfStockError):
        shop.checkout.place(cart_with(shop, {"RARE": 2}), GOOD, region="DE")
    with pytest.raises(EmptyCartError):
        shop.checkout.place(shop.carts.create("EUR").id, GOOD, region="DE")
    shop.checkout.place(cart_with(shop, {"MUG": 1}), THREE_DS, region="DE")
    snap = metrics.snapshot()
    name = "commercekit_commerce_checkout_seconds"
    for outcome in ("completed", "replayed", "declined", "sold_out", "error", "action_required"):
        timed = snap.distribution(name, outcome=outcome)
        assert timed.count == 1, outcome
        assert timed.max > 0, outcome


def test_fifty_checkouts_for_ten_units_on_sqlite_threads(db: Database) -> None:
    shop, _, payments = make_shop(db, skus={"DROP": 10})
    carts = [cart_with(shop, {"DROP": 1}) for _ in range(50)]
    barrier = threading.Barrier(50)
    orders: list[str] = []
    sold_out: list[str] = []
    lock = threading.Lock()

    def buy(cart_id: str) -> None:
        barrier.wait()
        try:
            r = shop.checkout.place(cart_id, GOOD, region="DE")
            with lock:
                orders.append(r.order.id if r.order else "")
        except OutOfStockError:
            with lock:
                sold_out.append(cart_id)

    threads = [threading.Thread(target=buy, args=(c,)) for c in carts]
    for th in threads:
        th.start()
    for th in threads:
        th.join()
    assert (len(orders), len(sold_out)) == (10, 40)
    level = shop.inventory.level("DROP")
    assert (level.allocated, level.reserved, level.on_hand) == (10, 0, 10)
    check_money_invariants(shop, payments)


class Once:
    """A hook that raises once at one (phase, step), as a crash there would."""

    def __init__(self, phase: str, step: str) -> None:
        self.phase, self.step, self.fired = phase, step, False

    def __call__(self, phase: str, step: str, checkout_id: str) -> None:
        if (phase, step) == (self.phase, self.step) and not self.fired:
            self.fired = True
            raise RuntimeError(f"injected fault {phase} {step}")


@pytest.mark.parametrize("phase", ["before", "after"])
@pytest.mark.parametrize("step", STEPS)
def test_a_fault_at_every_step_leaves_no_order_without_payment_and_no_stock_held(
    db: Database, clock: FakeClock, phase: str, step: str
) -> None:
    hook = Once(phase, step)
    shop, gateway, payments = make_shop(db, clock=clock, hooks=hook)
    cart_id = cart_with(shop, {"TEE": 2, "CAP": 1})
    with pytest.raises(RuntimeError, match="injected"):
        shop.checkout.place(cart_id, GOOD, region="DE")
    assert hook.fired
    check_money_invariants(shop, payments)
    shop.checkout.recover()  # converges in one pass
    assert shop.checkout.recover() == []
    assert live_reservations(shop) == 0
    check_money_invariants(shop, payments)
    order = shop.orders.by_checkout(f"{cart_id}.1")
    if order is not None:  # the fault came after the order: it was finished forward
        assert order.payment_status is PaymentStatus.PAID
        assert shop.checkout.status(f"{cart_id}.1") is CheckoutStatus.COMPLETED
    else:  # before: compensated, and the customer can simply submit again
        assert shop.inventory.available("TEE") == 100
        result = shop.checkout.place(cart_id, GOOD, region="DE")
        assert result.order is not None
    assert authorizations(gateway) <= 2
    check_money_invariants(shop, payments)


def test_cancel_and_fulfil_race_one_wins_and_stock_is_released_once(db: Database) -> None:
    shop, _, payments = make_shop(db, capture="fulfilment")
    order = shop.checkout.place(cart_with(shop, {"TEE": 2}), GOOD, region="DE").order
    assert order is not None
    assert order.payment_status is PaymentStatus.AUTHORIZED
    outcomes: list[str] = []
    barrier = threading.Barrier(2)

    def cancel() -> None:
        barrier.wait()
        try:
            shop.orders.cancel(order.id)
            outcomes.append("cancelled")
        except InvalidTransitionError:
            outcomes.append("cancel lost")

    def fulfil() -> None:
        barrier.wait()
        try:
            shop.orders.fulfil(order.id, {"TEE": 2})
            outcomes.append("fulfilled")
        except InvalidTransitionError:
            outcomes.append("fulfil lost")

    threads = [threading.Thread(target=cancel), threading.Thread(target=fulfil)]
    for th in threads:
        th.start()
    for th in threads:
        th.join()
    assert sorted(outcomes) in (["cancelled", "fulfil lost"], ["cancel lost", "fulfilled"])
    final = shop.orders.get(order.id)
    if "cancelled" in outcomes:
        assert final.payment_status is PaymentStatus.VOIDED
        assert shop.inventory.level("TEE").allocated == 0
        with pytest.raises(InvalidTransitionError):
            shop.orders.capture(order.id)  # capture of a cancelled order
        assert [e["event"] for e in outbox_events(shop)][-1] == "Order Cancelled"
    else:
        assert final.status is OrderStatus.COMPLETED
        assert shop.inventory.level("TEE").on_hand == 98
    check_money_invariants(shop, payments)


def test_partial_refunds_and_returns(db: Database) -> None:
    shop, _, payments = make_shop(db)
    order = shop.checkout.place(cart_with(shop, {"TEE": 2, "MUG": 1}), GOOD, region="DE").order
    assert order is not None
    shop.orders.refund(order.id, Money.of("7.01", "EUR"), key="goodwill")
    again = shop.orders.refund(order.id, Money.of("7.01", "EUR"), key="goodwill")
    assert again.refunded == Money.of("7.01", "EUR")
    assert sum((ln.refunded for ln in again.lines), Money.zero("EUR")) == again.refunded
    shop.orders.fulfil(order.id, {"TEE": 2, "MUG": 1})
    back = shop.orders.return_items(order.id, {"TEE": 1}, key="rma-1")
    assert back.lines[1].returned == 1 or back.lines[0].returned == 1
    assert shop.inventory.level("TEE").on_hand == 99  # 100 - 2 shipped + 1 back
    assert payments.payment(order.payment_id).refunded_minor == back.refunded.amount_minor
    for line in back.lines:
        assert line.refunded <= line.gross
    assert [e["event"] for e in outbox_events(shop)].count("Order Refunded") == 2
    check_money_invariants(shop, payments)
    assert shop.inventory.reservation(order.reservation_id) is not None
    res = shop.inventory.reservation(order.reservation_id)
    assert res is not None
    assert res.status is ReservationStatus.COMMITTED


def test_a_cancelled_paid_order_restocks_exactly_once(db: Database) -> None:
    shop, _, payments = make_shop(db)  # captured at placement
    order = shop.checkout.place(cart_with(shop, {"TEE": 2, "MUG": 1}), GOOD, region="DE").order
    assert order is not None
    assert (shop.inventory.available("TEE"), shop.inventory.level("TEE").allocated) == (98, 2)
    cancelled = shop.orders.cancel(order.id)
    assert cancelled.status is OrderStatus.CANCELLED
    assert cancelled.payment_status is PaymentStatus.REFUNDED
    again = shop.orders.cancel(order.id)  # a second cancel settles nothing more
    assert again.refunded == cancelled.refunded == order.total
    for sku in ("TEE", "MUG"):
        level = shop.inventory.level(sku)
        assert (level.on_hand, level.allocated, level.reserved) == (100, 0, 0)
    res = shop.inventory.reservation(order.reservation_id)
    assert res is not None
    assert res.status is ReservationStatus.CANCELLED
    assert [e["event"] for e in outbox_events(shop)].count("Order Cancelled") == 1
    check_money_invariants(shop, payments)


def test_a_return_restocks_once_per_key_even_when_a_crash_interrupts_it(db: Database) -> None:
    shop, _, payments = make_shop(db)
    order = shop.checkout.place(cart_with(shop, {"TEE": 3}), GOOD, region="DE").order
    assert order is not None
    shop.orders.fulfil(order.id, {"TEE": 3})
    assert shop.inventory.level("TEE").on_hand == 97
    adjust = shop.inventory.adjust

    def crash(*args: object, **kwargs: object) -> bool:
        raise RuntimeError("the worker died after recording the return")

    shop.inventory.adjust = crash  # type: ignore[method-assign]
    with pytest.raises(RuntimeError):
        shop.orders.return_items(order.id, {"TEE": 2}, key="rma-9")
    shop.inventory.adjust = adjust  # type: ignore[method-assign]
    assert shop.inventory.level("TEE").on_hand == 97  # recorded, not yet restocked
    done = shop.orders.return_items(order.id, {"TEE": 1}, key="rma-9")  # the replay finishes it
    assert done.lines[0].returned == 2  # the quantities first recorded
    assert shop.inventory.level("TEE").on_hand == 99
    assert shop.orders.return_items(order.id, {"TEE": 2}, key="rma-9").refunded == done.refunded
    assert shop.inventory.level("TEE").on_hand == 99  # once per key
    assert done.refunded == Money.of("20.00", "EUR")
    shop.orders.return_items(order.id, {"TEE": 1}, key="rma-10")  # another key: the last one
    assert shop.inventory.level("TEE").on_hand == 100
    with pytest.raises(InvalidInputError):
        shop.orders.return_items(order.id, {"TEE": 1}, key="rma-11")  # none left shipped
    assert shop.inventory.level("TEE").on_hand == 100
    check_money_invariants(shop, payments)


def test_browsing_events_go_through_the_metrics_hook_with_unique_ids(db: Database) -> None:
    metrics = InMemoryMetrics()
    shop, _, _ = make_shop(db, metrics=metrics)
    cart_id = cart_with(shop, {"TEE": 1, "MUG": 2})
    shop.carts.remove(cart_id, "MUG")
    shop.pricing.vouchers.create("TEN", percent=10)
    shop.carts.set_voucher(cart_id, "TEN")
    shop.checkout.place(cart_id, GOOD, region="DE")
    events = metrics.events
    names = [e.attributes["event"] for e in events]
    assert names == [
        "Product Added",
        "Product Added",
        "Product Removed",
        "Coupon Applied",
        "Checkout Started",
        "Payment Info Entered",
    ]
    assert events[0].name == "ecommerce.product_added"
    assert events[0].attributes["product_id"] == "p-TEE"  # the product; the variant in sku
    assert events[0].attributes["sku"] == "TEE"
    assert (events[2].attributes["product_id"], events[2].attributes["sku"]) == ("p-MUG", "MUG")
    assert len({e.attributes["event_id"] for e in events}) == len(events)


def test_a_guest_checkout_carries_its_anonymous_id_into_the_order_and_its_events(
    db: Database,
) -> None:
    shop, _, _ = make_shop(db)
    guest = shop.checkout.place(
        cart_with(shop, {"TEE": 1}), GOOD, region="DE", anonymous_id="anon-7f3a"
    ).order
    member = shop.checkout.place(
        cart_with(shop, {"MUG": 1}, customer_id="c-42"), GOOD, region="DE", anonymous_id="anon-9"
    ).order
    assert guest is not None
    assert member is not None
    assert (guest.customer_id, guest.anonymous_id) == (None, "anon-7f3a")
    assert shop.orders.get(guest.id).anonymous_id == "anon-7f3a"  # stored, not just returned
    shop.orders.cancel(guest.id)
    events = [AnalyticsEvent.from_json(e) for e in outbox_events(shop)]
    who = [(e.name, e.customer_id, e.anonymous_id) for e in events]
    assert who == [
        ("Order Completed", None, "anon-7f3a"),
        ("Order Completed", "c-42", "anon-9"),
        ("Order Cancelled", None, "anon-7f3a"),
        ("Order Refunded", None, "anon-7f3a"),  # the cancel refunds the captured payment
    ]
    with pytest.raises(InvalidInputError):
        shop.checkout.place(cart_with(shop, {"CAP": 1}), GOOD, region="DE", anonymous_id="")


def _all_pages(listing: Callable[[str | None], OrderPage]) -> list[str]:
    """The ids of every page of *listing*, following ``next_after`` to the end."""
    seen: list[str] = []
    after: str | None = None
    while True:
        page = listing(after)
        seen += [o.id for o in page.orders]
        if page.next_after is None:
            return seen
        after = page.next_after


def test_orders_list_newest_first_in_keyset_pages_per_customer_and_for_everyone(
    db: Database, clock: FakeClock
) -> None:
    shop, _, _ = make_shop(db, clock=clock)
    placed = []
    for i in range(5):
        clock.advance(1 if i != 3 else 0)  # two orders in one instant: the id breaks the tie
        order = shop.checkout.place(
            cart_with(shop, {"MUG": 1}, customer_id="c-7"), GOOD, region="DE"
        ).order
        assert order is not None
        placed.append(order)
    clock.advance(1)
    other = shop.checkout.place(cart_with(shop, {"MUG": 1}, customer_id="c-8"), GOOD, region="DE")
    clock.advance(1)
    guest = shop.checkout.place(cart_with(shop, {"MUG": 1}), GOOD, region="DE")
    assert other.order is not None
    assert guest.order is not None
    seen = _all_pages(lambda after: shop.orders.for_customer("c-7", limit=2, after=after))
    at = [1, 2, 3, 3, 4]  # when each was placed
    newest_first = [oid for _, oid in sorted(zip(at, (o.id for o in placed), strict=True))][::-1]
    assert seen == newest_first
    bad_pages: list[dict[str, Any]] = [{"after": "not a cursor"}, {"limit": 0}]
    for bad in bad_pages:
        with pytest.raises(InvalidInputError):
            shop.orders.for_customer("c-7", **bad)

    # everyone's: the guest's and c-8's come first, pages neither repeat nor skip
    everyone = [guest.order.id, other.order.id, *newest_first]
    for size in (1, 3, 7, 200):
        assert (
            _all_pages(lambda after, size=size: shop.orders.recent(size, after=after)) == everyone
        )
    assert shop.orders.recent().next_after is None
    first = shop.orders.recent(3)
    assert [o.id for o in first.orders] == everyone[:3]
    assert first.next_after is not None
    cancelled = shop.orders.cancel(newest_first[1], reason="admin")
    assert cancelled.status is OrderStatus.CANCELLED
    assert [o.id for o in shop.orders.recent(status="cancelled").orders] == [newest_first[1]]
    placed_now = _all_pages(
        lambda after: shop.orders.recent(2, after=after, status=OrderStatus.PLACED)
    )
    assert placed_now == [oid for oid in everyone if oid != newest_first[1]]
    bad_inputs: list[dict[str, Any]] = [
        {"limit": 0},
        {"limit": 201},
        {"limit": True},
        {"limit": 2.0},
        {"after": "nope"},
        {"after": "inf/" + everyone[0]},
        {"after": "1.0/"},
        {"status": "shipped"},
    ]
    for bad in bad_inputs:
        with pytest.raises(InvalidInputError):
            shop.orders.recent(**bad)
