"""The Redis cart store's own promises (expiry, typed errors, lost replies) and checkout with it.

The contract every store keeps is in ``test_cart_store_contract.py``; here is
what only a store outside the database has: a time to live pushed back by each
write, Redis down as a typed error, and the checkout's close of the cart after
its last commit, which a crash between the two must not break.
"""

from __future__ import annotations

import socket
import threading
import time
import uuid
from collections.abc import Iterator
from typing import Any

import pytest
import redis

from commercekit.commerce.cart import Carts, CartStatus, RedisCartStore
from commercekit.commerce.checkout import STEPS, CheckoutStatus, Recovered
from commercekit.errors import (
    CartFrozenError,
    EmptyCartError,
    InvalidInputError,
    InvalidStateError,
    NotFoundError,
    PaymentDeclinedError,
    StoreUnavailableError,
    UnavailableError,
)
from commercekit.metrics import InMemoryMetrics
from commercekit.repository import Database
from tests.commerce._shop import (
    DECLINED,
    GOOD,
    authorizations,
    cart_with,
    check_money_invariants,
    live_reservations,
    make_shop,
)
from tests.commerce.conftest import FakeClock
from tests.commerce.test_cart_store_contract import REDIS_URL, drop_prefix, redis_store


@pytest.fixture
def prefix() -> Iterator[str]:
    name = f"ck-test:{uuid.uuid4().hex[:12]}:"
    yield name
    drop_prefix(name)


@pytest.fixture
def client() -> Iterator[redis.Redis]:
    c = redis.Redis.from_url(REDIS_URL)
    yield c
    c.close()


@pytest.fixture
def store(prefix: str) -> Iterator[RedisCartStore]:
    s = redis_store(prefix, ttl_s=3600)
    yield s
    s.close()


def test_every_write_pushes_the_expiry_back(
    store: RedisCartStore, client: redis.Redis, prefix: str
) -> None:
    carts = Carts(store=store)
    cart = carts.create("EUR")
    key = f"{prefix}c:{cart.id}"
    assert 3_500_000 < client.pttl(key) <= 3_600_000
    client.pexpire(key, 5_000)  # as if the cart had sat idle for most of its time
    carts.add(cart.id, "MUG")
    assert client.pttl(key) > 3_500_000
    client.delete(key)  # what the expiry does: the cart is gone
    with pytest.raises(NotFoundError):
        carts.get(cart.id)
    with pytest.raises(NotFoundError):
        carts.add(cart.id, "MUG")
    # the idle index forgets a cart its expiry dropped
    assert client.zscore(f"{prefix}idle", cart.id) is not None
    assert store.expire_idle(float("inf"), limit=10) == 0
    assert client.zscore(f"{prefix}idle", cart.id) is None


def test_the_idle_index_forgets_dropped_carts_without_expire_idle(
    client: redis.Redis, prefix: str, clock: FakeClock
) -> None:
    """Carts Redis dropped by their time to live leave the idle index with the next write,
    so it stays as large as the carts Redis holds even when nobody runs expire_abandoned."""
    store = redis_store(prefix, ttl_s=600)
    carts = Carts(store=store, clock=clock)
    try:
        old = [carts.create("EUR").id for _ in range(5)]
        carts.add(old[0], "MUG")
        assert client.zcard(f"{prefix}idle") == 5
        clock.advance(601)
        client.delete(*(f"{prefix}c:{i}" for i in old))  # what their expiry did meanwhile
        fresh = carts.create("EUR")
        assert client.zrange(f"{prefix}idle", 0, -1) == [fresh.id.encode()]
        clock.advance(300)
        carts.add(fresh.id, "CAP")  # an update trims too; live carts stay listed
        assert client.zrange(f"{prefix}idle", 0, -1) == [fresh.id.encode()]
    finally:
        store.close()


def test_redis_down_is_a_typed_error_never_redis_pys() -> None:
    down = RedisCartStore.from_url("redis://127.0.0.1:1/0", timeout_s=0.5)
    carts = Carts(store=down)
    calls: list[Any] = [
        lambda: carts.create("EUR"),
        lambda: carts.get("c1"),
        lambda: carts.add("c1", "MUG"),
        lambda: carts.merge("c1", "c2"),
        lambda: carts.complete("c1"),
        lambda: carts.expire_abandoned(idle_s=60),
    ]
    for call in calls:
        with pytest.raises(StoreUnavailableError) as info:
            call()
        assert isinstance(info.value, UnavailableError)
        assert isinstance(info.value.__cause__, redis.RedisError | OSError)
    down.close()


