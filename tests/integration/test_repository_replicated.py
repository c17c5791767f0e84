"""The repository's promises on a real primary and its replicas, once for every engine.

Parametrised over a PostgreSQL primary with two streaming standbys and a
MariaDB primary with a GTID replica (``tests/integration/_replicated.py`` drives
both through one handle): token reads are never stale while replicas pause,
stop and restart; caught-up replicas serve token reads (sync and asyncio) and
reads without a token may be stale; every write statement runs on the primary
and none on a replica; reads survive the replicas stopping and come back; with
the primary down writes fail typed and reads go on. What only one engine has
is in ``test_repository_postgres.py`` and ``test_repository_mariadb.py``.
"""

from __future__ import annotations

import os
import threading
import time
from collections.abc import Callable, Iterator
from typing import NamedTuple

import pytest
from sqlalchemy import text

from commercekit.errors import UnavailableError
from commercekit.metrics import InMemoryMetrics
from commercekit.repository import ConsistencyToken, Database, DatabaseUnavailableError
from tests.integration._histories import (
    Item,
    M,
    reads,
    replicated_database,
    run_async_histories,
    run_histories,
)
from tests.integration._replicated import MariaDbServers, PgServers, ReplicatedServers

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module", params=["postgresql", "mariadb"])
def servers(request: pytest.FixtureRequest) -> ReplicatedServers:
    """One engine's primary and replicas (the session's servers, shared with other modules)."""
    if request.param == "postgresql":
        return PgServers(request.getfixturevalue("pg_cluster"))
    return MariaDbServers(request.getfixturevalue("mariadb_pair"))


class Replicated(NamedTuple):
    db: Database
    metrics: InMemoryMetrics
    servers: ReplicatedServers


@pytest.fixture(scope="module")
def replicated_db(servers: ReplicatedServers) -> Iterator[Replicated]:
    servers.start_all()
    with replicated_database(servers.primary_url, servers.replica_urls, servers.wait_caught_up) as (
        db,
        metrics,
    ):
        yield Replicated(db, metrics, servers)


@pytest.fixture
def replicated(replicated_db: Replicated) -> Replicated:
    """The database, with every server up and every replica caught up (whatever ran before)."""
    replicated_db.servers.settle()
    return replicated_db


def test_tokens_hold_the_engines_positions_and_read_the_write_back(replicated: Replicated) -> None:
    db, _, servers = replicated
    done = db.run(lambda uow: uow.repository(Item).add(Item(id=1, value=1)))
    assert done.token is not None
    position = ConsistencyToken.parse(done.token).get("main")
    assert isinstance(position, servers.position)
    assert db.repository(Item).require(1, token=done.token).value == 1


