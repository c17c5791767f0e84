"""The contract every CartStore keeps, run through ``Carts``: SQL on SQLite and PostgreSQL, Redis.

The same tests on each store: lines and versions, two writers racing on one
cart (no lost update), guest merges, completion, expiry, bad input, and a
Hypothesis model check. PostgreSQL gets a scratch database for the module;
Redis (127.0.0.1:6379) a key prefix of its own per test, deleted after.
"""

from __future__ import annotations

import threading
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest
import sqlalchemy as sa
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from commercekit.commerce import metadata
from commercekit.commerce.cart import (
    CartRecord,
    Carts,
    CartStatus,
    CartStore,
    RedisCartStore,
    SqlCartStore,
)
from commercekit.errors import (
    CartFrozenError,
    ConflictError,
    DatabaseUnavailableError,
    DuplicateError,
    InvalidInputError,
    InvalidStateError,
    NotFoundError,
    UnavailableError,
    UnknownCurrencyError,
    UnknownSkuError,
)
from commercekit.metrics import InMemoryMetrics
from commercekit.repository import Database, Node, ReplicatedTopology, sqlite_engine
from tests.commerce.conftest import FakeClock
from tests.conftest import missing_service

KNOWN = {"TEE-M", "MUG", "CAP"}
REDIS_URL = "redis://127.0.0.1:6379/0"


def redis_store(prefix: str, **options: Any) -> RedisCartStore:
    """A store on the machine's Redis under *prefix*, or skip (fail under REQUIRE_SERVICES)."""
    store = RedisCartStore.from_url(REDIS_URL, prefix=prefix, **options)
    try:
        store.get("probe")
    except NotFoundError:
        return store
    except Exception as exc:
        missing_service(f"Redis is not reachable at {REDIS_URL} ({exc})")
    return store


def drop_prefix(prefix: str) -> None:
    import redis

    client = redis.Redis.from_url(REDIS_URL)
    try:
        keys = list(client.scan_iter(match=prefix + "*", count=500))
        if keys:
            client.delete(*keys)
    finally:
        client.close()


@pytest.fixture(scope="module")
def postgres_db() -> Iterator[Database]:
    from tests.integration._commerce import scratch_database

    with scratch_database("postgresql://postgres@127.0.0.1:5432", "PostgreSQL") as url:
        from commercekit.repository import engine_from_url

        engine = engine_from_url(url, pool_size=10)
        db = Database(ReplicatedTopology(Node("primary", engine)))
        db.create_all(metadata)
        yield db
        db.close()
        engine.dispose()


