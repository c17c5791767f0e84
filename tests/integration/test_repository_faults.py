"""The fault suite: a replica or the primary frozen (SIGSTOP) or killed (SIGKILL) under load.

Parametrised over a PostgreSQL primary with two streaming standbys and a
MariaDB primary with a GTID replica. Three reader threads and one writer run
while one node is frozen or killed for a few seconds (and, while a replica is
frozen, three asyncio reader tasks through an :class:`AsyncDatabase` as well):

* every read answers within ``READ_BOUND_S`` (the worst read latency per
  fault is printed), and no read fails while a node that can serve it is up;
* every write either commits or fails typed (``DatabaseUnavailableError``, or
  ``CommitOutcomeUnknownError`` when COMMIT was lost) within
  ``WRITE_BOUND_S``;
* nothing acknowledged is lost.

A stopped server is continued in ``finally`` (and by the servers' ``close``),
whatever the test did. The default run freezes for ``FREEZE_S``; set
``COMMERCEKIT_LONG_FAULTS=1`` for the 30 s freezes of ``test_long_freeze``.
"""

from __future__ import annotations

import asyncio
import os
import random
import threading
import time
from collections.abc import Callable, Iterator

import attrs
import pytest
from sqlalchemy import String, select
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

from commercekit.errors import CommerceKitError
from commercekit.repository import (
    AsyncDatabase,
    CommitOutcomeUnknownError,
    Database,
    DatabaseUnavailableError,
    ReadSettings,
    ReplicatedTopology,
    RetryPolicy,
    RoutingPolicy,
)
from tests.integration._replicated import MariaDbServers, PgServers, ReplicatedServers
from tests.integration._servers import PgCluster

pytestmark = pytest.mark.integration

DEADLINE_S = 1.0
"""statement_timeout_s of every node in these tests."""
CONNECT_S = 1.0
"""connect_timeout_s (libpq takes anything under 2 s as 2 s)."""
READ_BOUND_S = 3.5
"""A read's bound: measured worst 2.0-2.9 s (load average 17 on two cores).
A read on a pooled connection to the frozen node waits out the deadline
(1 s); when the node's short ejection ends, reads try it again on a new
connection, which waits out the connect timeout (1 s for PyMySQL's greeting,
2 s for libpq); then the read moves to the next replica or the primary. The
margin is for a loaded machine. Without deadlines a read waits out the whole
freeze (``FREEZE_S``)."""
WRITE_BOUND_S = 3.5
"""A write's bound without retry: the deadline, or the connect timeout, with margin."""
FREEZE_S = 4.5
"""How long a node stays frozen: longer than the bounds, so a read or write
that waited for the node instead of failing would fail the test."""
DEAD_S = 2.0
"""How long a killed node stays dead before it restarts."""


class FBase(DeclarativeBase):
    pass


class FaultItem(FBase):
    __tablename__ = "ck_fault_items"

    id: Mapped[int] = mapped_column(primary_key=True, autoincrement=False)
    value: Mapped[int]
    label: Mapped[str] = mapped_column(String(40), default="")


@attrs.define
class Rig:
    """One engine's servers, as the fault tests drive them."""

    engine: str
    primary_url: str
    replica_urls: list[str]
    replica: str
    """The server name of the replica the replica faults hit."""
    freeze: Callable[[str], None]
    thaw: Callable[[str], None]
    kill: Callable[[str], None]
    restart: Callable[[str], None]
    settle: Callable[[], None]
    """Wait until every server is up and every replica has caught up."""
    thaw_all: Callable[[], None]

    def topology(self, *, asyncio: bool = False) -> ReplicatedTopology:
        return ReplicatedTopology.from_urls(
            self.primary_url,
            self.replica_urls,
            statement_timeout_s=DEADLINE_S,
            connect_timeout_s=CONNECT_S,
            pool_size=8,
            asyncio=asyncio,
        )

    def database(self) -> tuple[Database, ReplicatedTopology]:
        topology = self.topology()
        return Database(topology, **SETTINGS), topology

    def async_database(self) -> AsyncDatabase:
        return AsyncDatabase(self.topology(asyncio=True), **SETTINGS)