def test_token_reads_are_never_stale_while_replicas_pause_stop_and_restart(
    replicated: Replicated,
) -> None:
    db, _, servers = replicated
    first, last = servers.replicas[0], servers.replicas[-1]
    total = 10_000 if os.environ.get("COMMERCEKIT_LARGE") == "1" else 2_000  # the size
    steps: list[tuple[float, Callable[[], object]]] = [
        (0.10, lambda: servers.pause_replay(first)),
        (0.25, lambda: servers.resume_replay(first)),
        (0.35, lambda: servers.stop(last)),
        (0.50, lambda: servers.start(last)),
        (0.60, lambda: [servers.pause_replay(n) for n in servers.replicas]),
        (0.70, lambda: [servers.resume_replay(n) for n in servers.replicas]),
        (0.80, lambda: servers.stop(first)),
        (0.90, lambda: servers.start(first)),
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
    for _, step in pending:  # leave the servers whole whatever happened
        step()
    print(f"\n{servers.engine} token histories: {tally} in {elapsed:.1f}s")
    assert tally.failures == 0, tally.errors
    assert tally.histories == total
    assert tally.stale == 0


def test_replicas_serve_token_reads_when_caught_up_and_naive_reads_are_stale(
    replicated: Replicated,
) -> None:
    db, metrics, servers = replicated
    time.sleep(0.5)  # let probes see every replica back
    db.probe()
    before = reads(metrics)
    tally = run_histories(db, count=600, with_tokens=True, base_key=10_000, seed=11)
    replica, primary = (a - b for a, b in zip(reads(metrics), before, strict=True))
    share = replica / (replica + primary)
    control = run_histories(db, count=600, with_tokens=False, base_key=20_000, seed=13)
    # The asyncio twin (psycopg, asyncmy) on the same replicas: 8 tasks on one loop.
    async_tally, async_share = run_async_histories(
        servers.primary_url,
        servers.replica_urls,
        count=400,
        with_tokens=True,
        base_key=30_000,
        seed=17,
    )
    print(
        f"\n{servers.engine} caught up: token reads stale {tally.stale}/{tally.histories}, "
        f"replica share {share:.1%}; without tokens stale {control.stale}/{control.histories} "
        f"({control.stale / control.histories:.1%}); async token reads stale "
        f"{async_tally.stale}/{async_tally.histories}, replica share {async_share:.1%}"
    )
    assert tally.failures == 0, tally.errors
    assert tally.stale == 0
    assert share >= 0.95
    assert control.failures == 0, control.errors
    assert async_tally.failures == 0, async_tally.errors
    assert async_tally.histories == 400
    assert async_tally.stale == 0
    # Eight tasks write at once: a token wait that times out (50 ms) keeps token reads off
    # that replica for stall_backoff_s, so the share is lower than the threads' (never stale).
    assert async_share >= 0.75


def test_every_write_statement_runs_on_the_primary_and_none_on_a_replica(
    replicated: Replicated,
) -> None:
    db, _, servers = replicated
    servers.reset_statements()
    try:
        with db.unit_of_work() as uow:
            items = uow.repository(Item)
            items.add(Item(id=900_001, value=1, label="stmt-check"))
            items.update(900_001, value=2)
            uow.session.execute(text("select count(*) from ck_items where label = 'stmt-check'"))
            items.delete(900_001)
        db.repository(Item).list(label="stmt-check")
        servers.wait_caught_up()
        on_primary = servers.statements("primary")
        on_replicas = {name: servers.statements(name) for name in servers.replicas}
    finally:
        servers.stop_recording()
    label = servers.shown("'stmt-check'")
    counted = f"select count(*) from ck_items where label = {label}"
    for fragment in ("insert into ck_items", "update ck_items", "delete from ck_items", counted):
        assert fragment in on_primary
    # A replica applies WAL or row events (not statements), and the app sent it none.
    for on_replica in on_replicas.values():
        for verb in ("insert into ck_items", "update ck_items", "delete from ck_items"):
            assert verb not in on_replica
        assert "select count(*) from ck_items where label" not in on_replica


def test_reads_survive_the_replicas_stopping_one_after_the_other_and_come_back(
    replicated: Replicated,
) -> None:
    db, metrics, servers = replicated
    with db.unit_of_work() as uow:
        uow.repository(Item).add(Item(id=800_000, value=42))
    servers.wait_caught_up()
    ejections = [
        metrics.value(f"{M}replica_ejections_total", group="main", node=f"replica{i}")
        for i in range(1, len(servers.replicas) + 1)
    ]
    failures: list[BaseException] = []
    stop = threading.Event()

    def reader() -> None:
        deadline = time.monotonic() + 60
        while not stop.is_set() and time.monotonic() < deadline:
            try:
                assert db.repository(Item).require(800_000).value == 42
            except BaseException as exc:
                failures.append(exc)

    on_replicas = reads(metrics)[0]
    threads = [threading.Thread(target=reader) for _ in range(3)]
    for t in threads:
        t.start()
    try:
        _wait_until(lambda: reads(metrics)[0] > on_replicas, within_s=servers.comeback_s)
        assert reads(metrics)[0] > on_replicas  # served by the replicas
        for name in servers.replicas:
            servers.stop(name)
            time.sleep(0.3)
        on_primary_before = reads(metrics)[1]
        time.sleep(0.5)
        assert reads(metrics)[1] > on_primary_before  # reads moved to the primary
        servers.start_all()
        on_replicas = reads(metrics)[0]
        _wait_until(lambda: reads(metrics)[0] > on_replicas + 20, within_s=servers.comeback_s)
        assert reads(metrics)[0] > on_replicas + 20  # and came back
    finally:
        stop.set()
        for t in threads:
            t.join(timeout=30)
        servers.start_all()
    assert failures == []
    for i, before in enumerate(ejections, 1):
        after = metrics.value(f"{M}replica_ejections_total", group="main", node=f"replica{i}")
        assert after > before  # each stopped replica was ejected


def test_primary_down_writes_fail_typed_reads_go_on_nothing_acknowledged_is_lost(
    replicated: Replicated,
) -> None:
    db, _, servers = replicated
    token = None
    acknowledged = []
    for i in range(600_000, 600_200):
        done = db.run(lambda uow, i=i: uow.repository(Item).add(Item(id=i, value=i)), token=token)
        token = done.token
        acknowledged.append(i)
    if not servers.shutdown_ships_everything:
        servers.wait_caught_up()
    servers.stop("primary")
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
        servers.start_all()


def _wait_until(condition: Callable[[], bool], *, within_s: float) -> None:
    deadline = time.monotonic() + within_s
    while not condition() and time.monotonic() < deadline:
        time.sleep(0.05)
