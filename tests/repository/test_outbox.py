"""The transactional outbox on SQLite, PostgreSQL and MariaDB (the machine's servers)."""

from __future__ import annotations

import threading
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import Column, Integer, MetaData, String, Table, create_engine, text
from sqlalchemy.engine import Engine

from commercekit.errors import InvalidInputError, ReadOnlyError, UnsupportedTypeError
from commercekit.repository import (
    Database,
    Node,
    Outbox,
    ReplicatedTopology,
    engine_from_url,
    new_event_id,
    sqlite_engine,
)
from tests.conftest import missing_service

PG_ADMIN = "postgresql+psycopg://postgres@127.0.0.1:5432/postgres"
MARIA_ADMIN = "mysql+pymysql://root@127.0.0.1:3306/"


class Clock:
    def __init__(self) -> None:
        self.now = 1_700_000_000.0

    def __call__(self) -> float:
        return self.now


def _server_db(kind: str) -> Iterator[Engine]:
    name = f"ck_outbox_{uuid.uuid4().hex[:12]}"
    admin_url = PG_ADMIN if kind == "postgresql" else MARIA_ADMIN
    try:
        admin = create_engine(admin_url, isolation_level="AUTOCOMMIT", connect_args={})
        with admin.connect() as conn:
            conn.execute(text(f"CREATE DATABASE {name}"))
    except Exception as exc:  # the server is not running here
        missing_service(f"{kind} on 127.0.0.1 is not reachable: {type(exc).__name__}")
    url = (
        f"postgresql://postgres@127.0.0.1:5432/{name}"
        if kind == "postgresql"
        else f"mysql://root@127.0.0.1:3306/{name}"
    )
    engine = engine_from_url(url, pool_size=8)
    try:
        yield engine
    finally:
        engine.dispose()
        with admin.connect() as conn:
            if kind == "postgresql":
                conn.execute(text(f"DROP DATABASE {name} WITH (FORCE)"))
            else:
                conn.execute(text(f"DROP DATABASE {name}"))
        admin.dispose()


@pytest.fixture(params=["sqlite", "postgresql", "mariadb"])
def engine(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Engine]:
    if request.param == "sqlite":
        eng = sqlite_engine(tmp_path / "outbox.db")
        yield eng
        eng.dispose()
    else:
        yield from _server_db(request.param)


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def setup(engine: Engine, clock: Clock) -> Iterator[tuple[Database, Outbox, Table]]:
    metadata = MetaData()
    orders = Table(
        "orders", metadata, Column("id", Integer, primary_key=True), Column("note", String(50))
    )
    outbox = Outbox(metadata, clock=clock)
    db = Database(ReplicatedTopology(Node("primary", engine)))
    db.create_all(metadata)
    yield db, outbox, orders
    db.close()


def test_an_appended_event_commits_with_its_unit_of_work(
    setup: tuple[Database, Outbox, Table],
) -> None:
    db, outbox, orders = setup
    with db.unit_of_work() as uow:
        uow.session.execute(orders.insert().values(id=1, note="paid"))
        assert outbox.append(uow, topic="orders", key="1", payload={"order": 1, "total": 1250})
    with db.unit_of_work() as uow:
        (event,) = outbox.events(uow)
        assert outbox.pending(uow) == 1
    assert (event.topic, event.key) == ("orders", "1")
    assert event.payload == {"order": 1, "total": 1250}
    assert (len(event.event_id), event.created_at_ms) == (36, 1_700_000_000_000)


def test_an_appended_event_vanishes_with_its_rolled_back_transaction(
    setup: tuple[Database, Outbox, Table],
) -> None:
    db, outbox, orders = setup

    def failing_work() -> None:
        with db.unit_of_work() as uow:
            uow.session.execute(orders.insert().values(id=1, note="x"))
            outbox.append(uow, topic="orders", payload={"order": 1})
            raise RuntimeError("the business change failed")

    with pytest.raises(RuntimeError):
        failing_work()
    with db.unit_of_work() as uow:
        assert outbox.events(uow) == []
        assert uow.session.execute(orders.select()).all() == []


def test_appending_a_stored_event_id_is_a_no_op(setup: tuple[Database, Outbox, Table]) -> None:
    db, outbox, _ = setup
    eid = new_event_id()
    with db.unit_of_work() as uow:
        assert outbox.append(uow, topic="t", payload={"n": 1}, event_id=eid) is True
    with db.unit_of_work() as uow:
        assert outbox.append(uow, topic="t", payload={"n": 2}, event_id=eid) is False
        assert outbox.append(uow, topic="t", payload={"n": 3}) is True
    with db.unit_of_work() as uow:
        events = outbox.events(uow)
    assert [e.payload["n"] for e in events] == [1, 3]  # the first copy stays, untouched
    assert events[0].sequence < events[1].sequence


def test_claim_returns_unsent_events_in_order_and_mark_sent_ends_them(
    setup: tuple[Database, Outbox, Table],
) -> None:
    db, outbox, _ = setup
    with db.unit_of_work() as uow:
        for n in range(25):
            outbox.append(uow, topic="t", key=str(n % 3), payload={"n": n})
    claim = db.run(lambda uow: outbox.claim(uow, relay="r1", limit=10)).value
    assert [e.payload["n"] for e in claim.events] == list(range(10))
    second = db.run(lambda uow: outbox.claim(uow, relay="r2", limit=100)).value
    assert [e.payload["n"] for e in second.events] == list(range(10, 25))  # r1's lease holds
    assert db.run(lambda uow: outbox.mark_sent(uow, claim)).value == 10
    assert db.run(lambda uow: outbox.release(uow, second)).value == 15
    again = db.run(lambda uow: outbox.claim(uow, relay="r1", limit=100)).value
    assert [e.payload["n"] for e in again.events] == list(range(10, 25))
    db.run(lambda uow: outbox.mark_sent(uow, again))
    assert db.run(lambda uow: outbox.pending(uow), read_only=True).value == 0
    assert db.run(lambda uow: outbox.claim(uow, relay="r1")).value.events == ()