SETTINGS = {
    "policy": RoutingPolicy(max_lag_s=5.0, tolerable_lag_s=30.0, min_replicas=1),
    "reads": ReadSettings(token_wait_s=0.2, probe_interval_s=0.2, eject_s=0.5),
    "retry": RetryPolicy(attempts=3),
}


def _rig(request: pytest.FixtureRequest) -> Rig:
    servers: ReplicatedServers
    if request.param == "postgresql":
        cluster: PgCluster = request.getfixturevalue("pg_cluster")
        for name in cluster.standby_names:  # reconnect fast after the primary restarts
            cluster.execute(name, "alter system set wal_retrieve_retry_interval = '100ms'")
            cluster.execute(name, "select pg_reload_conf()")
        servers = PgServers(cluster)
    else:
        servers = MariaDbServers(request.getfixturevalue("mariadb_pair"))
    return Rig(
        servers.engine,
        servers.primary_url,
        servers.replica_urls,
        servers.replicas[0],
        servers.freeze,
        servers.thaw,
        servers.kill,
        servers.start,
        servers.settle,
        servers.thaw_all,
    )


@pytest.fixture(scope="module", params=["postgresql", "mariadb"])
def rig(request: pytest.FixtureRequest) -> Iterator[Rig]:
    made = _rig(request)
    db, topology = made.database()
    FBase.metadata.drop_all(topology.primary.engine)
    db.create_all(FBase.metadata)
    db.close()
    topology.dispose()
    made.settle()
    yield made
    made.thaw_all()


@attrs.define
class Load:
    """What the readers and the writer saw."""

    read_latencies: list[float] = attrs.field(factory=list)
    read_errors: list[str] = attrs.field(factory=list)
    acknowledged: list[int] = attrs.field(factory=list)
    unknown: list[int] = attrs.field(factory=list)
    write_failures: list[tuple[str, float]] = attrs.field(factory=list)
    write_errors: list[str] = attrs.field(factory=list)
    async_read_latencies: list[float] = attrs.field(factory=list)
    async_read_errors: list[str] = attrs.field(factory=list)


def _run_load(
    db: Database,
    *,
    base: int,
    fault: Callable[[], None],
    recover: Callable[[], None],
    hold_s: float,
    async_db: Callable[[], AsyncDatabase] | None = None,
) -> Load:
    load = Load()
    lock = threading.Lock()
    stop = threading.Event()
    seeded = list(range(base, base + 20))
    for i in seeded:
        db.run(lambda uow, i=i: uow.repository(FaultItem).add(FaultItem(id=i, value=i)))
    _warm_up(db, seeded)
    ready = threading.Event()
    async_thread = None
    if async_db is not None:
        async_thread = threading.Thread(
            target=lambda: asyncio.run(_async_readers(async_db, seeded, load, stop, ready))
        )
        async_thread.start()
        assert ready.wait(timeout=30), "the asyncio readers did not start"

    def reader(seed: int) -> None:
        rng = random.Random(seed)
        repo = db.repository(FaultItem)
        while not stop.is_set():
            key = rng.choice(seeded)
            started = time.monotonic()
            try:
                found = repo.get(key)
                assert found is not None
                assert found.value == key
            except Exception as exc:
                with lock:
                    load.read_errors.append(f"{type(exc).__name__}: {exc}"[:300])
            elapsed = time.monotonic() - started
            with lock:
                load.read_latencies.append(elapsed)

    def writer() -> None:
        i = base + 1000
        while not stop.is_set():
            i += 1
            started = time.monotonic()
            try:
                db.run(lambda uow, i=i: uow.repository(FaultItem).add(FaultItem(id=i, value=i)))
            except CommitOutcomeUnknownError:
                load.unknown.append(i)
                load.write_failures.append(
                    ("CommitOutcomeUnknownError", time.monotonic() - started)
                )
            except DatabaseUnavailableError:
                load.write_failures.append(("DatabaseUnavailableError", time.monotonic() - started))
                time.sleep(0.05)
            except CommerceKitError as exc:
                load.write_errors.append(f"{type(exc).__name__}: {exc}"[:300])
            else:
                load.acknowledged.append(i)
            time.sleep(0.01)

    threads = [threading.Thread(target=reader, args=(s,)) for s in range(3)]
    threads.append(threading.Thread(target=writer))
    for t in threads:
        t.start()
    if async_thread is not None:
        threads.append(async_thread)
    try:
        time.sleep(0.5)
        fault()
        time.sleep(hold_s)
        recover()
        time.sleep(1.0)
    finally:
        stop.set()
        for t in threads:
            t.join(timeout=60)
    return load


