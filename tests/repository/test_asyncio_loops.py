"""An AsyncDatabase's pools belong to the event loop of its first use, and close with it.

Used in one ``asyncio.run()`` and then in another, it serves both on SQLite
(aiosqlite), PostgreSQL (psycopg async) and MariaDB (asyncmy), through the
primary and a replica, probes included: each loop's connections are closed as
that loop shuts down (no unclosed socket or transport, no "attached to a
different loop"), the next loop gets fresh ones. Another loop still running is
a :class:`ConfigurationError`, as it is for the payment transports and the
CDN's HTTP clients (``commercekit._loop``).
"""

from __future__ import annotations

import asyncio
import gc
import logging
import sys
import threading
import uuid
import warnings
from collections.abc import AsyncIterator, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from sqlalchemy import String
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column
from sqlalchemy.util import await_

from commercekit.errors import ConfigurationError, UnavailableError
from commercekit.repository import (
    AsyncDatabase,
    AsyncUnitOfWork,
    Node,
    ReadSettings,
    ReplicaStatus,
    ReplicatedTopology,
    async_engine_from_url,
)
from tests.conftest import server_engine

from .fakes import FakePositions

POSTGRES_URL = "postgresql://postgres@127.0.0.1:5432/test"
MARIADB_URL = "mysql://root@127.0.0.1:3306/test"
SUFFIX = uuid.uuid4().hex[:10]


class Base(DeclarativeBase):
    pass


class Item(Base):
    __tablename__ = f"ck_loops_items_{SUFFIX}"

    id: Mapped[int] = mapped_column(primary_key=True, autoincrement=False)
    name: Mapped[str] = mapped_column(String(20))


@contextmanager
def no_leaks() -> Iterator[list[str]]:
    """Fail on any ResourceWarning (an unclosed socket, transport, connection) in the block.

    Warnings raised in ``__del__`` are unraisable: they are caught by the hook,
    after a collection at the block's end. Yields the errors SQLAlchemy's pool
    logged (a reset or close that failed, as on a connection of another loop).
    """
    unraisable: list[str] = []
    logged: list[str] = []

    class Logged(logging.Handler):
        def emit(self, record: logging.LogRecord) -> None:
            logged.append(record.getMessage())

    handler = Logged(logging.ERROR)
    pool_log = logging.getLogger("sqlalchemy.pool")
    pool_log.addHandler(handler)
    hook = sys.unraisablehook
    sys.unraisablehook = lambda u: unraisable.append(f"{u.exc_value!r} in {u.object!r}")
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", ResourceWarning)
            yield logged
            gc.collect()
    finally:
        sys.unraisablehook = hook
        pool_log.removeHandler(handler)
    assert unraisable == []
    assert logged == []


def _url(kind: str, tmp_path: Path) -> str:
    if kind == "sqlite":
        return f"sqlite:///{tmp_path / 'shop.db'}"
    url, what = (POSTGRES_URL, "PostgreSQL") if kind == "postgresql" else (MARIADB_URL, "MariaDB")
    server_engine(url, what).dispose()
    return url


def _database(url: str, **reads: Any) -> AsyncDatabase:
    """A primary and a "replica" on the same database: routing and pools are what is checked."""
    primary = Node("primary", async_engine_from_url(url))
    replica = Node("replica1", async_engine_from_url(url))
    database = str(primary.engine.url.database)
    return AsyncDatabase(
        ReplicatedTopology(primary, [replica]),
        reads=ReadSettings(probe_interval_s=0.0, **reads),
        position_source=FakePositions({database: "replica1"}),  # caught up, no lag
    )


def _engines(db: AsyncDatabase) -> list[sa.Engine]:
    return db._db._engines()


def _pooled(db: AsyncDatabase) -> list[int]:
    """How many connections each engine's pool holds (checked in or out)."""
    return [e.pool.checkedin() + e.pool.checkedout() for e in _engines(db)]  # type: ignore[attr-defined]


