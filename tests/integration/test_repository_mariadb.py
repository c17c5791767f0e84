"""The repository on a real MariaDB primary with a GTID replica."""

from __future__ import annotations

import os
import threading
import time
from collections.abc import Iterator

import pytest
from sqlalchemy import text

from commercekit.metrics import InMemoryMetrics
from commercekit.repository import (
    Database,
    DatabaseUnavailableError,
    GtidPosition,
)
from tests.integration._histories import (
    Item,
    M,
    reads,
    replicated_database,
    run_async_histories,
    run_histories,
)
from tests.integration._servers import MariaDbPair

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def maria(mariadb_pair: MariaDbPair) -> Iterator[tuple[Database, InMemoryMetrics, MariaDbPair]]:
    with replicated_database(
        mariadb_pair.url("primary"), [mariadb_pair.url("replica")], mariadb_pair.wait_caught_up
    ) as (db, metrics):
        yield db, metrics, mariadb_pair


def test_tokens_are_gtid_positions(maria: tuple[Database, InMemoryMetrics, MariaDbPair]) -> None:
    db, _, _ = maria
    done = db.run(lambda uow: uow.repository(Item).add(Item(id=1, value=1)))
    assert done.token is not None
    assert "=gtid:" in done.token
    assert db.repository(Item).require(1, token=done.token).value == 1
    assert isinstance(
        db.unit_of_work().begin().close() or GtidPosition.parse("0-1-1"), GtidPosition
    )


def test_token_reads_are_never_stale_while_the_replica_pauses_stops_and_restarts(
    maria: tuple[Database, InMemoryMetrics, MariaDbPair],
) -> None:
    db, _, pair = maria
    total = 10_000 if os.environ.get("COMMERCEKIT_LARGE") == "1" else 2_000  # the size
    steps = [
        (0.15, lambda: pair.execute("replica", "STOP SLAVE SQL_THREAD")),
        (0.35, lambda: pair.execute("replica", "START SLAVE SQL_THREAD")),
        (0.50, lambda: pair.stop_node("replica")),
        (0.70, lambda: pair.start_node("replica")),
    ]
    pending = list(steps)
    lock = threading.Lock()

    def on_progress(done: int) -> None:
        with lock:
            while pending and done >= pending[0][0] * total:
                pending.pop(0)[1]()

    started = time.monotonic()
    tally = run_histories(db, count=total, with_tokens=True, on_progress=on_progress)
    elapsed = time.monotonic() - started
    for _, step in pending:
        step()
    print(f"\nMariaDB token histories: {tally} in {elapsed:.1f}s")
    assert tally.failures == 0, tally.errors
    assert tally.histories == total
    assert tally.stale == 0


def test_replica_serves_token_reads_when_caught_up_and_naive_reads_are_stale(
    maria: tuple[Database, InMemoryMetrics, MariaDbPair],
) -> None:
    db, metrics, pair = maria
    if "replica" not in pair.procs:
        pair.start_node("replica")
    pair.wait_caught_up()
    time.sleep(0.5)
    db.probe()
    before = reads(metrics)
    tally = run_histories(db, count=600, with_tokens=True, base_key=10_000, seed=11)
    replica, primary = (a - b for a, b in zip(reads(metrics), before, strict=True))
    share = replica / (replica + primary)
    control = run_histories(db, count=600, with_tokens=False, base_key=20_000, seed=13)
    # The asyncio twin (asyncmy) on the same pair: 8 tasks on one loop, the same histories.
    async_tally, async_share = run_async_histories(
        pair.url("primary"),
        [pair.url("replica")],
        count=400,
        with_tokens=True,
        base_key=30_000,
        seed=17,
    )
    print(
        f"\nMariaDB caught up: token reads stale {tally.stale}/{tally.histories}, replica share "
        f"{share:.1%}; without tokens stale {control.stale}/{control.histories} "
        f"({control.stale / control.histories:.1%}); async token reads stale "
        f"{async_tally.stale}/{async_tally.histories}, replica share {async_share:.1%}"
    )
    assert tally.stale == 0
    assert share >= 0.95
    assert async_tally.failures == 0, async_tally.errors
    assert async_tally.histories == 400
    assert async_tally.stale == 0
    # Eight tasks write at once: a token wait that times out (50 ms) keeps token reads off
    # that replica for stall_backoff_s, so the share is lower than the threads' (never stale).
    assert async_share >= 0.75