@pytest.fixture(params=["sqlite", "postgres", "redis"])
def store(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[CartStore]:
    kind = request.param
    if kind == "sqlite":
        engine = sqlite_engine(tmp_path / "carts.db")
        db = Database(ReplicatedTopology(Node("primary", engine)))
        db.create_all(metadata)
        yield SqlCartStore(db)
        db.close()
        engine.dispose()
    elif kind == "postgres":
        db = request.getfixturevalue("postgres_db")
        with db.unit_of_work() as uow:
            uow.session.execute(sa.text("DELETE FROM ck_carts"))
        yield SqlCartStore(db)
    else:
        prefix = f"ck-test:{uuid.uuid4().hex[:12]}:"
        rstore = redis_store(prefix)
        try:
            yield rstore
        finally:
            drop_prefix(prefix)
            rstore.close()


def racing_possible(request: pytest.FixtureRequest) -> None:
    """Skip on SQLite: its unit of work takes the write lock when it begins, so a second
    writer waits for the first instead of racing it (the threaded test covers SQLite)."""
    if request.node.callspec.params["store"] == "sqlite":
        pytest.skip("SQLite serializes writers at BEGIN: two writers never interleave")


@pytest.fixture
def carts(store: CartStore, clock: FakeClock) -> Carts:
    return Carts(store=store, sku_exists=KNOWN.__contains__, clock=clock)


def test_add_set_remove_and_versions(carts: Carts) -> None:
    cart = carts.create("EUR", customer_id="c1")
    carts.add(cart.id, "TEE-M", 2)
    carts.add(cart.id, "MUG")
    carts.add(cart.id, "TEE-M", 1)
    assert carts.get(cart.id).lines == {"MUG": 1, "TEE-M": 3}
    carts.set_quantity(cart.id, "TEE-M", 1)
    after = carts.remove(cart.id, "MUG")
    assert after.lines == {"TEE-M": 1}
    stored = carts.get(cart.id)
    assert stored.version == after.version == 6
    assert (stored.customer_id, stored.currency.code, stored.status) == (
        "c1",
        "EUR",
        CartStatus.OPEN,
    )
    assert not stored.state.removed  # compacted: no tombstones kept
    assert carts.set_voucher(cart.id, "WELCOME").voucher == "WELCOME"
    assert carts.get(cart.id).voucher == "WELCOME"
    assert carts.set_voucher(cart.id, None).voucher is None


def test_a_cart_keeps_the_stamp_it_was_made_with(carts: Carts, store: CartStore) -> None:
    """The stamp tells a cart from an earlier one under the same id (a store that frees ids,
    as Redis' expiry does, draws one per cart; the SQL store never frees an id: '')."""
    cart = carts.create("EUR")
    other = carts.create("EUR")
    assert (cart.stamp != other.stamp) is (not store.transactional)
    carts.add(cart.id, "MUG")
    carts.add(other.id, "CAP")
    carts.merge(other.id, cart.id)
    carts.freeze(cart.id, version=carts.get(cart.id).version)
    carts.thaw(cart.id)
    carts.set_voucher(cart.id, "WELCOME")
    carts.complete(cart.id)
    assert carts.get(cart.id).stamp == cart.stamp
    assert carts.get(other.id).stamp == other.stamp


def test_a_cart_id_is_taken_once(carts: Carts) -> None:
    carts.create("EUR", cart_id="mine")
    with pytest.raises(DuplicateError):
        carts.create("EUR", cart_id="mine")


def test_two_writers_racing_on_one_cart_lose_no_update(
    carts: Carts, store: CartStore, request: pytest.FixtureRequest
) -> None:
    """A writer reads, another writes in between, the first's write is refused and reapplied."""
    racing_possible(request)
    cart = carts.create("EUR")
    calls = 0

    def change(read: tuple[CartRecord, ...]) -> list[CartRecord]:
        nonlocal calls
        calls += 1
        if calls == 1:
            racer = Carts(store=store)  # the other app server writes first
            racer.add(cart.id, "MUG", 2)
        (seen,) = read
        return [
            CartRecord(
                id=seen.id,
                customer_id=seen.customer_id,
                currency=seen.currency,
                state=seen.state.add("CAP", 1),
                voucher=seen.voucher,
                version=seen.version + 1,
                status=seen.status,
                created_at=seen.created_at,
                updated_at=seen.updated_at,
            )
        ]

    store.update((cart.id,), change, max_retries=5)
    assert calls == 2
    final = carts.get(cart.id)
    assert final.lines == {"CAP": 1, "MUG": 2}
    assert final.version == 3


def test_concurrent_writers_never_lose_an_add(carts: Carts) -> None:
    cart = carts.create("EUR")
    barrier = threading.Barrier(4)

    def writer(i: int) -> None:
        barrier.wait()
        for _ in range(5):
            carts.add(cart.id, ["TEE-M", "MUG"][i % 2])

    threads = [threading.Thread(target=writer, args=(i,)) for i in range(4)]
    for th in threads:
        th.start()
    for th in threads:
        th.join()
    assert carts.get(cart.id).lines == {"MUG": 10, "TEE-M": 10}
    assert carts.get(cart.id).version == 21


def test_a_writer_that_keeps_losing_the_race_gets_a_conflict(
    store: CartStore,
    clock: FakeClock,
    request: pytest.FixtureRequest,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    racing_possible(request)
    metrics = InMemoryMetrics()
    losing = Carts(store=store, clock=clock, metrics=metrics, max_retries=3)
    cart = losing.create("EUR")
    original = store.update
    # the racer writes through the store's own update, not the patched one below
    racer = Carts(store=SimpleNamespace(update=original))  # type: ignore[arg-type]
    calls = 0

    def always_raced(ids: Any, fn: Any, *, max_retries: int) -> tuple[CartRecord, ...]:
        def raced(read: tuple[CartRecord, ...]) -> Any:
            nonlocal calls
            calls += 1
            racer.add(cart.id, "CAP")  # another writer wins every time
            return fn(read)

        return original(ids, raced, max_retries=max_retries)

    store.update = always_raced  # type: ignore[method-assign]
    waits: list[float] = []
    monkeypatch.setattr(time, "sleep", waits.append)
    try:
        with pytest.raises(ConflictError):
            losing.add(cart.id, "TEE-M")
    finally:
        del store.update
    assert calls == 3
    assert len(waits) == 2  # a short jittered wait between tries, none after the last
    assert all(0 <= w <= 0.05 for w in waits)
    assert losing.get(cart.id).lines == {"CAP": 3}  # the loser wrote nothing
    assert metrics.total("commercekit_commerce_cart_write_retries_total") == 2


def test_the_store_down_is_unavailable_at_once_never_a_conflict(
    carts: Carts, store: CartStore
) -> None:
    """An unavailable backend inside a write ends it, typed, without 50 tries of a "conflict"."""
    cart = carts.create("EUR")
    calls = 0

    def down(read: tuple[CartRecord, ...]) -> list[CartRecord]:
        nonlocal calls
        calls += 1
        raise DatabaseUnavailableError("cannot use database node 'primary'")

    with pytest.raises(UnavailableError):
        store.update((cart.id,), down, max_retries=50)
    assert calls == 1
    assert carts.get(cart.id).version == 1


def test_a_guest_cart_merges_into_the_customer_cart_once(carts: Carts) -> None:
    guest = carts.create("EUR")
    mine = carts.create("EUR", customer_id="c1")
    carts.add(guest.id, "CAP", 2)
    carts.add(mine.id, "MUG", 1)
    carts.add(mine.id, "CAP", 1)
    merged = carts.merge(guest.id, mine.id)
    assert merged.lines == {"CAP": 3, "MUG": 1}
    assert carts.merge(guest.id, mine.id).lines == merged.lines  # again: same answer
    assert carts.get(guest.id).status is CartStatus.MERGED
    with pytest.raises(InvalidStateError):
        carts.add(guest.id, "MUG")
    with pytest.raises(InvalidStateError):
        carts.complete(guest.id)
    other = carts.create("USD")
    with pytest.raises(InvalidInputError):
        carts.merge(other.id, mine.id)
    with pytest.raises(InvalidInputError):
        carts.merge(mine.id, mine.id)
    assert carts.get(mine.id).lines == merged.lines


def test_completing_is_idempotent_and_closes_the_cart(carts: Carts) -> None:
    cart = carts.create("EUR")
    carts.add(cart.id, "MUG")
    assert carts.complete(cart.id) is True
    assert carts.complete(cart.id) is False
    done = carts.get(cart.id)
    assert (done.status, done.lines) == (CartStatus.COMPLETED, {"MUG": 1})
    with pytest.raises(InvalidStateError):
        carts.add(cart.id, "CAP")
    with pytest.raises(NotFoundError):
        carts.complete("missing")


def test_a_frozen_cart_takes_no_change_until_it_is_completed_or_thawed(
    carts: Carts, clock: FakeClock
) -> None:
    """A checkout freezes the cart before the payment (by compare-and-set on the version it
    priced); nothing changes it then, and it ends completed (ordered) or open again."""
    cart = carts.create("EUR")
    other = carts.create("EUR", customer_id="c1")
    seen = carts.add(cart.id, "MUG", 2).version
    assert carts.freeze(cart.id, version=seen - 1) is False  # changed since: price it again
    assert carts.get(cart.id).status is CartStatus.OPEN
    assert carts.freeze(cart.id, version=seen) is True
    frozen = carts.get(cart.id)
    assert (frozen.status, frozen.version, frozen.lines) == (
        CartStatus.FROZEN,
        seen + 1,
        {"MUG": 2},
    )
    for call in [
        lambda: carts.add(cart.id, "CAP"),
        lambda: carts.set_quantity(cart.id, "MUG", 5),
        lambda: carts.remove(cart.id, "MUG"),
        lambda: carts.set_voucher(cart.id, "WELCOME"),
        lambda: carts.merge(cart.id, other.id),  # a sign-in merge of the guest's cart
        lambda: carts.merge(other.id, cart.id),
    ]:
        with pytest.raises(CartFrozenError) as info:
            call()
        assert isinstance(info.value, InvalidStateError)
    assert carts.get(cart.id) == frozen
    assert carts.get(other.id).status is CartStatus.OPEN
    clock.advance(86_400)
    assert carts.expire_abandoned(idle_s=60) == 1  # the idle open one; a frozen one stays
    assert carts.get(cart.id).status is CartStatus.FROZEN
    # a failed checkout opens it again: only at the version it froze, when one is given
    assert carts.thaw(cart.id, version=seen) is False
    assert carts.thaw(cart.id, version=seen + 1) is True
    assert carts.thaw(cart.id) is False  # open already
    assert carts.add(cart.id, "CAP").lines == {"CAP": 1, "MUG": 2}
    # frozen again, and again at its version (a checkout that resumes), then ordered
    again = carts.get(cart.id).version
    assert carts.freeze(cart.id, version=again) is True
    assert carts.freeze(cart.id, version=again + 1) is True
    assert carts.complete(cart.id) is True
    assert carts.get(cart.id).status is CartStatus.COMPLETED
    assert carts.thaw(cart.id) is False
    with pytest.raises(InvalidStateError):
        carts.freeze(cart.id, version=again + 3)
    with pytest.raises(NotFoundError):
        carts.thaw("missing")


def test_abandoned_carts_expire(carts: Carts, clock: FakeClock) -> None:
    old = carts.create("EUR")
    kept = carts.create("EUR")  # as old, but written since: idle is counted from the last write
    ordered = carts.create("EUR")
    carts.add(ordered.id, "MUG")
    carts.complete(ordered.id)
    clock.advance(3000)
    carts.add(kept.id, "CAP")
    clock.advance(600)
    fresh = carts.create("EUR")
    assert carts.expire_abandoned(idle_s=1800) == 1
    assert carts.expire_abandoned(idle_s=1800) == 0  # once
    assert carts.get(old.id).status is CartStatus.EXPIRED
    assert [carts.get(c.id).status for c in (kept, fresh, ordered)] == [
        CartStatus.OPEN,
        CartStatus.OPEN,
        CartStatus.COMPLETED,
    ]
    version = carts.get(old.id).version
    with pytest.raises(InvalidStateError):
        carts.add(old.id, "MUG")  # an expired cart takes no more writes
    assert carts.get(old.id).version == version
    clock.advance(1801)
    assert carts.expire_abandoned(idle_s=1800, limit=1) == 1  # at most *limit* a call
    assert carts.expire_abandoned(idle_s=1800) == 1
    with pytest.raises(InvalidInputError):
        carts.expire_abandoned(idle_s=0)


def test_bad_input_is_typed_and_changes_nothing(carts: Carts) -> None:
    cart = carts.create("EUR")
    for call, error in [
        (lambda: carts.add(cart.id, "NOPE"), UnknownSkuError),
        (lambda: carts.add(cart.id, "MUG", 0), InvalidInputError),
        (lambda: carts.add(cart.id, "MUG", -1), InvalidInputError),
        (lambda: carts.add(cart.id, "MUG", 10**7), InvalidInputError),
        (lambda: carts.add("missing", "MUG"), NotFoundError),
        (lambda: carts.add("", "MUG"), InvalidInputError),
        (lambda: carts.get("x" * 65), InvalidInputError),
        (lambda: carts.create("ZZZ"), UnknownCurrencyError),
        (lambda: carts.set_voucher(cart.id, "bad\ncode"), InvalidInputError),
    ]:
        with pytest.raises(error):
            call()
    assert carts.get(cart.id).lines == {}
    assert carts.get(cart.id).version == 1


OPS = st.lists(
    st.tuples(
        st.sampled_from(["add", "set", "remove", "merge"]),
        st.integers(0, 1),
        st.sampled_from(sorted(KNOWN)),
        st.integers(0, 4),
    ),
    max_size=12,
)


@settings(
    max_examples=20,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture],
)
@given(ops=OPS)
def test_the_store_keeps_what_a_plain_model_keeps(
    carts: Carts, ops: list[tuple[str, int, str, int]]
) -> None:
    """Any run of writes leaves the lines a dict model predicts: no add lost, no removal undone.

    Two carts; "merge" folds cart *i* into the other (then *i* is closed and a
    new cart takes its place, as a signed-in customer's next guest cart would).
    """
    ids = [carts.create("EUR").id, carts.create("EUR").id]
    model: list[dict[str, int]] = [{}, {}]
    for kind, i, sku, qty in ops:
        if kind == "add" and qty:
            carts.add(ids[i], sku, qty)
            model[i][sku] = model[i].get(sku, 0) + qty
        elif kind == "set":
            carts.set_quantity(ids[i], sku, qty)
            model[i].pop(sku, None)
            if qty:
                model[i][sku] = qty
        elif kind == "remove":
            carts.remove(ids[i], sku)
            model[i].pop(sku, None)
        elif kind == "merge":
            j = 1 - i
            carts.merge(ids[i], ids[j])
            for s, q in model[i].items():
                model[j][s] = model[j].get(s, 0) + q
            assert carts.get(ids[i]).status is CartStatus.MERGED
            ids[i], model[i] = carts.create("EUR").id, {}
        for n in (0, 1):
            assert carts.get(ids[n]).lines == dict(sorted(model[n].items()))
