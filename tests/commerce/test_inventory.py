"""Inventory: the guarded reserve, idempotency per reservation id, expiry, allocation, drift."""

from __future__ import annotations

import threading
from pathlib import Path

import pytest
from sqlalchemy import event, text, update

from commercekit.commerce.inventory import Inventory, ReservationStatus, verify_inventory
from commercekit.commerce.inventory import _tables as t
from commercekit.errors import (
    ConflictError,
    InvalidInputError,
    InvalidStateError,
    OutOfStockError,
    UnknownSkuError,
    UnsupportedTypeError,
)
from commercekit.repository import Database, Node, ReplicatedTopology, sqlite_engine
from tests.commerce._shop import check_batch_availability
from tests.commerce.conftest import FakeClock


@pytest.fixture
def inventory(db: Database, clock: FakeClock) -> Inventory:
    inv = Inventory(db, clock=clock, reservation_ttl_s=60)
    inv.set_stock("TEE-M", 10)
    inv.set_stock("MUG", 3)
    inv.set_stock("MUG", 2, location="b-warehouse")
    return inv


def test_reserve_commit_ship_cancel_move_the_counters(inventory: Inventory) -> None:
    r = inventory.reserve("r1", {"TEE-M": 2, "MUG": 1})
    assert r.status is ReservationStatus.LIVE
    assert r.quantities() == {"MUG": 1, "TEE-M": 2}
    assert inventory.level("TEE-M").reserved == 2
    assert inventory.commit("r1") is True
    assert inventory.commit("r1") is False  # idempotent
    level = inventory.level("TEE-M")
    assert (level.reserved, level.allocated) == (0, 2)
    inventory.ship("r1", {"TEE-M": 1})
    level = inventory.level("TEE-M")
    assert (level.on_hand, level.allocated) == (9, 1)
    assert inventory.cancel_allocation("r1") is True
    assert inventory.cancel_allocation("r1") is False  # stock released exactly once
    assert inventory.level("TEE-M").allocated == 0
    assert inventory.available("TEE-M") == 9


def test_demand_is_summed_per_sku_so_a_bundle_cannot_oversell(inventory: Inventory) -> None:
    with pytest.raises(OutOfStockError) as info:
        inventory.reserve("bundle", [("MUG", 3), ("MUG", 3)])
    assert info.value.sku == "MUG"
    assert inventory.reservation("bundle") is None  # nothing half-written
    assert inventory.available("MUG") == 5


def test_a_line_goes_to_the_first_location_that_has_it_all(inventory: Inventory) -> None:
    inventory.reserve("a", {"MUG": 3})  # "b-warehouse" sorts first, has 2: the default has 3
    r = inventory.reserve("b", {"MUG": 2})
    assert [(ln.location, ln.qty) for ln in r.lines] == [("b-warehouse", 2)]
    with pytest.raises(OutOfStockError):
        inventory.reserve("c", {"MUG": 1})


def test_reserve_is_idempotent_per_reservation_id(inventory: Inventory) -> None:
    first = inventory.reserve("r1", {"TEE-M": 4})
    again = inventory.reserve("r1", {"TEE-M": 4})
    assert again.replayed
    assert again.lines == first.lines
    assert inventory.level("TEE-M").reserved == 4
    with pytest.raises(ConflictError):
        inventory.reserve("r1", {"TEE-M": 5})
    assert inventory.release("r1") is True
    assert inventory.release("r1") is False
    assert inventory.level("TEE-M").reserved == 0
    with pytest.raises(InvalidStateError):
        inventory.commit("r1")  # released: its stock is gone


def test_expired_reservations_are_swept_once_and_reclaimed_lazily(
    inventory: Inventory, clock: FakeClock
) -> None:
    inventory.reserve("old", {"TEE-M": 10})
    with pytest.raises(OutOfStockError):
        inventory.reserve("new", {"TEE-M": 1})
    clock.advance(61)
    r = inventory.reserve("new", {"TEE-M": 1})  # finds TEE-M short, reclaims, retries
    assert r.status is ReservationStatus.LIVE
    old = inventory.reservation("old")
    assert old is not None
    assert old.status is ReservationStatus.EXPIRED
    assert inventory.sweep() == 0
    clock.advance(61)
    assert inventory.sweep() == 1
    assert inventory.sweep() == 0
    assert inventory.available("TEE-M") == 10


def test_bad_input_is_typed_and_changes_nothing(inventory: Inventory) -> None:
    for demand, error in [
        ({"NOPE": 1}, UnknownSkuError),
        ({"TEE-M": 0}, InvalidInputError),
        ({"TEE-M": -2}, InvalidInputError),
        ({"TEE-M": 10**9}, InvalidInputError),
        ({"TEE-M": 1.5}, UnsupportedTypeError),
        ({}, InvalidInputError),
        ({"": 1}, InvalidInputError),
    ]:
        with pytest.raises(error):
            inventory.reserve("bad", demand)  # type: ignore[arg-type]
        assert inventory.reservation("bad") is None, demand
    assert inventory.level("TEE-M").reserved == 0