async def _use(db: AsyncDatabase, first: int) -> list[str]:
    """Write on the primary, read on the replica (probes due on every read); say who served."""

    async def add(uow: AsyncUnitOfWork) -> None:
        await uow.repository(Item).add(Item(id=first + 1, name=f"item-{first + 1}"))

    async with db.unit_of_work() as uow:
        await uow.repository(Item).add(Item(id=first, name=f"item-{first}"))
    await db.run(add, retry=True)
    served = [uow.node]
    async with db.unit_of_work(read_only=True) as ro:
        assert (await ro.repository(Item).require(first)).name == f"item-{first}"
    served.append(ro.node)
    counts = await asyncio.gather(*(db.repository(Item).count() for _ in range(3)))
    assert counts == [first + 1] * 3
    await asyncio.sleep(0)  # let a probe task started by the reads run
    return served


@pytest.mark.parametrize("kind", ["sqlite", "postgresql", "mariadb"])
def test_a_second_asyncio_run_gets_fresh_pools_and_the_first_leaks_nothing(
    kind: str, tmp_path: Path
) -> None:
    url = _url(kind, tmp_path)
    with no_leaks():
        db = _database(url)
        probe_loops: list[asyncio.AbstractEventLoop] = []

        async def first() -> list[str]:
            await db.create_all(Base.metadata)
            await db.run(lambda uow: uow.session.execute(sa.delete(Item)))
            served = await _use(db, 1)
            probe_loops.append(db._db._groups["main"]._probe_work.task.get_loop())  # type: ignore[union-attr]
            return served

        async def second() -> list[str]:
            served = await _use(db, 3)
            probe_loops.append(db._db._groups["main"]._probe_work.task.get_loop())  # type: ignore[union-attr]
            assert probe_loops[-1] is asyncio.get_running_loop()
            return served

        async def last() -> None:
            assert await db.repository(Item).count() == 4
            await db.drop_all(Base.metadata)
            await db.dispose()

        assert asyncio.run(first()) == ["primary", "replica1"]
        assert _pooled(db) == [0, 0]  # closed as the loop shut down, not left to the collector
        assert asyncio.run(second()) == ["primary", "replica1"]  # not "a different loop"
        assert _pooled(db) == [0, 0]
        assert probe_loops[0] is not probe_loops[1]  # probes moved to the second loop
        asyncio.run(last())
        assert _pooled(db) == [0, 0]


def test_a_database_dropped_with_its_loop_leaks_nothing(tmp_path: Path) -> None:
    url = _url("sqlite", tmp_path)

    async def main() -> list[sa.Engine]:
        db = _database(url)
        await db.create_all(Base.metadata)
        await _use(db, 1)
        return _engines(db)  # the database itself is dropped here, undisposed

    with no_leaks():
        engines = asyncio.run(main())
        assert [e.pool.checkedin() for e in engines] == [0, 0]  # type: ignore[attr-defined]


def test_a_database_dropped_while_its_loop_runs_is_closed_by_that_loop(tmp_path: Path) -> None:
    url = _url("sqlite", tmp_path)

    async def main() -> None:
        db = _database(url)
        await db.create_all(Base.metadata)
        await _use(db, 1)
        engines = _engines(db)
        pools = [e.pool for e in engines]
        del db
        gc.collect()
        loop = asyncio.get_running_loop()
        deadline = loop.time() + 10.0
        # The loop's async-generator finalizer closes them in a task, on the loop.
        await asyncio.sleep(0)  # the finalizer's callback makes the task
        while len(asyncio.all_tasks()) > 1 and loop.time() < deadline:
            await asyncio.sleep(0.01)
        assert [p.checkedin() for p in pools] == [0, 0]  # type: ignore[attr-defined]

    with no_leaks():
        asyncio.run(main())


