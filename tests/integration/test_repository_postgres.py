"""The repository on a real PostgreSQL primary with two streaming standbys."""

from __future__ import annotations

import asyncio
import os
import threading
import time
from collections.abc import Iterator

import pytest
from sqlalchemy import text

from commercekit.errors import UnavailableError
from commercekit.metrics import InMemoryMetrics
from commercekit.repository import (
    AsyncDatabase,
    AsyncUnitOfWork,
    CommitOutcomeUnknownError,
    Database,
    DatabaseUnavailableError,
    ReplicatedTopology,
)
from tests.integration._histories import (
    SETTINGS,
    Item,
    reads,
    replicated_database,
    run_async_histories,
    run_histories,
)
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


def test_token_reads_are_never_stale_while_standbys_pause_stop_and_restart(
    pg: tuple[Database, InMemoryMetrics, PgCluster],
) -> None:
    db, _, cluster = pg
    both = cluster.standby_names
    total = 10_000 if os.environ.get("COMMERCEKIT_LARGE") == "1" else 2_000  # the size
    steps = [
        (0.10, lambda: cluster.execute("standby1", "select pg_wal_replay_pause()")),
        (0.25, lambda: cluster.execute("standby1", "select pg_wal_replay_resume()")),
        (0.35, lambda: cluster.stop_node("standby2")),
        (0.50, lambda: cluster.start_node("standby2")),
        (0.60, lambda: [cluster.execute(n, "select pg_wal_replay_pause()") for n in both]),
        (0.70, lambda: [cluster.execute(n, "select pg_wal_replay_resume()") for n in both]),
        (0.80, lambda: cluster.stop_node("standby1")),
        (0.90, lambda: cluster.start_node("standby1")),
    ]  # fmt: skip
    pending = list(steps)
    lock = threading.Lock()

    def on_progress(done: int) -> None:
        with lock:
            while pending and done >= pending[0][0] * total:
                pending.pop(0)[1]()

    started = time.monotonic()
    tally = run_histories(db, count=total, with_tokens=True, on_progress=on_progress)
    elapsed = time.monotonic() - started
    for _, step in pending:  # leave the cluster whole whatever happened
        step()
    print(f"\nPG token histories: {tally} in {elapsed:.1f}s")
    assert tally.failures == 0, tally.errors
    assert tally.histories == total
    assert tally.stale == 0


def test_replicas_serve_token_reads_when_caught_up_and_naive_reads_are_stale(
    pg: tuple[Database, InMemoryMetrics, PgCluster],
) -> None:
    db, metrics, cluster = pg
    cluster.wait_caught_up()
    time.sleep(0.5)  # let probes see both standbys back
    db.probe()
    before = reads(metrics)
    tally = run_histories(db, count=600, with_tokens=True, base_key=10_000, seed=11)
    replica, primary = (a - b for a, b in zip(reads(metrics), before, strict=True))
    share = replica / (replica + primary)
    control = run_histories(db, count=600, with_tokens=False, base_key=20_000, seed=13)
    # The asyncio twin on the same standbys: 8 tasks on one loop, the same histories.
    async_tally, async_share = run_async_histories(
        cluster.url("primary"),
        [cluster.url(n) for n in cluster.standby_names],
        count=400,
        with_tokens=True,
        base_key=30_000,
        seed=17,
    )
    print(
        f"\nPG caught up: token reads stale {tally.stale}/{tally.histories}, replica share "
        f"{share:.1%}; without tokens stale {control.stale}/{control.histories} "
        f"({control.stale / control.histories:.1%}); async token reads stale "
        f"{async_tally.stale}/{async_tally.histories}, replica share {async_share:.1%}"
    )
    assert tally.stale == 0
    assert share >= 0.95
    assert control.failures == 0
    assert async_tally.failures == 0, async_tally.errors
    assert async_tally.histories == 400
    assert async_tally.stale == 0
    # Eight tasks write at once: a token wait that times out (50 ms) keeps token reads off
    # that replica for stall_backoff_s, so the share is lower than the threads' (never stale).
    assert async_share >= 0.75