def test_adjust_is_idempotent_per_key_and_never_takes_held_stock(inventory: Inventory) -> None:
    assert inventory.adjust("TEE-M", 5, key="po-1") is True
    assert inventory.adjust("TEE-M", 5, key="po-1") is False
    assert inventory.level("TEE-M").on_hand == 15
    inventory.reserve("r", {"TEE-M": 15})
    with pytest.raises(InvalidStateError):
        inventory.adjust("TEE-M", -1, key="count-1")
    with pytest.raises(InvalidStateError):
        inventory.set_stock("TEE-M", 3)
    inventory.release("r")


def test_the_check_constraint_refuses_an_oversell_that_skips_the_guard(
    db: Database, inventory: Inventory
) -> None:
    from commercekit.commerce.inventory import _tables as t

    with pytest.raises(ConflictError, match="not_oversold"), db.unit_of_work() as uow:
        uow.session.execute(update(t.stock).where(t.stock.c.sku == "MUG").values(reserved=99))


BREACHES = {  # what lost updates (or an engine without CHECK) could leave -> expected drift
    "UPDATE ck_stock SET reserved = 1 WHERE sku = 'TEE-M'": [("reserved", 1, 2)],
    "UPDATE ck_stock SET allocated = 4 WHERE sku = 'TEE-M'": [("allocated", 4, 3)],
    "UPDATE ck_stock SET on_hand = 4 WHERE sku = 'TEE-M'": [("oversold", 4, 5)],
    "UPDATE ck_stock SET on_hand = -1 WHERE sku = 'TEE-M'": [("oversold", -1, 5)],
    "DELETE FROM ck_stock WHERE sku = 'TEE-M'": [("no stock row", 0, 5)],
}


def test_verify_reports_each_kind_of_drift(db: Database, inventory: Inventory) -> None:
    inventory.reserve("held", {"TEE-M": 3})
    inventory.commit("held")  # allocated 3
    inventory.reserve("r", {"TEE-M": 2})  # reserved 2
    assert inventory.verify().ok
    with db.unit_of_work() as uow:
        backup = [dict(r) for r in uow.session.execute(text("SELECT * FROM ck_stock")).mappings()]
    for breach, drift in BREACHES.items():
        with db.unit_of_work() as uow:  # a hand-made breach, past the CHECK constraint
            uow.session.execute(text("PRAGMA ignore_check_constraints = ON"))
            uow.session.execute(text(breach))
            uow.session.execute(text("PRAGMA ignore_check_constraints = OFF"))
        report = verify_inventory(db)
        assert [(d.sku, d.problem, d.stored, d.expected) for d in report.drift] == [
            ("TEE-M", *d) for d in drift
        ], breach
        with db.unit_of_work() as uow:  # repair
            uow.session.execute(text("DELETE FROM ck_stock"))
            uow.session.execute(t.stock.insert(), backup)
        assert verify_inventory(db).ok
    inventory.release("r")
    inventory.cancel_allocation("held")


def test_fifty_threads_for_ten_units_on_sqlite(db: Database) -> None:
    inv = Inventory(db)
    inv.set_stock("DROP", 10)
    ok: list[str] = []
    sold_out: list[str] = []
    barrier = threading.Barrier(50)

    def buy(i: int) -> None:
        barrier.wait()
        try:
            inv.reserve(f"buyer-{i}", {"DROP": 1})
            ok.append(f"buyer-{i}")
        except OutOfStockError:
            sold_out.append(f"buyer-{i}")

    threads = [threading.Thread(target=buy, args=(i,)) for i in range(50)]
    for th in threads:
        th.start()
    for th in threads:
        th.join()
    assert (len(ok), len(sold_out)) == (10, 40)
    assert inv.level("DROP").reserved == 10


