"""The consumer rides out a PostgreSQL that is really unavailable, parking nothing.

The aggregates live in a database of the test's own on the machine's
PostgreSQL, which for longer than the consumer's *max_attempts* refuses
connections, turns read-only (a fail-over to a replica) or loses the
connection during COMMIT. Once the database is back, every event is counted
once: none lost, none parked, none counted twice, and the consumer never
stopped. The outage ends on the consumer's own backoff (its injected sleep),
so no test waits on wall-clock time.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa

from commercekit.analytics import (
    AnalyticsConsumer,
    AnalyticsStore,
    JsonLinesLog,
    LogRecord,
    Reports,
    product_viewed,
)
from commercekit.money import Money
from commercekit.repository import Database, Node, ReplicatedTopology
from tests.conftest import missing_service

pytestmark = [pytest.mark.integration, pytest.mark.timeout(120)]

SERVER = "postgresql+psycopg://postgres@127.0.0.1:5432"


class _Pg:
    """A database of its own on the machine's PostgreSQL, and the faults the test puts on it."""

    def __init__(self) -> None:
        self.name = f"ck_outage_{uuid.uuid4().hex[:10]}"
        self.admin = sa.create_engine(f"{SERVER}/test", isolation_level="AUTOCOMMIT")
        self.sql(f"CREATE DATABASE {self.name}")
        self.engine = sa.create_engine(f"{SERVER}/{self.name}", pool_pre_ping=False)

    def sql(self, text: str) -> None:
        with self.admin.connect() as conn:
            conn.execute(sa.text(text))

    def kick(self) -> None:
        """End every session on the database (the pool's connections die)."""
        self.sql(
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
            f"WHERE datname = '{self.name}' AND pid <> pg_backend_pid()"
        )

    def close(self) -> None:
        self.engine.dispose()
        self.sql(f"DROP DATABASE IF EXISTS {self.name} WITH (FORCE)")
        self.admin.dispose()


@pytest.fixture
def pg() -> Iterator[_Pg]:
    try:
        handle = _Pg()
    except sa.exc.OperationalError as exc:
        missing_service(f"PostgreSQL is not reachable at {SERVER} ({exc.orig})")
    except ImportError as exc:
        missing_service(f"the psycopg driver is not installed ({exc})")
    try:
        yield handle
    finally:
        handle.close()


def _consume(pg: _Pg, tmp_path: Path, outage: Callable[[], None], back: Callable[[], None]) -> Any:
    """Publish 8 views, start *outage*, consume until idle; *back* after 8 backoff waits."""
    log = JsonLinesLog(tmp_path / "events.jsonl")
    views = [product_viewed("tee", Money.of("1.00", "EUR"), customer_id=f"c{i}") for i in range(8)]
    log.publish([LogRecord(e.event_id, e.to_bytes()) for e in views])
    store = AnalyticsStore(Database(ReplicatedTopology(Node("primary", pg.engine))))
    store.create()
    outage()
    waits: list[float] = []

    def sleep(seconds: float) -> None:
        waits.append(seconds)
        if len(waits) == 8:
            back()

    consumer = AnalyticsConsumer(
        log, store, batch_size=4, poll_timeout_s=0, sleep=sleep, max_attempts=3
    )
    consumer.run(idle_exit_s=0.2)
    assert len(waits) >= 8  # the outage outlasted max_attempts
    reports = Reports(store)
    assert reports.dead_letters() == []  # nothing parked
    assert reports.top_products("viewed")[0].count == 8  # none lost, none counted twice
    assert log.consume(10, 0) == []  # all acknowledged
    return store


def test_a_database_refusing_connections_parks_nothing(pg: _Pg, tmp_path: Path) -> None:
    def outage() -> None:
        pg.sql(f"ALTER DATABASE {pg.name} ALLOW_CONNECTIONS false")
        pg.kick()

    _consume(
        pg, tmp_path, outage, lambda: pg.sql(f"ALTER DATABASE {pg.name} ALLOW_CONNECTIONS true")
    )


def test_a_database_turned_read_only_parks_nothing(pg: _Pg, tmp_path: Path) -> None:
    """A fail-over that left the consumer on a read-only node: ReadOnlyError is waited out."""

    def outage() -> None:
        pg.sql(f"ALTER DATABASE {pg.name} SET default_transaction_read_only = on")
        pg.kick()

    def back() -> None:
        pg.sql(f"ALTER DATABASE {pg.name} SET default_transaction_read_only = off")
        pg.kick()

    _consume(pg, tmp_path, outage, back)


def test_a_connection_lost_during_commit_parks_and_doubles_nothing(pg: _Pg, tmp_path: Path) -> None:
    """COMMIT's connection is killed (the outcome unknown): the batch is applied again."""
    state = {"on": False, "kills": 0}

    @sa.event.listens_for(pg.engine, "commit")
    def kill_at_commit(conn: sa.Connection) -> None:
        if state["on"]:
            state["kills"] += 1
            pid = conn.exec_driver_sql("SELECT pg_backend_pid()").scalar()
            pg.sql(f"SELECT pg_terminate_backend({int(pid or 0)})")

    def outage() -> None:
        state["on"] = True

    def back() -> None:
        state["on"] = False

    _consume(pg, tmp_path, outage, back)
    assert state["kills"] >= 8
