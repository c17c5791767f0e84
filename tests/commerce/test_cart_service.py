"""Persisted carts: version-checked writes that keep every add, guest merge, expiry, bad input."""

from __future__ import annotations

import threading

import pytest

from commercekit.commerce.cart import Carts, CartStatus
from commercekit.errors import (
    DatabaseUnavailableError,
    InvalidInputError,
    InvalidStateError,
    NotFoundError,
    UnknownCurrencyError,
    UnknownSkuError,
)
from commercekit.repository import Database
from tests.commerce.conftest import FakeClock

KNOWN = {"TEE-M", "MUG", "CAP"}


@pytest.fixture
def carts(db: Database, clock: FakeClock) -> Carts:
    return Carts(db, sku_exists=KNOWN.__contains__, clock=clock)


def test_add_set_remove(carts: Carts) -> None:
    cart = carts.create("EUR", customer_id="c1")
    carts.add(cart.id, "TEE-M", 2)
    carts.add(cart.id, "MUG")
    carts.add(cart.id, "TEE-M", 1)
    assert carts.get(cart.id).lines == {"MUG": 1, "TEE-M": 3}
    carts.set_quantity(cart.id, "TEE-M", 1)
    after = carts.remove(cart.id, "MUG")
    assert after.lines == {"TEE-M": 1}
    assert carts.get(cart.id).version == after.version == 6
    stored = carts.get(cart.id).state  # removals are compacted: no dead dots, no tombstones
    assert not stored.removed
    assert sorted((d.sku, d.qty) for d in stored.dots.values()) == [("TEE-M", 1)]


def test_concurrent_writers_never_lose_an_add(carts: Carts) -> None:
    cart = carts.create("EUR")
    barrier = threading.Barrier(8)

    def writer(i: int) -> None:
        barrier.wait()
        for _ in range(5):
            carts.add(cart.id, ["TEE-M", "MUG"][i % 2])

    threads = [threading.Thread(target=writer, args=(i,)) for i in range(8)]
    for th in threads:
        th.start()
    for th in threads:
        th.join()
    assert carts.get(cart.id).lines == {"MUG": 20, "TEE-M": 20}


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
        (lambda: carts.create("ZZZ"), UnknownCurrencyError),
    ]:
        with pytest.raises(error):
            call()
    assert carts.get(cart.id).lines == {}
    assert carts.get(cart.id).version == 1
    other = carts.create("USD")
    with pytest.raises(InvalidInputError):
        carts.merge(other.id, cart.id)


def test_a_catalog_error_refuses_a_change_before_writing(db: Database, clock: FakeClock) -> None:
    """The product is looked up before the write: a failing lookup changes nothing."""
    events: list[tuple[str, dict[str, str | int]]] = []
    down = False

    def product_of(sku: str) -> str | None:
        if down:
            raise DatabaseUnavailableError("the catalog is unavailable")
        return "P-" + sku if sku in KNOWN else None

    carts = Carts(
        db, product_of=product_of, on_event=lambda n, p: events.append((n, p)), clock=clock
    )
    cart = carts.create("EUR")
    carts.add(cart.id, "MUG", 2)
    down = True
    for call in (
        lambda: carts.remove(cart.id, "MUG"),
        lambda: carts.add(cart.id, "MUG"),
        lambda: carts.set_quantity(cart.id, "MUG", 5),
    ):
        with pytest.raises(DatabaseUnavailableError):
            call()
        assert carts.get(cart.id).lines == {"MUG": 2}  # not applied, as reported
        assert carts.get(cart.id).version == 2
    down = False
    carts.remove(cart.id, "MUG")
    assert carts.get(cart.id).lines == {}
    assert events[-1] == (
        "Product Removed",
        {"cart_id": cart.id, "sku": "MUG", "product_id": "P-MUG"},
    )