def test_bad_settings_and_unreadable_values_are_typed(
    store: RedisCartStore, client: redis.Redis, prefix: str
) -> None:
    with pytest.raises(InvalidInputError):
        RedisCartStore.from_url("http://not-redis")
    with pytest.raises(InvalidInputError):
        RedisCartStore(client, ttl_s=0)
    with pytest.raises(InvalidInputError):
        RedisCartStore(client, prefix="")
    client.set(f"{prefix}c:junk", b"not a cart")
    with pytest.raises(InvalidInputError):
        Carts(store=store).get("junk")
    client.set(f"{prefix}c:deep", b"[" * 100_000)  # another writer's value, nested past the stack
    with pytest.raises(InvalidInputError):
        Carts(store=store).get("deep")
    assert "ttl_s" in repr(store)


def test_a_lost_exec_reply_never_adds_a_line_twice(
    store: RedisCartStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The EXEC was kept but its reply lost: the next read finds the write's stamp, and stops."""
    carts = Carts(store=store)
    cart = carts.create("EUR")
    real = redis.client.Pipeline.execute
    lost = []

    def execute(self: Any, *args: Any, **kwargs: Any) -> Any:
        result = real(self, *args, **kwargs)
        if not lost:
            lost.append(True)
            raise redis.WatchError("connection lost while watching")
        return result

    monkeypatch.setattr(redis.client.Pipeline, "execute", execute)
    assert carts.add(cart.id, "MUG", 2).lines == {"MUG": 2}
    assert lost
    assert carts.get(cart.id).lines == {"MUG": 2}
    assert carts.get(cart.id).version == 2


def test_a_lost_reply_with_another_write_in_between_applies_the_change_once(
    store: RedisCartStore, prefix: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The EXEC was kept, its reply lost, and another app server wrote the cart before we
    read it again: the write's mark (not the cart's stamp, overwritten) says it was kept."""
    carts = Carts(store=store)
    other = Carts(store=RedisCartStore.from_url(REDIS_URL, prefix=prefix))
    cart = carts.create("EUR")
    real = redis.client.Pipeline.execute
    lost: list[bool] = []

    def execute(self: Any, *args: Any, **kwargs: Any) -> Any:
        result = real(self, *args, **kwargs)
        if not lost:
            lost.append(True)
            monkeypatch.setattr(redis.client.Pipeline, "execute", real)
            other.add(cart.id, "CAP", 1)  # the other writer, between our EXEC and our re-read
            monkeypatch.setattr(redis.client.Pipeline, "execute", execute)
            raise redis.WatchError("A ConnectionError occurred while watching one or more keys")
        return result

    monkeypatch.setattr(redis.client.Pipeline, "execute", execute)
    assert carts.add(cart.id, "MUG", 2).lines == {"MUG": 2}
    assert lost
    assert carts.get(cart.id).lines == {"CAP": 1, "MUG": 2}
    assert carts.get(cart.id).version == 3


def test_a_write_that_lost_a_watch_race_reads_again_without_asking_for_its_mark(
    store: RedisCartStore, prefix: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """An EXEC refused because a watched cart changed wrote nothing (Redis answered it): the
    store reads again and reapplies at once, with no EXISTS of the write's mark."""
    carts = Carts(store=store)
    other = Carts(store=RedisCartStore.from_url(REDIS_URL, prefix=prefix))
    cart = carts.create("EUR")
    sent: list[str] = []
    real_command = store._r.execute_command

    def command(*args: Any, **kwargs: Any) -> Any:
        sent.append(str(args[0]).upper())
        return real_command(*args, **kwargs)

    monkeypatch.setattr(store._r, "execute_command", command)
    real = redis.client.Pipeline.execute
    raced: list[bool] = []

    def execute(self: Any, *args: Any, **kwargs: Any) -> Any:
        if not raced and self.watching:
            raced.append(True)
            other.add(cart.id, "CAP", 1)  # another app server, between our WATCH and our EXEC
        return real(self, *args, **kwargs)

    monkeypatch.setattr(redis.client.Pipeline, "execute", execute)
    assert carts.add(cart.id, "MUG", 2).lines == {"CAP": 1, "MUG": 2}
    assert raced
    assert "EXISTS" not in sent
    assert carts.get(cart.id).version == 3


class ExecDropper:
    """A loopback proxy to the machine's Redis that drops the connection at every EXEC."""

    def __init__(self) -> None:
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.port = self.listener.getsockname()[1]
        self.execs = 0
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self) -> None:
        while True:
            try:
                client, _ = self.listener.accept()
            except OSError:
                return
            upstream = socket.create_connection(("127.0.0.1", 6379))
            threading.Thread(target=self._pipe, args=(client, upstream, True), daemon=True).start()
            threading.Thread(target=self._pipe, args=(upstream, client, False), daemon=True).start()

    def _pipe(self, src: socket.socket, dst: socket.socket, inspect: bool) -> None:
        try:
            while data := src.recv(65536):
                if inspect and b"EXEC" in data.upper():
                    self.execs += 1
                    break
                dst.sendall(data)
        except OSError:
            pass
        for s in (src, dst):
            s.close()

    def close(self) -> None:
        self.listener.close()