async def _async_readers(
    make: Callable[[], AsyncDatabase],
    keys: list[int],
    load: Load,
    stop: threading.Event,
    ready: threading.Event,
) -> None:
    """Three reader tasks on one loop; each read's latency, or its error, goes to *load*."""
    db = make()
    repo = db.repository(FaultItem)
    try:
        await asyncio.gather(*(repo.get(key) for key in keys[:8]))  # pooled connections
        await db.probe()
        ready.set()

        async def reader(seed: int) -> None:
            rng = random.Random(seed)
            while not stop.is_set():
                key = rng.choice(keys)
                started = time.monotonic()
                try:
                    found = await repo.get(key)
                    assert found is not None
                    assert found.value == key
                except Exception as exc:
                    load.async_read_errors.append(f"{type(exc).__name__}: {exc}"[:300])
                load.async_read_latencies.append(time.monotonic() - started)

        await asyncio.gather(*(reader(seed) for seed in range(100, 103)))
    finally:
        ready.set()
        await db.dispose()


def _warm_up(db: Database, keys: list[int]) -> None:
    """Open a few connections to every node before the clock starts (first connects are slow)."""

    def read() -> None:
        for key in keys[:8]:
            db.repository(FaultItem).get(key)

    threads = [threading.Thread(target=read) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=30)
    db.probe()


def _check(rig: Rig, db: Database, load: Load, label: str) -> None:
    worst_read = max(load.read_latencies)
    worst_write = max((s for _, s in load.write_failures), default=0.0)
    kinds = sorted({k for k, _ in load.write_failures})
    print(
        f"\n{rig.engine} {label}: {len(load.read_latencies)} reads, worst {worst_read:.2f} s, "
        f"{len(load.read_errors)} failed; {len(load.acknowledged)} writes acknowledged, "
        f"{len(load.write_failures)} failed typed {kinds} (worst after {worst_write:.2f} s), "
        f"{len(load.unknown)} outcome unknown"
    )
    assert load.read_errors == []
    assert load.write_errors == []
    assert worst_read <= READ_BOUND_S
    assert worst_write <= WRITE_BOUND_S
    assert load.acknowledged  # the writer made progress around the fault
    if load.async_read_latencies:
        worst_async = max(load.async_read_latencies)
        print(
            f"{rig.engine} {label} asyncio: {len(load.async_read_latencies)} reads, worst "
            f"{worst_async:.2f} s, {len(load.async_read_errors)} failed"
        )
        assert load.async_read_errors == []
        assert worst_async <= READ_BOUND_S
    rig.settle()
    with db.unit_of_work() as uow:  # the primary: the truth
        stored = set(
            uow.session.scalars(
                select(FaultItem.id).where(FaultItem.id.in_(load.acknowledged + load.unknown))
            )
        )
    assert set(load.acknowledged) <= stored  # nothing acknowledged is lost


FAULTS = [
    ("replica", "stop"),
    ("replica", "kill"),
    ("primary", "stop"),
    ("primary", "kill"),
]