def test_available_many_reads_a_page_of_skus_in_one_query_on_a_replica(tmp_path: Path) -> None:
    from commercekit.commerce import metadata
    from commercekit.commerce.inventory import _tables as t

    primary, replica = (sqlite_engine(tmp_path / "stock.db") for _ in range(2))
    db = Database(ReplicatedTopology(Node("primary", primary), [Node("replica", replica)]))
    db.create_all(metadata)
    seen: dict[str, list[str]] = {"primary": [], "replica": []}
    for name, engine in (("primary", primary), ("replica", replica)):
        event.listen(
            engine,
            "before_cursor_execute",
            lambda *a, name=name: seen[name].append(a[2]) if "ck_stock" in a[2] else None,
        )
    try:
        inv = Inventory(db)
        stocked = [f"SKU-{i:04d}" for i in range(0, 1200, 2)]  # every other SKU has a row
        with db.unit_of_work() as uow:
            uow.session.execute(
                t.stock.insert(),
                [
                    {"sku": s, "location": "default", "on_hand": 5, "allocated": 0, "reserved": 0}
                    for s in stocked
                ],
            )
        inv.set_stock("SKU-0000", 4, location="b-warehouse")
        inv.reserve("r", {"SKU-0000": 3, "SKU-0002": 5})
        seen["primary"].clear()

        page = ["SKU-0002", "NO-SUCH", "SKU-0000", "SKU-0001", "SKU-0002"]
        assert inv.available_many(page) == {
            "SKU-0002": 0,
            "NO-SUCH": 0,
            "SKU-0000": 6,
            "SKU-0001": 0,
        }
        assert list(inv.available_many(page)) == ["SKU-0002", "NO-SUCH", "SKU-0000", "SKU-0001"]
        assert inv.available_many(["SKU-0000"], location="b-warehouse") == {"SKU-0000": 1}
        assert inv.available_many([]) == {}
        assert (seen["primary"], len(seen["replica"])) == (
            [],
            3,
        )  # one query a call, on the replica

        seen["replica"].clear()
        every = [f"SKU-{i:04d}" for i in range(1200)]  # longer than one portable IN list
        got = inv.available_many(every)
        assert len(seen["replica"]) == 3  # 500 + 500 + 200
        assert got == {
            s: (6 if s == "SKU-0000" else 0 if s == "SKU-0002" else 5 if s in stocked[2:] else 0)
            for s in every
        }
        assert sum(got.values()) == inv.available("SKU-0000") + 5 * (len(stocked) - 2)

        for bad, error in (
            ("SKU-0000", UnsupportedTypeError),
            ([""], InvalidInputError),
            ([7], UnsupportedTypeError),
        ):
            with pytest.raises(error):
                inv.available_many(bad)  # type: ignore[arg-type]
        with pytest.raises(InvalidInputError):
            inv.available_many(["SKU-0000"], location="")
        inv.release("r")
        assert verify_inventory(db).ok
    finally:
        db.close()
        primary.dispose()
        replica.dispose()


def test_available_many_agrees_with_the_one_sku_read_across_chunks(
    db: Database, inventory: Inventory
) -> None:
    check_batch_availability(db, inventory, "B")


def _sqlite_with_999_parameters(path: Path) -> tuple[Database, object]:
    """A SQLite database that binds at most 999 parameters a statement (older builds' bound)."""
    import sqlite3

    from commercekit.commerce import metadata

    engine = sqlite_engine(path)

    @event.listens_for(engine, "connect")
    def _limit(dbapi_conn: sqlite3.Connection, _record: object) -> None:
        dbapi_conn.setlimit(sqlite3.SQLITE_LIMIT_VARIABLE_NUMBER, 999)

    database = Database(ReplicatedTopology(Node("primary", engine)))
    database.create_all(metadata)
    return database, engine


def test_sweep_of_a_long_sku_list_reads_it_in_portable_chunks(
    tmp_path: Path, clock: FakeClock
) -> None:
    db, engine = _sqlite_with_999_parameters(tmp_path / "small.db")
    try:
        inv = Inventory(db, clock=clock, reservation_ttl_s=60)
        for i in range(4):
            inv.set_stock(f"S-{i}", 5)
            inv.reserve(f"r{i}", {f"S-{i}": 1})
            clock.advance(1)
        clock.advance(61)
        skus = [f"X-{i}" for i in range(1500)]  # SKUs a caller asks about, most never stocked
        skus[10], skus[700], skus[1400] = "S-0", "S-2", "S-3"
        assert inv.sweep(skus=skus, limit=2) == 2  # the two oldest of those asked
        assert [inv.require_reservation(f"r{i}").status for i in range(4)] == [
            ReservationStatus.EXPIRED,
            ReservationStatus.LIVE,
            ReservationStatus.EXPIRED,
            ReservationStatus.LIVE,
        ]
        assert inv.sweep(skus=skus) == 1
        assert inv.sweep(skus=skus) == 0
        assert inv.require_reservation("r1").status is ReservationStatus.LIVE
        with pytest.raises(UnsupportedTypeError):
            inv.sweep(skus="S-1")  # one str, not a list of SKUs
        assert verify_inventory(db).ok
    finally:
        db.close()
        engine.dispose()  # type: ignore[attr-defined]


def test_a_reservation_of_many_skus_reads_their_locations_in_portable_chunks(
    tmp_path: Path, clock: FakeClock
) -> None:
    db, engine = _sqlite_with_999_parameters(tmp_path / "small.db")
    try:
        skus = [f"B2B-{i:04d}" for i in range(1200)]  # a wholesale order: more SKUs than 999
        with db.unit_of_work() as uow:
            uow.session.execute(
                t.stock.insert(),
                [{"sku": s, "location": "default", "on_hand": 3} for s in skus],
            )
        inv = Inventory(db, clock=clock, reservation_ttl_s=60)
        r = inv.reserve("wholesale", dict.fromkeys(skus, 2))
        assert len(r.lines) == 1200
        assert inv.available_many(skus) == dict.fromkeys(skus, 1)
        assert verify_inventory(db).ok
    finally:
        db.close()
        engine.dispose()  # type: ignore[attr-defined]
