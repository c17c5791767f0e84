from __future__ import annotations

import threading
import uuid
from pathlib import Path

import pytest
from sqlalchemy import text

from commercekit.errors import InvalidStateError
from commercekit.repository import (
    Database,
    Node,
    ReadOnlyError,
    ReplicatedTopology,
    sqlite_engine,
)

from .models import Base, Customer, customer


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