@pytest.mark.parametrize(("target", "how"), FAULTS, ids=[f"{t}-{h}" for t, h in FAULTS])
def test_a_frozen_or_killed_node_never_blocks_reads_or_loses_a_write(
    rig: Rig, target: str, how: str
) -> None:
    hold_s = FREEZE_S if how == "stop" else DEAD_S
    _fault_round(rig, target, how, hold_s, base=100_000 * (1 + FAULTS.index((target, how))))


@pytest.mark.skipif(
    os.environ.get("COMMERCEKIT_LONG_FAULTS") != "1",
    reason="30 s freezes: set COMMERCEKIT_LONG_FAULTS=1",
)
@pytest.mark.parametrize("target", ["replica", "primary"])
def test_long_freeze(rig: Rig, target: str) -> None:
    _fault_round(rig, target, "stop", 30.0, base=900_000 + (target == "primary") * 50_000)


def _fault_round(rig: Rig, target: str, how: str, hold_s: float, *, base: int) -> None:
    server = rig.replica if target == "replica" else "primary"
    db, topology = rig.database()

    def fault() -> None:
        (rig.freeze if how == "stop" else rig.kill)(server)

    def recover() -> None:
        if how == "stop":
            rig.thaw(server)
        else:
            rig.restart(server)

    try:
        # The asyncio twin reads through the replica freeze too (the same bound).
        async_db = rig.async_database if (target, how) == ("replica", "stop") else None
        load = _run_load(
            db, base=base, fault=fault, recover=recover, hold_s=hold_s, async_db=async_db
        )
        _check(rig, db, load, f"{target} {'SIGSTOP' if how == 'stop' else 'SIGKILL'}")
    finally:
        rig.thaw_all()
        rig.restart(server)
        db.close()
        topology.dispose()


@pytest.mark.parametrize("mode", ["sync", "async"])
def test_a_commit_that_outlives_the_deadline_is_outcome_unknown(
    pg_cluster: object, mode: str
) -> None:
    """A COMMIT that never answers (synchronous replication to a standby that does not
    exist) ends at the deadline as CommitOutcomeUnknownError, and it did commit; through
    the asyncio twin too (the loop's timer drops the socket of the waiting COMMIT)."""
    from tests.integration._servers import PgCluster

    assert isinstance(pg_cluster, PgCluster)
    item_id = 990_001 if mode == "sync" else 990_002
    rig_db = Database(
        topology := ReplicatedTopology.from_urls(
            pg_cluster.url("primary"), statement_timeout_s=DEADLINE_S, connect_timeout_s=CONNECT_S
        )
    )
    FBase.metadata.create_all(topology.primary.engine)
    pg_cluster.set_primary_setting("synchronous_standby_names", "nobody")
    try:
        started = time.monotonic()
        if mode == "sync":
            with pytest.raises(CommitOutcomeUnknownError), rig_db.unit_of_work() as uow:
                uow.repository(FaultItem).add(FaultItem(id=item_id, value=7))
        else:

            async def write() -> None:
                adb = AsyncDatabase(
                    ReplicatedTopology.from_urls(
                        pg_cluster.url("primary"),
                        statement_timeout_s=DEADLINE_S,
                        connect_timeout_s=CONNECT_S,
                        asyncio=True,
                    )
                )
                try:
                    async with adb.unit_of_work() as uow:
                        await uow.repository(FaultItem).add(FaultItem(id=item_id, value=7))
                finally:
                    await adb.dispose()

            with pytest.raises(CommitOutcomeUnknownError):
                asyncio.run(write())
        elapsed = time.monotonic() - started
        print(
            f"\npostgresql COMMIT past the deadline ({mode}): CommitOutcomeUnknownError in "
            f"{elapsed:.2f} s"
        )
        assert elapsed <= WRITE_BOUND_S
    finally:
        # Resetting the setting ends the COMMIT's wait: only then do others see the row.
        pg_cluster.set_primary_setting("synchronous_standby_names", None)
        rig_db.close()
        topology.dispose()
    rows = pg_cluster.execute("primary", f"select value from ck_fault_items where id = {item_id}")
    assert rows == [(7,)]  # it had committed: the outcome was rightly "unknown", not "failed"