def test_an_expired_lease_lets_another_relay_publish_again_with_the_same_ids(
    setup: tuple[Database, Outbox, Table], clock: Clock
) -> None:
    db, outbox, _ = setup
    with db.unit_of_work() as uow:
        for n in range(5):
            outbox.append(uow, topic="t", payload={"n": n})
    stalled = db.run(lambda uow: outbox.claim(uow, relay="r1", lease_s=10)).value
    clock.now += 5
    assert db.run(lambda uow: outbox.claim(uow, relay="r2")).value.events == ()
    clock.now += 6  # r1's lease ran out: r2 takes the events over, ids unchanged
    taken = db.run(lambda uow: outbox.claim(uow, relay="r2")).value
    assert [e.event_id for e in taken.events] == [e.event_id for e in stalled.events]
    assert db.run(lambda uow: outbox.mark_sent(uow, taken)).value == 5
    assert db.run(lambda uow: outbox.mark_sent(uow, stalled)).value == 0  # r1 learns it lost


def test_concurrent_relays_never_hold_the_same_event(
    setup: tuple[Database, Outbox, Table],
) -> None:
    db, outbox, _ = setup
    total = 300
    with db.unit_of_work() as uow:
        for n in range(total):
            outbox.append(uow, topic="t", payload={"n": n})
    claims: list[list[list[int]]] = [[] for _ in range(4)]
    errors: list[BaseException] = []

    def relay(i: int) -> None:
        try:
            for _ in range(2000):  # bounded
                claim = db.run(lambda uow: outbox.claim(uow, relay=f"r{i}", limit=7)).value
                if not claim.events:
                    # An empty claim only says every unsent row was locked by another
                    # relay's claim a moment ago (SKIP LOCKED; MariaDB locks every row
                    # a claim scans): stop once nothing is left unsent.
                    if db.run(lambda uow: outbox.pending(uow)).value == 0:
                        return
                    time.sleep(0.005)
                    continue
                claims[i].append([e.payload["n"] for e in claim.events])
                held = claim
                marked = db.run(lambda uow, held=held: outbox.mark_sent(uow, held)).value
                assert marked == len(claim.events)
        except BaseException as exc:  # pragma: no cover - reported below
            errors.append(exc)

    threads = [threading.Thread(target=relay, args=(i,)) for i in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=60)
    assert not errors, errors
    everything = [n for batches in claims for batch in batches for n in batch]
    assert sorted(everything) == list(range(total))  # each event once, none lost
    for batch in (b for batches in claims for b in batches):
        # A claim hands out its events in sequence order. Across claims a relay may
        # see a later event first: SKIP LOCKED passes over rows another relay's
        # claim is looking at, and that claim may leave some of them unclaimed.
        assert batch == sorted(batch)


def test_bad_input_gets_typed_errors(setup: tuple[Database, Outbox, Table]) -> None:
    db, outbox, _ = setup
    with db.unit_of_work() as uow:
        with pytest.raises(UnsupportedTypeError):
            outbox.append(uow, topic="t", payload={"total": 12.5})
        with pytest.raises(UnsupportedTypeError):
            outbox.append(uow, topic="t", payload={"when": object()})
        with pytest.raises(UnsupportedTypeError):
            outbox.append(uow, topic="t", payload=[1, 2])  # type: ignore[arg-type]
        with pytest.raises(InvalidInputError):
            outbox.append(uow, topic="", payload={})
        with pytest.raises(InvalidInputError):
            outbox.append(uow, topic="t", payload={}, event_id="x" * 65)
        with pytest.raises(InvalidInputError):
            outbox.claim(uow, relay="r", limit=0)
        with pytest.raises(InvalidInputError):
            outbox.claim(uow, relay="r", lease_s=-1)
        with pytest.raises(UnsupportedTypeError):
            outbox.append("not a session", topic="t", payload={})  # type: ignore[arg-type]
    with db.unit_of_work(read_only=True) as uow, pytest.raises(ReadOnlyError):
        outbox.append(uow, topic="t", payload={})


def test_event_ids_are_time_ordered_uuid7() -> None:
    ids = [new_event_id(1_000 + i) for i in range(50)]
    assert ids == sorted(ids)
    parsed = uuid.UUID(ids[0])
    assert (parsed.version, parsed.variant) == (7, uuid.RFC_4122)
    assert len({new_event_id(5) for _ in range(100)}) == 100


def test_event_ids_differing_only_in_case_or_trailing_spaces_are_different_events(
    setup: tuple[Database, Outbox, Table],
) -> None:
    """On MariaDB the event id's unique key compared case-insensitively and ignored
    trailing spaces: appending ``e1`` after ``E1`` returned False and the event was lost."""
    db, outbox, _ = setup
    with db.unit_of_work() as uow:
        for eid in ("E1", "e1", "e1 "):
            assert outbox.append(uow, topic="orders", payload={}, event_id=eid), eid
    with db.unit_of_work() as uow:
        assert sorted(e.event_id for e in outbox.events(uow)) == ["E1", "e1", "e1 "]
