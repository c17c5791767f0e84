"""SqlRunner tells a lost COMMIT (outcome unknown) from a failure before it (nothing kept).

The fault is real: a deferred constraint trigger on PostgreSQL terminates the
session's own backend while COMMIT runs, so the client loses the connection
after sending COMMIT, as when a network drops or the server dies then.
"""

from __future__ import annotations

import threading
import uuid
from collections.abc import Iterator

import pytest
import sqlalchemy as sa

from commercekit.errors import CommitOutcomeUnknownError, UnavailableError
from commercekit.payments._sql._tx import SqlRunner
from tests.conftest import missing_service

POSTGRES_URL = "postgresql+psycopg://postgres@127.0.0.1:5432/test"


@pytest.fixture
def engine() -> Iterator[sa.Engine]:
    engine = sa.create_engine(POSTGRES_URL, connect_args={"connect_timeout": 3})
    try:
        with engine.connect():
            pass
    except sa.exc.OperationalError:
        missing_service("PostgreSQL is not running on 127.0.0.1:5432")
    yield engine
    engine.dispose()


def test_a_connection_lost_during_commit_is_an_unknown_outcome(engine: sa.Engine) -> None:
    table = f"ck_sqltx_{uuid.uuid4().hex[:12]}"
    with engine.begin() as conn:
        conn.execute(sa.text(f"CREATE TABLE {table} (id int)"))
        conn.execute(
            sa.text(
                f"CREATE FUNCTION {table}_die() RETURNS trigger LANGUAGE plpgsql AS "
                "$$ BEGIN PERFORM pg_terminate_backend(pg_backend_pid()); RETURN NULL; END $$"
            )
        )
        conn.execute(
            sa.text(
                f"CREATE CONSTRAINT TRIGGER {table}_at_commit AFTER INSERT ON {table} "
                f"DEFERRABLE INITIALLY DEFERRED FOR EACH ROW EXECUTE FUNCTION {table}_die()"
            )
        )
    runner = SqlRunner(engine, what="the test store", unsaved="nothing was recorded")
    try:
        with pytest.raises(CommitOutcomeUnknownError, match="COMMIT"):
            runner.tx(lambda c: c.execute(sa.text(f"INSERT INTO {table} VALUES (1)")))
        # Before COMMIT, the same loss means nothing was kept.
        with pytest.raises(UnavailableError):
            runner.tx(lambda c: c.execute(sa.text("SELECT pg_terminate_backend(pg_backend_pid())")))
    finally:
        with engine.begin() as conn:
            conn.execute(sa.text(f"DROP TABLE {table}"))
            conn.execute(sa.text(f"DROP FUNCTION {table}_die()"))


def test_a_deadlock_victim_runs_again_and_both_transactions_commit(engine: sa.Engine) -> None:
    """Two transactions lock two rows in opposite orders: PostgreSQL rolls one back."""
    table = f"ck_sqltx_{uuid.uuid4().hex[:12]}"
    with engine.begin() as conn:
        conn.execute(sa.text(f"CREATE TABLE {table} (id int primary key, n int)"))
        conn.execute(sa.text(f"INSERT INTO {table} VALUES (1, 0), (2, 0)"))
    runner = SqlRunner(engine, what="the test store", unsaved="nothing was recorded")
    both_hold_one = threading.Barrier(2, timeout=10)
    attempts = {"a": 0, "b": 0}
    failures: list[BaseException] = []

    def transfer(name: str, first: int, second: int) -> None:
        def work(conn: sa.Connection) -> None:
            attempts[name] += 1
            conn.execute(sa.text(f"UPDATE {table} SET n = n + 1 WHERE id = {first}"))
            if attempts[name] == 1:
                both_hold_one.wait()
            conn.execute(sa.text(f"UPDATE {table} SET n = n + 1 WHERE id = {second}"))

        try:
            runner.tx(work)
        except BaseException as exc:
            failures.append(exc)

    threads = [
        threading.Thread(target=transfer, args=("a", 1, 2)),
        threading.Thread(target=transfer, args=("b", 2, 1)),
    ]
    try:
        for t in threads:
            t.start()
        for t in threads:
            t.join(timeout=30)
        assert failures == []
        # A victim ran again (a loaded machine has seen both chosen as victims in turn),
        # and each transaction committed once: 2 + 2.
        assert max(attempts.values()) > 1
        with engine.connect() as conn:
            assert conn.execute(sa.text(f"SELECT sum(n) FROM {table}")).scalar() == 4
    finally:
        with engine.begin() as conn:
            conn.execute(sa.text(f"DROP TABLE {table}"))