def test_every_write_statement_runs_on_the_primary_and_none_on_a_standby(
    pg: tuple[Database, InMemoryMetrics, PgCluster],
) -> None:
    db, _, cluster = pg
    for node in ("primary", *cluster.standby_names):
        cluster.execute(node, "select pg_stat_statements_reset()")
    with db.unit_of_work() as uow:
        items = uow.repository(Item)
        items.add(Item(id=900_001, value=1, label="stmt-check"))
        items.update(900_001, value=2)
        uow.session.execute(text("select count(*) from ck_items where label = 'stmt-check'"))
        items.delete(900_001)
    db.repository(Item).list(label="stmt-check")
    query = "select query from pg_stat_statements"
    on_primary = " ".join(str(r[0]) for r in cluster.execute("primary", query)).lower()
    for fragment in (
        "insert into ck_items",
        "update ck_items",
        "delete from ck_items",
        "select count(*) from ck_items where label",
    ):
        assert fragment in on_primary
    for node in cluster.standby_names:
        on_standby = " ".join(str(r[0]) for r in cluster.execute(node, query)).lower()
        for verb in ("insert into ck_items", "update ck_items", "delete from ck_items"):
            assert verb not in on_standby


def test_reads_survive_standbys_stopping_one_after_the_other(
    pg: tuple[Database, InMemoryMetrics, PgCluster],
) -> None:
    db, metrics, cluster = pg
    with db.unit_of_work() as uow:
        uow.repository(Item).add(Item(id=800_000, value=42))
    cluster.wait_caught_up()
    failures: list[BaseException] = []
    served: list[tuple[float, float]] = []
    stop = threading.Event()

    def reader() -> None:
        deadline = time.monotonic() + 60
        while not stop.is_set() and time.monotonic() < deadline:
            try:
                assert db.repository(Item).require(800_000).value == 42
            except BaseException as exc:
                failures.append(exc)
            served.append(reads(metrics))

    threads = [threading.Thread(target=reader) for _ in range(3)]
    for t in threads:
        t.start()
    try:
        time.sleep(0.3)
        cluster.stop_node("standby1")
        time.sleep(0.3)
        cluster.stop_node("standby2")
        time.sleep(0.3)
        on_primary_before = reads(metrics)[1]
        time.sleep(0.5)
        assert reads(metrics)[1] > on_primary_before  # reads moved to the primary
        cluster.start_node("standby1")
        cluster.start_node("standby2")
        cluster.wait_streaming(2)
        on_replicas = reads(metrics)[0]
        back = time.monotonic() + 5.0
        while reads(metrics)[0] <= on_replicas and time.monotonic() < back:
            time.sleep(0.05)
        assert reads(metrics)[0] > on_replicas  # and came back
    finally:
        stop.set()
        for t in threads:
            t.join(timeout=30)
        for name in cluster.standby_names:
            if name not in cluster.running:
                cluster.start_node(name)
    assert failures == []


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


def test_primary_down_writes_fail_typed_reads_go_on_nothing_acknowledged_is_lost(
    pg: tuple[Database, InMemoryMetrics, PgCluster],
) -> None:
    db, _, cluster = pg
    token = None
    acknowledged = []
    for i in range(600_000, 600_200):
        done = db.run(lambda uow, i=i: uow.repository(Item).add(Item(id=i, value=i)), token=token)
        token = done.token
        acknowledged.append(i)
    cluster.stop_node("primary")
    try:
        with pytest.raises(DatabaseUnavailableError) as info, db.unit_of_work() as uow:
            uow.repository(Item).add(Item(id=600_999, value=1))
        assert isinstance(info.value, UnavailableError)
        assert info.value.__cause__ is not None
        assert "primary" in str(info.value)
        found = db.repository(Item).get_many(acknowledged, token=token)
        assert [f.id for f in found] == acknowledged
        assert db.repository(Item).count(Item.id >= 600_000, Item.id < 600_200) == 200
    finally:
        cluster.start_node("primary")
        cluster.wait_streaming(2)


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