def test_a_connection_lost_at_exec_is_unavailable_not_a_conflict(
    store: RedisCartStore, prefix: str
) -> None:
    """redis-py turns a connection lost under WATCH into a WatchError; that is Redis failing
    (StoreUnavailableError, at once), not a cart that "kept changing" after 50 tries."""
    cart = Carts(store=store).create("EUR")
    proxy = ExecDropper()
    flaky = RedisCartStore.from_url(
        f"redis://127.0.0.1:{proxy.port}/0", prefix=prefix, timeout_s=0.5
    )
    try:
        started = time.monotonic()
        with pytest.raises(StoreUnavailableError) as info:
            Carts(store=flaky).add(cart.id, "MUG", 1)
        assert time.monotonic() - started < 5
        assert proxy.execs == 1
        assert isinstance(info.value.__cause__, redis.WatchError)
    finally:
        flaky.close()
        proxy.close()
    assert Carts(store=store).get(cart.id).lines == {}  # nothing was written


# -- checkout with the carts in Redis ------------------------------------------------------


class FailOnce:
    def __init__(self, phase: str, step: str) -> None:
        self.phase, self.step, self.fired = phase, step, False

    def __call__(self, phase: str, step: str, checkout_id: str) -> None:
        if (phase, step) == (self.phase, self.step) and not self.fired:
            self.fired = True
            raise RuntimeError(f"injected crash {phase} {step}")


def test_a_checkout_with_redis_carts_orders_once_and_closes_the_cart(
    db: Database, clock: FakeClock, store: RedisCartStore
) -> None:
    shop, gateway, payments = make_shop(db, clock=clock, cart_store=store)
    cart_id = cart_with(shop, {"TEE": 2, "MUG": 1})
    result = shop.checkout.place(cart_id, GOOD, region="DE")
    assert result.status is CheckoutStatus.COMPLETED
    assert result.order is not None
    assert shop.carts.get(cart_id).status is CartStatus.COMPLETED
    again = shop.checkout.place(cart_id, GOOD, region="DE")
    assert again.replayed
    assert again.order is not None
    assert again.order.id == result.order.id
    assert authorizations(gateway) == 1
    check_money_invariants(shop, payments)


