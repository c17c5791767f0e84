from __future__ import annotations

import logging
import threading
import uuid
from pathlib import Path

import pytest
from sqlalchemy import Connection, text

from commercekit.errors import InvalidStateError
from commercekit.metrics import InMemoryMetrics
from commercekit.repository import (
    Database,
    Lsn,
    Node,
    Position,
    PositionSource,
    PostgresPositions,
    ReadOnlyError,
    ReplicatedTopology,
    sqlite_engine,
)

from .models import Base, Customer, customer

M = "commercekit_repository_"


def test_commit_on_success_rollback_on_error(db: Database) -> None:
    with db.unit_of_work() as uow:
        uow.repository(Customer).add(customer(1))

    def fail() -> None:
        with db.unit_of_work() as uow:
            uow.repository(Customer).add(customer(2))
            raise RuntimeError("boom")

    with pytest.raises(RuntimeError):
        fail()
    assert [c.id for c in db.repository(Customer).list()] == [1]


def test_explicit_commit_and_misuse(db: Database) -> None:
    uow = db.unit_of_work()
    with pytest.raises(InvalidStateError):
        _ = uow.session
    with uow:
        uow.repository(Customer).add(customer(1))
        uow.commit()
        with pytest.raises(InvalidStateError):
            uow.commit()
    assert uow.token is not None
    assert uow.token.startswith("ck1;main=ts:")


def test_read_only_unit_of_work_refuses_orm_writes(db: Database) -> None:
    with db.unit_of_work(read_only=True) as uow:
        uow.session.add(customer(5))
        with pytest.raises(ReadOnlyError):
            uow.session.flush()
        uow.session.expunge_all()
    assert db.repository(Customer).count() == 0


def test_sqlite_transactions_really_begin(tmp_path: Path) -> None:
    """With the BEGIN fix a read transaction is repeatable: a concurrent commit stays unseen."""
    engine = sqlite_engine(tmp_path / "t.db")
    db = Database(ReplicatedTopology(Node("primary", engine)))
    db.create_all(Base.metadata)
    with db.unit_of_work() as uow:
        uow.repository(Customer).add(customer(1))
    with db.unit_of_work(read_only=True) as reader:
        assert reader.repository(Customer).count() == 1
        with db.unit_of_work() as writer:
            writer.repository(Customer).add(customer(2))
        assert reader.repository(Customer).count() == 1  # snapshot kept by BEGIN
    assert db.repository(Customer).count() == 2
    with engine.connect() as conn:
        assert conn.execute(text("PRAGMA journal_mode")).scalar() == "wal"


def test_sqlite_writers_queue_instead_of_deadlocking(tmp_path: Path) -> None:
    engine = sqlite_engine(tmp_path / "t.db")
    db = Database(ReplicatedTopology(Node("primary", engine)))
    db.create_all(Base.metadata)
    with db.unit_of_work() as uow:
        uow.repository(Customer).add(customer(1))
    errors: list[BaseException] = []

    def bump() -> None:
        try:
            for _ in range(20):
                db.run(
                    lambda u: u.repository(Customer).update(1, name=uuid.uuid4().hex), retry=True
                )
        except BaseException as exc:  # pragma: no cover - reported below
            errors.append(exc)

    threads = [threading.Thread(target=bump) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=60)
    assert errors == []
    assert db.repository(Customer).require(1).version == 81


def test_memory_database_is_shared_between_units_of_work() -> None:
    db = Database(ReplicatedTopology(Node("primary", sqlite_engine())))
    db.create_all(Base.metadata)
    with db.unit_of_work() as uow:
        uow.repository(Customer).add(customer(1))
    assert db.repository(Customer).require(1).name == "c0001"


class _Unreadable(PostgresPositions):
    """A primary that answers the position query with text that is no LSN."""

    def after_commit(self, connection: Connection) -> Position:
        return Lsn.parse(str(connection.execute(text("select 'not-an-lsn'")).scalar_one()))


class _Broken(PostgresPositions):
    """A position source with a bug: it must surface, not become a time window."""

    def after_commit(self, connection: Connection) -> Position:
        return Lsn(1 // 0)


def _db(tmp_path: Path, source: PositionSource, metrics: InMemoryMetrics) -> Database:
    engine = sqlite_engine(tmp_path / "t.db")
    db = Database(
        ReplicatedTopology(Node("primary", engine)), metrics=metrics, position_source=source
    )
    db.create_all(Base.metadata)
    return db


@pytest.mark.parametrize(
    ("source", "reason"),
    # PostgresPositions on SQLite: the position query fails in the driver, for real.
    [(PostgresPositions(), "failed"), (_Unreadable(), "unreadable")],
)
def test_a_token_that_falls_back_to_a_time_window_is_logged_and_counted(
    tmp_path: Path, source: PositionSource, reason: str, caplog: pytest.LogCaptureFixture
) -> None:
    metrics = InMemoryMetrics()
    db = _db(tmp_path, source, metrics)
    with caplog.at_level(logging.WARNING, logger="commercekit.repository"):
        done = db.run(lambda uow: uow.repository(Customer).add(customer(1)))
        assert done.token is not None
    assert done.token.startswith("ck1;main=ts:")
    assert metrics.value(f"{M}token_fallbacks_total", group="main", reason=reason) == 1
    [record] = [r for r in caplog.records if "time window" in r.getMessage()]
    assert record.levelno == logging.WARNING
    assert "main" in record.getMessage()


def test_a_bug_in_a_position_source_is_not_hidden_as_a_time_window(tmp_path: Path) -> None:
    db = _db(tmp_path, _Broken(), InMemoryMetrics())
    done = db.run(lambda uow: uow.repository(Customer).add(customer(1)))
    with pytest.raises(ZeroDivisionError):
        _ = done.token