def test_primary_down_writes_fail_typed_and_reads_go_on(
    maria: tuple[Database, InMemoryMetrics, MariaDbPair],
) -> None:
    db, _, pair = maria
    token = None
    ids = list(range(600_000, 600_100))
    for i in ids:
        token = db.run(lambda uow, i=i: uow.repository(Item).add(Item(id=i, value=i))).token
    pair.wait_caught_up()
    pair.stop_node("primary")
    try:
        with pytest.raises(DatabaseUnavailableError), db.unit_of_work() as uow:
            uow.repository(Item).add(Item(id=600_999, value=1))
        found = db.repository(Item).get_many(ids, token=token)
        assert [f.id for f in found] == ids
    finally:
        pair.start_node("primary")


def test_reads_survive_the_replica_stopping_and_come_back_when_it_restarts(
    maria: tuple[Database, InMemoryMetrics, MariaDbPair],
) -> None:
    db, metrics, pair = maria
    if "replica" not in pair.procs:
        pair.start_node("replica")
    with db.unit_of_work() as uow:
        uow.repository(Item).add(Item(id=810_000, value=42))
    pair.wait_caught_up()
    failures: list[BaseException] = []
    stop = threading.Event()

    def reader() -> None:
        deadline = time.monotonic() + 60
        while not stop.is_set() and time.monotonic() < deadline:
            try:
                assert db.repository(Item).require(810_000).value == 42
            except BaseException as exc:
                failures.append(exc)
            time.sleep(0.002)

    threads = [threading.Thread(target=reader) for _ in range(3)]
    for t in threads:
        t.start()
    try:
        time.sleep(0.3)
        assert reads(metrics)[0] > 0  # served by the replica
        pair.stop_node("replica")
        time.sleep(0.3)
        on_primary_before = reads(metrics)[1]
        time.sleep(0.5)
        assert reads(metrics)[1] > on_primary_before  # reads moved to the primary
        pair.start_node("replica")
        pair.wait_caught_up()
        on_replica = reads(metrics)[0]
        deadline = time.monotonic() + 10
        while reads(metrics)[0] <= on_replica + 20 and time.monotonic() < deadline:
            time.sleep(0.1)
        assert reads(metrics)[0] > on_replica + 20  # and came back
    finally:
        stop.set()
        for t in threads:
            t.join(timeout=30)
        if "replica" not in pair.procs:
            pair.start_node("replica")
    assert failures == []
    assert metrics.value(f"{M}replica_ejections_total", group="main", node="replica1") >= 1


def _general_log(pair: MariaDbPair, name: str) -> str:
    rows = pair.execute(name, "select argument from mysql.general_log where command_type = 'Query'")
    return " ".join((r[0].decode() if isinstance(r[0], bytes) else str(r[0])) for r in rows).lower()


def test_every_write_statement_runs_on_the_primary_and_none_on_the_replica(
    maria: tuple[Database, InMemoryMetrics, MariaDbPair],
) -> None:
    db, _, pair = maria
    if "replica" not in pair.procs:
        pair.start_node("replica")
    pair.wait_caught_up()
    nodes = ("primary", "replica")
    for node in nodes:  # the general log, as a table, of every statement each server runs
        pair.execute(
            node,
            "SET GLOBAL general_log = 0",
            "TRUNCATE TABLE mysql.general_log",
            "SET GLOBAL log_output = 'TABLE'",
            "SET GLOBAL general_log = 1",
        )
    try:
        with db.unit_of_work() as uow:
            items = uow.repository(Item)
            items.add(Item(id=910_001, value=1, label="stmt-check"))
            items.update(910_001, value=2)
            uow.session.execute(text("select count(*) from ck_items where label = 'stmt-check'"))
            items.delete(910_001)
        db.repository(Item).list(label="stmt-check")
        pair.wait_caught_up()
        on_primary = _general_log(pair, "primary")
        on_replica = _general_log(pair, "replica")
    finally:
        for node in nodes:
            pair.execute(node, "SET GLOBAL general_log = 0", "TRUNCATE TABLE mysql.general_log")
    for fragment in (
        "insert into ck_items",
        "update ck_items",
        "delete from ck_items",
        "select count(*) from ck_items where label = 'stmt-check'",
    ):
        assert fragment in on_primary
    # The replica applies row events (not statements) and the app sent it none.
    for verb in ("insert into ck_items", "update ck_items", "delete from ck_items"):
        assert verb not in on_replica
    assert "select count(*) from ck_items where label" not in on_replica