def test_a_crash_between_the_commit_and_the_close_is_mended_by_the_replay(
    db: Database, clock: FakeClock, store: RedisCartStore
) -> None:
    hook = FailOnce("before", "close_cart")
    shop, gateway, payments = make_shop(db, clock=clock, cart_store=store, hooks=hook)
    cart_id = cart_with(shop, {"TEE": 1, "CAP": 2})
    with pytest.raises(RuntimeError, match="injected crash"):
        shop.checkout.place(cart_id, GOOD, region="DE")
    assert hook.fired
    # the order and the attempt committed; the cart, in Redis, is still frozen
    order = shop.orders.by_checkout(f"{cart_id}.1")
    assert order is not None
    assert shop.checkout.status(f"{cart_id}.1") is CheckoutStatus.COMPLETED
    assert shop.carts.get(cart_id).status is CartStatus.FROZEN
    with pytest.raises(CartFrozenError):
        shop.carts.add(cart_id, "MUG", 3)  # no line goes in that the order does not have
    replay = shop.checkout.place(cart_id, GOOD, region="DE")  # the customer submits again
    assert replay.replayed
    assert replay.order is not None
    assert replay.order.id == order.id  # no second order
    assert shop.carts.get(cart_id).status is CartStatus.COMPLETED
    assert shop.checkout.place(cart_id, GOOD, region="DE").order == replay.order
    assert authorizations(gateway) == 1
    assert live_reservations(shop) == 0
    check_money_invariants(shop, payments)


def test_an_ordered_cart_left_frozen_by_a_crash_takes_no_merge_and_recover_closes_it(
    db: Database, clock: FakeClock, store: RedisCartStore
) -> None:
    """The crash between the completion's commit and the close: the cart is frozen, so the
    shop's sign-in merge and later adds are refused (as the SQL store refuses an ordered
    cart's), and recover() closes it without waiting for the customer to submit again."""
    hook = FailOnce("before", "close_cart")
    shop, gateway, payments = make_shop(db, clock=clock, cart_store=store, hooks=hook)
    guest = cart_with(shop, {"TEE": 2})
    with pytest.raises(RuntimeError, match="injected crash"):
        shop.checkout.place(guest, GOOD, region="DE")
    mine = shop.carts.create("EUR", customer_id="cus_1")
    with pytest.raises(CartFrozenError) as info:
        shop.carts.merge(guest, mine.id)
    assert isinstance(info.value, InvalidStateError)
    with pytest.raises(CartFrozenError):
        shop.carts.add(guest, "MUG", 3)
    assert shop.carts.get(mine.id).lines == {}
    assert shop.checkout.recover() == [Recovered(f"{guest}.1", "cart_closed")]
    assert shop.carts.get(guest).status is CartStatus.COMPLETED
    assert shop.checkout.recover() == []
    assert [s for s, _, _ in shop.checkout.steps(f"{guest}.1")][-2:] == [
        "completed",
        "cart_closed",
    ]
    with pytest.raises(EmptyCartError):
        shop.checkout.place(mine.id, GOOD, region="DE")  # nothing was merged in
    assert authorizations(gateway) == 1
    check_money_invariants(shop, payments)


class DownAtThaw:
    """A Redis cart store whose thaw fails once, as if Redis went away just then."""

    def __init__(self, inner: RedisCartStore) -> None:
        self.inner, self.failed = inner, False
        self.transactional = False

    def __getattr__(self, name: str) -> Any:
        return getattr(self.inner, name)

    def thaw(self, cart_id: str, now: float, **options: Any) -> bool:
        if not self.failed:
            self.failed = True
            raise StoreUnavailableError("the Redis cart store could not write a cart")
        return self.inner.thaw(cart_id, now, **options)


def test_a_declined_checkout_opens_the_cart_again_and_recover_mends_a_lost_thaw(
    db: Database, clock: FakeClock, store: RedisCartStore
) -> None:
    flaky = DownAtThaw(store)
    shop, _, payments = make_shop(db, clock=clock, cart_store=flaky)
    cart_id = cart_with(shop, {"MUG": 1})
    with pytest.raises(PaymentDeclinedError):
        shop.checkout.place(cart_id, DECLINED, region="DE")
    assert flaky.failed
    assert shop.carts.get(cart_id).status is CartStatus.FROZEN  # the thaw was lost
    assert shop.checkout.recover() == [Recovered(f"{cart_id}.1", "cart_thawed")]
    assert shop.carts.get(cart_id).status is CartStatus.OPEN
    assert shop.carts.add(cart_id, "CAP").lines == {"CAP": 1, "MUG": 1}
    with pytest.raises(PaymentDeclinedError):
        shop.checkout.place(cart_id, DECLINED, region="DE")
    assert shop.carts.get(cart_id).status is CartStatus.OPEN  # thawed at once this time
    result = shop.checkout.place(cart_id, GOOD, region="DE")
    assert result.order is not None
    assert {ln.sku: ln.qty for ln in result.order.lines} == {"CAP": 1, "MUG": 1}
    assert shop.checkout.recover() == []
    assert live_reservations(shop) == 0
    check_money_invariants(shop, payments)


