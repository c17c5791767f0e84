"""The repository on a real PostgreSQL primary with two streaming standbys: what only it has.

Synchronous replication cancelled or cut off (the commit's outcome is unknown)
and read-only work in flight on a standby that stops. The promises every
replicated engine keeps are in ``test_repository_replicated.py``.
"""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import Iterator

import pytest
from sqlalchemy import text

from commercekit.metrics import InMemoryMetrics
from commercekit.repository import (
    AsyncDatabase,
    AsyncUnitOfWork,
    CommitOutcomeUnknownError,
    Database,
    ReplicatedTopology,
)
from tests.integration._histories import SETTINGS, Item, replicated_database
from tests.integration._servers import PgCluster

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def pg(pg_cluster: PgCluster) -> Iterator[tuple[Database, InMemoryMetrics, PgCluster]]:
    with replicated_database(
        pg_cluster.url("primary"),
        [pg_cluster.url(n) for n in pg_cluster.standby_names],
        pg_cluster.wait_caught_up,
    ) as (db, metrics):
        yield db, metrics, pg_cluster


def test_sync_replication_cancel_and_lost_commit_are_outcome_unknown(
    pg: tuple[Database, InMemoryMetrics, PgCluster],
) -> None:
    db, _, cluster = pg
    cluster.set_primary_setting("synchronous_standby_names", "nobody")
    done = threading.Event()
    try:
        for item_id, action in ((700_001, "pg_cancel_backend"), (700_002, "pg_terminate_backend")):

            def release(action: str = action) -> None:
                deadline = time.monotonic() + 10
                while time.monotonic() < deadline and not done.is_set():
                    rows = cluster.execute(
                        "primary", "select pid from pg_stat_activity where wait_event = 'SyncRep'"
                    )
                    if rows:
                        cluster.execute("primary", f"select {action}({rows[0][0]})")
                        return
                    time.sleep(0.05)

            helper = threading.Thread(target=release)
            helper.start()
            with pytest.raises(CommitOutcomeUnknownError), db.unit_of_work() as uow:
                uow.repository(Item).add(Item(id=item_id, value=7))
            helper.join(timeout=15)
            # The outcome was unknown, and in fact the row committed locally.
            rows = cluster.execute("primary", f"select value from ck_items where id = {item_id}")
            assert rows == [(7,)]
    finally:
        done.set()  # a helper still polling must not outlive this test
        cluster.set_primary_setting("synchronous_standby_names", None)


def test_read_only_work_in_flight_on_a_standby_that_stops_runs_again_elsewhere(
    pg: tuple[Database, InMemoryMetrics, PgCluster],
) -> None:
    """Read-only work (run and with blocks) and routed reads, sync and asyncio, in flight
    on a standby that stops: each runs again elsewhere, none fails."""
    db, _, cluster = pg
    with db.unit_of_work() as uow:
        uow.repository(Item).add(Item(id=800_100, value=7))
    cluster.wait_caught_up()
    slow = text("select pg_sleep(0.05), value from ck_items where id = 800100")
    failures: list[str] = []
    done = [0]
    stop = threading.Event()

    def sync_reader(n: int) -> None:
        while not stop.is_set():
            try:
                if n == 3:  # a with block cannot run again: its first statement moves
                    with db.unit_of_work(read_only=True) as u:
                        assert u.session.execute(slow).one()[1] == 7
                elif n % 2:
                    value = db.run(lambda u: u.session.execute(slow).one()[1], read_only=True)
                    assert value.value == 7
                else:
                    assert db.repository(Item).require(800_100).value == 7
            except Exception as exc:
                failures.append(f"{type(exc).__name__}: {exc}"[:200])
            done[0] += 1

    async def async_readers() -> None:
        adb = AsyncDatabase(
            ReplicatedTopology.from_urls(
                cluster.url("primary"),
                [cluster.url(n) for n in cluster.standby_names],
                asyncio=True,
            ),
            **SETTINGS,
        )

        async def work(uow: AsyncUnitOfWork) -> int:
            return int((await uow.session.execute(slow)).one()[1])

        async def reader() -> None:
            while not stop.is_set():
                try:
                    assert (await adb.run(work, read_only=True)).value == 7
                    async with adb.unit_of_work(read_only=True) as uow:
                        assert await work(uow) == 7
                except Exception as exc:
                    failures.append(f"async {type(exc).__name__}: {exc}"[:200])
                done[0] += 1

        try:
            await asyncio.gather(*(reader() for _ in range(3)))
        finally:
            await adb.dispose()

    threads = [threading.Thread(target=sync_reader, args=(n,)) for n in range(4)]
    threads.append(threading.Thread(target=lambda: asyncio.run(async_readers())))
    for t in threads:
        t.start()
    try:
        time.sleep(0.3)
        cluster.stop_node("standby1")  # fast shutdown: the reads in flight there are cut off
        time.sleep(0.3)
    finally:
        stop.set()
        for t in threads:
            t.join(timeout=30)
        cluster.start_node("standby1")
        cluster.wait_streaming(2)
    assert done[0] > 20
    assert failures == []
