"""The contract every IdempotencyStore keeps: in memory, SQL on SQLite, SQL on PostgreSQL.

The fakes pass the same tests as the real stores, so they cannot drift apart;
the async SQL store (on an AsyncEngine: aiosqlite, psycopg's async mode) passes
them too, each call run on an event loop in a thread through anyio's portal.
"""

from __future__ import annotations

import functools
import threading
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
import sqlalchemy as sa
from sqlalchemy.pool import StaticPool

from commercekit.errors import ConflictError, NotFoundError, UnavailableError
from commercekit.payments import (
    ClaimKind,
    IdempotencyStore,
    InMemoryIdempotencyStore,
    OperationInFlightError,
    RecordStatus,
    SqlAlchemyIdempotencyStore,
)
from tests.conftest import missing_service
from tests.payments.blocking import Blocking, portal

POSTGRES_URL = "postgresql+psycopg://postgres@127.0.0.1:5432/test"
MARIADB_URL = "mysql+pymysql://root@127.0.0.1:3306/test"
LEASE = 30.0


def server_engine(url: str, driver: str, extra: str) -> sa.Engine:
    """An engine on the machine's PostgreSQL or MariaDB, or skip (fail under REQUIRE_SERVICES)."""
    try:
        __import__(driver)
    except ImportError:
        missing_service(f"{driver} is not installed (pip install 'commercekit[{extra}]')")
    engine = sa.create_engine(url, pool_pre_ping=True)
    try:
        with engine.connect() as conn:
            conn.execute(sa.text("select 1"))
    except sa.exc.OperationalError as exc:
        engine.dispose()
        missing_service(f"{engine.dialect.name} is not reachable at {engine.url} ({exc.orig})")
    return engine


def postgres_engine() -> sa.Engine:
    return server_engine(POSTGRES_URL, "psycopg", "postgres")


def async_store(kind: str, tmp_path: Path) -> Iterator[IdempotencyStore]:
    from sqlalchemy.ext.asyncio import create_async_engine

    from commercekit.payments import AsyncSqlAlchemyIdempotencyStore

    if kind == "async-postgres":
        postgres_engine().dispose()  # skips when PostgreSQL is not there
        url = POSTGRES_URL
    else:
        url = f"sqlite+aiosqlite:///{tmp_path / 'idem.db'}"
    with portal() as loop:
        engine = loop.call(functools.partial(create_async_engine, url))
        sql = AsyncSqlAlchemyIdempotencyStore(engine, table_prefix=f"ck_{uuid.uuid4().hex[:8]}_")
        loop.call(sql.create_tables)
        try:
            yield Blocking(sql, loop)  # type: ignore[misc]
        finally:
            loop.call(sql.drop_tables)
            loop.call(engine.dispose)


