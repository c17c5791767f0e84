"""The repository's promises on a real primary and its replicas, once for every engine.

Parametrised over a PostgreSQL primary with two streaming standbys and a
MariaDB primary with a GTID replica (``tests/integration/_replicated.py`` drives
both through one handle): token reads are never stale while replicas pause,
stop and restart; caught-up replicas serve token reads (sync and asyncio), a
read that races them goes to the primary only for a late replica, and with
replay paused reads without a token are stale; every write statement runs on the primary
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

import attrs
import pytest
from sqlalchemy import text

from commercekit.errors import UnavailableError
from commercekit.metrics import InMemoryMetrics
from commercekit.repository import (
    ConsistencyToken,
    Database,
    DatabaseUnavailableError,
    ReplicatedTopology,
    Repository,
)
from tests.integration._histories import (
    SETTINGS,
    Item,
    M,
    Served,
    reads,
    replicated_database,
    run_async_histories,
    run_histories,
    served,
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


LATE_REPLICA = {"token_timeout", "token_unreplayed"}
"""The fallbacks of a token read that a running replica had not replayed in time (docs)."""


def test_replicas_serve_token_reads_when_caught_up_and_naive_reads_are_stale(
    replicated: Replicated,
) -> None:
    """Token reads are never stale; a replica that has the write serves its token read.

    How soon a replica applies a write depends on the machine's load (past the
    50 ms token wait on a busy one, and a timed-out wait keeps token reads off
    that replica until a probe finds it caught up or ``stall_backoff_s`` ends),
    so the share of replica reads is measured where it is determined: over reads
    made once every replica has applied the write. Reads that race the replicas
    are never stale, and each one the primary served has a reason of a late
    replica. With replay paused, a read without a token is certainly stale.
    """
    db, metrics, servers = replicated
    time.sleep(SETTINGS["policy"].stall_backoff_s)
    db.probe()  # an earlier wait that timed out no longer keeps token reads off a replica
    since = metrics.snapshot()
    caught_up = run_histories(
        db, count=120, with_tokens=True, base_key=10_000, seed=11,
        before_read=servers.wait_caught_up,
    )  # fmt: skip
    on_caught_up = served(metrics, since)
    since = metrics.snapshot()
    racing = run_histories(db, count=600, with_tokens=True, base_key=20_000, seed=13)
    on_racing = served(metrics, since)
    # The asyncio twin (psycopg, asyncmy) on the same replicas: 8 tasks on one loop.
    urls = (servers.primary_url, servers.replica_urls)
    async_caught_up, async_metrics = run_async_histories(
        *urls, count=48, with_tokens=True, base_key=30_000, seed=17,
        before_read=servers.wait_caught_up,
    )  # fmt: skip
    on_async_caught_up = served(async_metrics)
    async_racing, async_metrics = run_async_histories(
        *urls, count=400, with_tokens=True, base_key=40_000, seed=19
    )
    on_async_racing = served(async_metrics)
    naive, tokened, on_paused = _reads_with_replay_paused(servers, keys=range(50_000, 50_020))
    print(
        f"\n{servers.engine} (load {os.getloadavg()[0]:.1f}): caught up {on_caught_up}; "
        f"racing {on_racing}; async caught up {on_async_caught_up}; "
        f"async racing {on_async_racing}; replay paused: naive reads stale "
        f"{naive}/20, token reads stale {tokened}/20, {on_paused}"
    )
    for tally in (caught_up, racing, async_caught_up, async_racing):
        assert tally.failures == 0, tally.errors
        assert tally.stale == 0
    assert (caught_up.histories, async_caught_up.histories) == (120, 48)
    # Caught up: the token wait returns at once, so a replica serves every token read.
    for caught, count in ((on_caught_up, 120), (on_async_caught_up, 48)):
        assert (caught.replica, caught.primary, caught.fallbacks) == (count, 0, {}), caught
        assert caught.waits_timed_out == 0, caught
    # Racing: a read on the primary is one a replica was late for, and a wait ran out first.
    for race, count in ((on_racing, 600), (on_async_racing, 400)):
        assert race.replica + race.primary == count, race
        assert set(race.fallbacks) <= LATE_REPLICA, race
        assert sum(race.fallbacks.values()) == race.primary, race
        assert race.fallbacks.get("token_timeout", 0) == race.waits_timed_out, race
        assert race.primary == 0 or race.waits_timed_out > 0, race
    # Replay paused: the replicas serve reads without a token, stale; token reads are not.
    assert naive == 20
    assert tokened == 0
    assert on_paused.primary == 20
    assert set(on_paused.fallbacks) <= LATE_REPLICA, on_paused
    assert on_paused.waits_timed_out >= 1


def _reads_with_replay_paused(servers: ReplicatedServers, keys: range) -> tuple[int, int, Served]:
    """Write *keys* while no replica replays; count stale reads without a token and with one.

    A Database of its own, probed once before the pause and not again: a probe
    would see MariaDB's stopped SQL thread and take the replica out of
    rotation, and these reads are about what a replica in rotation returns.
    Returns the stale reads without tokens, with tokens, and where the token
    reads went.
    """
    topology = ReplicatedTopology.from_urls(servers.primary_url, servers.replica_urls, pool_size=2)
    metrics = InMemoryMetrics()
    settings = dict(SETTINGS)
    settings["reads"] = attrs.evolve(SETTINGS["reads"], probe_interval_s=3600.0)
    db = Database(topology, metrics=metrics, **settings)
    repo = db.repository(Item)
    try:
        for key in keys:
            db.run(lambda uow, key=key: _put(uow.repository(Item), key, 1))
        servers.wait_caught_up()
        db.probe()
        for name in servers.replicas:
            servers.pause_replay(name)
        try:
            tokens = {
                key: db.run(lambda uow, key=key: _put(uow.repository(Item), key, 2)).token
                for key in keys
            }
            naive = sum(repo.require(key).value != 2 for key in keys)
            since = metrics.snapshot()
            tokened = sum(repo.require(key, token=tokens[key]).value != 2 for key in keys)
            on_paused = served(metrics, since)
        finally:
            for name in servers.replicas:
                servers.resume_replay(name)
        servers.wait_caught_up()
    finally:
        db.close()
        topology.dispose()
    return naive, tokened, on_paused


def _put(items: Repository[Item], key: int, value: int) -> None:
    found = items.get(key)
    if found is None:
        items.add(Item(id=key, value=value))
    else:
        items.update(found, value=value)


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