def test_a_cart_changed_after_its_pricing_is_priced_again_not_ordered_short(
    db: Database, clock: FakeClock, store: RedisCartStore
) -> None:
    """With Redis the cart freezes just after the attempt's first commit, by compare-and-set
    on the version it priced: an add in between makes a new attempt that orders it."""
    shop: Any = None
    added: list[str] = []

    def add_once(phase: str, step: str, checkout_id: str) -> None:
        if (phase, step) == ("after", "snapshot") and not added:
            added.append(checkout_id)
            shop.carts.add(checkout_id.rpartition(".")[0], "CAP", 1)  # another tab

    shop, gateway, payments = make_shop(db, clock=clock, cart_store=store, hooks=add_once)
    cart_id = cart_with(shop, {"TEE": 1})
    result = shop.checkout.place(cart_id, GOOD, region="DE")
    assert added == [f"{cart_id}.1"]
    assert result.checkout_id == f"{cart_id}.2"
    assert result.order is not None
    assert {ln.sku: ln.qty for ln in result.order.lines} == {"CAP": 1, "TEE": 1}
    assert shop.checkout.status(f"{cart_id}.1") is CheckoutStatus.COMPENSATED
    assert shop.carts.get(cart_id).status is CartStatus.COMPLETED
    assert authorizations(gateway) == 1
    assert live_reservations(shop) == 0
    check_money_invariants(shop, payments)


def test_a_placed_checkout_replays_after_its_cart_expired_and_a_new_cart_is_not_it(
    db: Database, clock: FakeClock, store: RedisCartStore, client: redis.Redis, prefix: str
) -> None:
    """The time to live frees a cart's id while its checkout lives on in the database: the
    placed checkout still replays, and a new cart made under the same (caller-chosen) id is
    a new cart, whose lines are ordered, not a replay of the old order."""
    shop, gateway, payments = make_shop(db, clock=clock, cart_store=store)
    cart = shop.carts.create("EUR", cart_id="cart-of-cus_7")
    shop.carts.add(cart.id, "TEE", 1)
    first = shop.checkout.place(cart.id, GOOD, region="DE")
    assert first.order is not None
    client.delete(f"{prefix}c:{cart.id}")  # what ttl_s does to the closed cart
    again = shop.checkout.place(cart.id, GOOD, region="DE")  # the same submission, late
    assert again.replayed
    assert again.order == first.order
    reborn = shop.carts.create("EUR", cart_id="cart-of-cus_7")
    assert reborn.stamp
    assert reborn.stamp != cart.stamp
    shop.carts.add(reborn.id, "MUG", 5)
    second = shop.checkout.place(reborn.id, GOOD, region="DE")
    assert not second.replayed
    assert second.checkout_id == "cart-of-cus_7.2"  # attempt ids stay unique per cart id
    assert second.order is not None
    assert second.order.id != first.order.id
    assert {ln.sku: ln.qty for ln in second.order.lines} == {"MUG": 5}
    assert shop.carts.get(reborn.id).status is CartStatus.COMPLETED
    assert shop.checkout.place(reborn.id, GOOD, region="DE").order == second.order
    assert authorizations(gateway) == 2
    check_money_invariants(shop, payments)


def test_recover_never_closes_a_new_cart_under_an_old_attempts_id(
    db: Database, clock: FakeClock, store: RedisCartStore, client: redis.Redis, prefix: str
) -> None:
    hook = FailOnce("before", "close_cart")
    shop, _, payments = make_shop(db, clock=clock, cart_store=store, hooks=hook)
    shop.carts.create("EUR", cart_id="reused")
    shop.carts.add("reused", "TEE", 1)
    with pytest.raises(RuntimeError, match="injected crash"):
        shop.checkout.place("reused", GOOD, region="DE")
    client.delete(f"{prefix}c:reused")  # dropped before anyone closed it
    shop.carts.create("EUR", cart_id="reused")
    shop.carts.add("reused", "MUG", 1)
    assert shop.checkout.recover() == [Recovered("reused.1", "cart_closed")]
    assert shop.carts.get("reused").status is CartStatus.OPEN  # the new cart is left alone
    assert shop.carts.get("reused").lines == {"MUG": 1}
    check_money_invariants(shop, payments)