@pytest.fixture(
    params=[
        "memory",
        "sqlite-memory",
        "sqlite-file",
        "postgres",
        "mariadb",
        "async-sqlite",
        "async-postgres",
    ]
)
def store(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[IdempotencyStore]:
    kind = request.param
    if kind == "memory":
        yield InMemoryIdempotencyStore()
        return
    if kind.startswith("async-"):
        yield from async_store(kind, tmp_path)
        return
    if kind == "sqlite-memory":
        engine = sa.create_engine(
            "sqlite://", poolclass=StaticPool, connect_args={"check_same_thread": False}
        )
    elif kind == "sqlite-file":
        engine = sa.create_engine(f"sqlite:///{tmp_path / 'idem.db'}")
    elif kind == "mariadb":
        engine = server_engine(MARIADB_URL, "pymysql", "mysql")
    else:
        engine = postgres_engine()
    sql = SqlAlchemyIdempotencyStore(engine, table_prefix=f"ck_{uuid.uuid4().hex[:8]}_")
    sql.create_tables()
    try:
        yield sql
    finally:
        sql.drop_tables()
        engine.dispose()


def begin(
    store: IdempotencyStore,
    key: str,
    *,
    scope: str = "pay-1",
    fp: str = "fp-a",
    owner: str = "w1",
    now: float = 1000.0,
    lease_s: float = LEASE,
) -> ClaimKind:
    return store.begin(
        key,
        scope=scope,
        operation="capture",
        fingerprint=fp,
        request='{"operation":"capture"}',
        owner=owner,
        now=now,
        lease_s=lease_s,
    ).kind


def test_a_new_key_is_claimed_and_pending(store: IdempotencyStore) -> None:
    assert begin(store, "k1") is ClaimKind.NEW
    record = store.get("k1")
    assert record is not None
    assert record.status is RecordStatus.PENDING
    assert record.owner == "w1"
    assert record.lease_expires_at == 1000.0 + LEASE
    assert record.scope == "pay-1"
    assert store.get("missing") is None


def test_a_lease_keeps_a_times_fractions_at_todays_epoch(store: IdempotencyStore) -> None:
    """Unix seconds of today, not of 1970: MariaDB's FLOAT (single precision) kept such a time
    to the nearest 128 s, so a lease ended up to a minute early or late."""
    now = 1_800_000_000.25
    begin(store, "k1", now=now)
    record = store.get("k1")
    assert record is not None
    assert record.lease_expires_at == now + LEASE
    with pytest.raises(OperationInFlightError) as info:
        begin(store, "k1", owner="w2", now=now + 10)
    assert info.value.retry_after_s == pytest.approx(LEASE - 10)


def test_a_completed_key_replays_its_result(store: IdempotencyStore) -> None:
    begin(store, "k1")
    store.complete("k1", owner="w1", result='{"ok":1}', now=1001.0)
    claim = store.begin(
        "k1",
        scope="pay-1",
        operation="capture",
        fingerprint="fp-a",
        request="{}",
        owner="w2",
        now=5000.0,
        lease_s=LEASE,
    )
    assert claim.kind is ClaimKind.REPLAY
    assert claim.record.result == '{"ok":1}'
    assert claim.record.status is RecordStatus.COMPLETE
    assert claim.record.completed_at == 1001.0


@pytest.mark.parametrize("complete", [False, True])
def test_same_key_with_another_request_conflicts(store: IdempotencyStore, complete: bool) -> None:
    begin(store, "k1")
    if complete:
        store.complete("k1", owner="w1", result="{}", now=1001.0)
    with pytest.raises(ConflictError, match="another request"):
        begin(store, "k1", fp="fp-b", owner="w2")


def test_a_key_in_flight_on_another_worker_is_detected(store: IdempotencyStore) -> None:
    begin(store, "k1", owner="w1", now=1000.0)
    with pytest.raises(OperationInFlightError) as info:
        begin(store, "k1", owner="w2", now=1010.0)
    assert info.value.retry_after_s == pytest.approx(20.0)


def test_an_expired_lease_is_recovered_and_the_old_owner_loses_it(store: IdempotencyStore) -> None:
    begin(store, "k1", owner="w1", now=1000.0)
    assert begin(store, "k1", owner="w2", now=1000.0 + LEASE + 1) is ClaimKind.RECOVER
    with pytest.raises(ConflictError):
        store.complete("k1", owner="w1", result="{}", now=1040.0)
    store.complete("k1", owner="w2", result='{"w":2}', now=1040.0)
    record = store.get("k1")
    assert record is not None
    assert record.result == '{"w":2}'


def test_an_unknown_outcome_holds_the_payment_until_reconciled(store: IdempotencyStore) -> None:
    begin(store, "k1", owner="w1")
    store.release("k1", owner="w1", unknown=True)
    record = store.get("k1")
    assert record is not None
    assert record.status is RecordStatus.UNKNOWN
    assert record.owner is None
    claim = store.begin(
        "k2",
        scope="pay-1",
        operation="refund",
        fingerprint="fp-x",
        request="{}",
        owner="w2",
        now=1001.0,
        lease_s=LEASE,
    )
    assert claim.kind is ClaimKind.BLOCKED
    assert claim.record.key == "k1"
    assert begin(store, "k1", owner="w3", now=1002.0) is ClaimKind.RECOVER
    store.complete("k1", owner="w3", result="{}", now=1003.0)
    assert begin(store, "k2", fp="fp-x", owner="w2", now=1004.0) is ClaimKind.NEW


def test_releasing_forgets_the_key_and_frees_the_payment(store: IdempotencyStore) -> None:
    begin(store, "k1")
    store.release("k1", owner="w1", unknown=False)
    assert store.get("k1") is None
    assert begin(store, "k2", owner="w2") is ClaimKind.NEW
    store.complete("k2", owner="w2", result="{}", now=1001.0)
    assert begin(store, "k1", fp="fp-other", owner="w3") is ClaimKind.NEW


def test_one_operation_per_payment_at_a_time(store: IdempotencyStore) -> None:
    begin(store, "k1", owner="w1", now=1000.0)
    with pytest.raises(OperationInFlightError, match="pay-1"):
        begin(store, "k2", owner="w2", now=1001.0)
    assert begin(store, "k3", scope="pay-2", owner="w3") is ClaimKind.NEW
    claim = store.begin(
        "k2",
        scope="pay-1",
        operation="refund",
        fingerprint="fp-a",
        request="{}",
        owner="w2",
        now=1000.0 + LEASE + 1,
        lease_s=LEASE,
    )
    assert claim.kind is ClaimKind.BLOCKED  # the holder's lease ran out: reconcile it first


def test_history_lists_completed_records_of_one_scope_in_order(store: IdempotencyStore) -> None:
    for i, key in enumerate(["a", "b", "c"]):
        begin(store, key, owner=f"w{i}", now=1000.0 + i)
        store.complete(key, owner=f"w{i}", result=f'"{key}"', now=1000.5 + i)
    begin(store, "other", scope="pay-2", owner="x")
    store.complete("other", owner="x", result="{}", now=1010.0)
    begin(store, "d", owner="w9", now=1020.0)  # pending: not history
    assert [r.key for r in store.history("pay-1")] == ["a", "b", "c"]
    assert [r.key for r in store.history("pay-2")] == ["other"]
    assert store.history("nothing") == []


def test_unresolved_lists_unknown_and_expired_records(store: IdempotencyStore) -> None:
    begin(store, "live", scope="s1", owner="w1", now=1000.0)
    begin(store, "expired", scope="s2", owner="w2", now=900.0)
    begin(store, "unknown", scope="s3", owner="w3", now=1000.0)
    store.release("unknown", owner="w3", unknown=True)
    begin(store, "done", scope="s4", owner="w4", now=1000.0)
    store.complete("done", owner="w4", result="{}", now=1000.0)
    assert {r.key for r in store.unresolved(1000.0)} == {"expired", "unknown"}


def test_only_the_holder_completes_or_releases(store: IdempotencyStore) -> None:
    begin(store, "k1", owner="w1")
    with pytest.raises(ConflictError):
        store.complete("k1", owner="intruder", result="{}", now=1001.0)
    with pytest.raises(ConflictError):
        store.release("k1", owner="intruder", unknown=False)
    store.complete("k1", owner="w1", result="{}", now=1001.0)
    with pytest.raises(ConflictError):
        store.complete("k1", owner="w1", result="{}", now=1002.0)
    with pytest.raises(NotFoundError):
        store.complete("nope", owner="w1", result="{}", now=1002.0)


@pytest.mark.parametrize("same_key", [True, False])
def test_racing_workers_get_one_winner(store: IdempotencyStore, same_key: bool) -> None:
    wins: list[str] = []
    errors: list[UnavailableError] = []
    barrier = threading.Barrier(8)

    def worker(i: int) -> None:
        barrier.wait()
        key = "race" if same_key else f"race-{i}"
        try:
            kind = begin(store, key, scope="pay-race", owner=f"w{i}")
        except OperationInFlightError:
            return
        except UnavailableError as exc:  # a database that chose a deadlock victim must rerun it
            errors.append(exc)
            return
        if kind is ClaimKind.NEW:
            wins.append(key)

    threads = [threading.Thread(target=worker, args=(i,)) for i in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    assert len(wins) == 1