def test_another_running_loop_is_a_configuration_error(tmp_path: Path) -> None:
    url = _url("sqlite", tmp_path)
    db = _database(url)
    loop = asyncio.new_event_loop()
    thread = threading.Thread(target=loop.run_forever, daemon=True)
    thread.start()
    try:
        asyncio.run_coroutine_threadsafe(db.create_all(Base.metadata), loop).result(10)
        asyncio.run_coroutine_threadsafe(_use(db, 1), loop).result(10)

        async def elsewhere() -> None:
            with pytest.raises(ConfigurationError, match="in use on another event loop"):
                await db.repository(Item).count()
            # Every routed read asks for the running loop's pools, pages and lists too.
            with pytest.raises(ConfigurationError, match="in use on another event loop"):
                await db.repository(Item).find()
            with pytest.raises(ConfigurationError, match="in use on another event loop"):
                await db.repository(Item).list()
            with pytest.raises(ConfigurationError, match="one per event loop"):
                async with db.unit_of_work():
                    pass
            with pytest.raises(ConfigurationError, match="one per event loop"):
                await db.run(lambda uow: uow.session.execute(sa.text("select 1")))

        asyncio.run(elsewhere())
        # The first loop still owns its pools and serves on.
        assert asyncio.run_coroutine_threadsafe(db.repository(Item).count(), loop).result(10) == 2
        asyncio.run_coroutine_threadsafe(db.dispose(), loop).result(10)
    finally:
        loop.call_soon_threadsafe(loop.stop)
        thread.join(10)
        loop.run_until_complete(loop.shutdown_asyncgens())
        loop.close()


def test_a_loop_closed_by_hand_is_warned_of(tmp_path: Path) -> None:
    """Closed without shutdown_asyncgens(), nothing can close its connections: say what to do."""
    url = _url("sqlite", tmp_path)
    db = _database(url, background_probes=False)
    loop = asyncio.new_event_loop()
    loop.run_until_complete(db.create_all(Base.metadata))
    loop.close()
    with pytest.warns(ResourceWarning, match=r"await AsyncDatabase\.dispose\(\)"):
        asyncio.run(db.probe())  # a new loop, fresh pools: it works
    asyncio.run(db.dispose())
    with warnings.catch_warnings():  # what was warned of: the first loop's connection is lost
        warnings.simplefilter("ignore", ResourceWarning)
        gc.collect()


class _FirstProbeHangs(FakePositions):
    """The first probe waits (on its loop) until the loop is closed under it."""

    started = False

    def status(self, connection: sa.Connection) -> ReplicaStatus:
        if not self.started:
            self.started = True
            await_(asyncio.sleep(3600))
        return super().status(connection)


def test_a_probe_lost_with_a_loop_closed_by_hand_does_not_stop_later_probes(
    tmp_path: Path,
) -> None:
    url = _url("sqlite", tmp_path)
    db = _database(url)
    positions = _FirstProbeHangs({str(tmp_path / "shop.db"): "replica1"})
    group = db._db._groups["main"]
    group._source = positions

    async def start_a_probe() -> None:
        await db.create_all(Base.metadata)
        group.maybe_probe()  # a task
        while not positions.started:
            await asyncio.sleep(0.01)

    loop = asyncio.new_event_loop()
    loop.run_until_complete(start_a_probe())
    lost = [group._probe_work]
    loop.close()  # by hand: the probe task never ends
    assert group._probe_lock.locked()

    async def again() -> None:
        await db.repository(Item).count()  # finds a probe due
        assert group._probe_work is not lost[0]
        assert group._probe_work.task.get_loop() is asyncio.get_running_loop()  # type: ignore[union-attr]
        await db.dispose()

    with pytest.warns(ResourceWarning, match="was not closed"):
        asyncio.run(again())
    with warnings.catch_warnings():  # what was warned of: the first loop's connections are lost
        warnings.simplefilter("ignore", ResourceWarning)
        lost.clear()
        gc.collect()


def test_a_call_as_asyncio_run_finalizes_async_generators_is_refused(tmp_path: Path) -> None:
    """From an async generator's ``finally`` at the loop's end: typed, and no pool opened."""
    url = _url("sqlite", tmp_path)
    db = _database(url)
    outcomes: list[BaseException | int] = []
    held: list[AsyncIterator[int]] = []

    async def stream() -> AsyncIterator[int]:
        try:
            yield 1
        finally:
            try:
                outcomes.append(await db.repository(Item).count())
            except UnavailableError as exc:
                outcomes.append(exc)

    async def main() -> None:
        await db.create_all(Base.metadata)
        gen = stream()
        held.append(gen)
        await gen.__anext__()  # left suspended: asyncio.run closes it as it ends

    with no_leaks():
        asyncio.run(main())
        assert len(outcomes) == 1
        assert isinstance(outcomes[0], UnavailableError)
        assert _pooled(db) == [0, 0]
        asyncio.run(db.dispose())