def test_a_lost_reply_to_a_create_is_not_a_duplicate_when_the_cart_was_written_since(
    store: RedisCartStore, prefix: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """SET NX kept, reply lost, the cart written before redis-py resent it: still ours."""
    carts = Carts(store=store)
    other = Carts(store=RedisCartStore.from_url(REDIS_URL, prefix=prefix))
    real = redis.Redis.set
    calls: list[str] = []

    def set_(self: Any, name: Any, *args: Any, **kwargs: Any) -> Any:
        result = real(self, name, *args, **kwargs)
        if kwargs.get("nx") and not calls:
            calls.append(str(name))
            other.add("mine", "CAP", 1)  # between the lost reply and the resend
            return real(self, name, *args, **kwargs)  # the resend: refused, the key exists
        return result

    monkeypatch.setattr(redis.Redis, "set", set_)
    made = carts.create("EUR", cart_id="mine")
    assert calls == [f"{prefix}c:mine"]
    assert carts.get("mine").stamp == made.stamp
    assert carts.get("mine").lines == {"CAP": 1}


class DownAtClose:
    """A Redis cart store whose close fails once, as if Redis went away just then."""

    def __init__(self, inner: RedisCartStore) -> None:
        self.inner, self.failed = inner, False
        self.transactional = False

    def __getattr__(self, name: str) -> Any:
        return getattr(self.inner, name)

    def complete(self, cart_id: str, now: float, **options: Any) -> bool:
        if not self.failed:
            self.failed = True
            raise StoreUnavailableError("the Redis cart store could not write a cart")
        return self.inner.complete(cart_id, now, **options)


def test_redis_down_at_the_close_keeps_the_order_and_counts_the_deferral(
    db: Database, clock: FakeClock, store: RedisCartStore
) -> None:
    metrics = InMemoryMetrics()
    flaky = DownAtClose(store)
    shop, _, payments = make_shop(db, clock=clock, cart_store=flaky, metrics=metrics)
    cart_id = cart_with(shop, {"MUG": 1})
    result = shop.checkout.place(cart_id, GOOD, region="DE")
    assert result.status is CheckoutStatus.COMPLETED  # the order stands
    assert flaky.failed
    assert metrics.total("commercekit_commerce_cart_closes_deferred_total") == 1
    assert shop.carts.get(cart_id).status is CartStatus.FROZEN
    assert shop.checkout.place(cart_id, GOOD, region="DE").replayed
    assert shop.carts.get(cart_id).status is CartStatus.COMPLETED
    check_money_invariants(shop, payments)


FAULTS = [(phase, step) for step in STEPS for phase in ("before", "after")]


@pytest.mark.parametrize(("phase", "step"), [*FAULTS, ("before", "close_cart")])
def test_a_fault_at_every_step_with_redis_carts_ends_with_one_order_and_a_closed_cart(
    db: Database, clock: FakeClock, store: RedisCartStore, phase: str, step: str
) -> None:
    hook = FailOnce(phase, step)
    shop, gateway, payments = make_shop(db, clock=clock, cart_store=store, hooks=hook)
    cart_id = cart_with(shop, {"TEE": 2, "CAP": 1})
    with pytest.raises(RuntimeError, match="injected"):
        shop.checkout.place(cart_id, GOOD, region="DE")
    assert hook.fired
    shop.checkout.recover()
    assert shop.checkout.recover() == []
    result = shop.checkout.place(cart_id, GOOD, region="DE")  # the customer tries again
    assert result.order is not None
    assert shop.carts.get(cart_id).status is CartStatus.COMPLETED
    assert shop.orders.by_checkout(f"{cart_id}.1") in (None, result.order)
    assert live_reservations(shop) == 0
    assert authorizations(gateway) <= 2
    check_money_invariants(shop, payments)
