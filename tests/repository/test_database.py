"""The read executor over a SQLite stand-in for a replicated group (no server needed)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import attrs
import pytest
from sqlalchemy import Engine, text

from commercekit.errors import DatabaseUnavailableError, InvalidInputError, RepositoryError
from commercekit.metrics import InMemoryMetrics
from commercekit.repository import (
    Database,
    Node,
    ReadSettings,
    ReplicatedTopology,
    Role,
    RoutingPolicy,
    SerializationFailureError,
    UnitOfWork,
    sqlite_engine,
)

from .fakes import FakeClock, FakePositions, Outage, dead_path, replicate
from .models import Base, Customer, customer

M = "commercekit_repository_"


@attrs.define
class Group:
    db: Database
    metrics: InMemoryMetrics
    positions: FakePositions
    clock: FakeClock
    topology: ReplicatedTopology

    def reads(self, role: str) -> float:
        return self.metrics.value(f"{M}reads_total", role=role)

    def statements(self, node: str) -> float:
        role = "primary" if node == "primary" else "replica"
        return self.metrics.value(f"{M}statements_total", group="main", node=node, role=role)

    def replicate(self) -> None:
        for r in self.topology.replicas:
            if r.name != "dead":
                replicate(self.topology.primary.engine, r.engine)


def make_group(
    tmp_path: Path,
    *,
    dead: bool = False,
    policy: RoutingPolicy | None = None,
    eject_after_failures: int = 1,
) -> Group:
    primary = sqlite_engine(tmp_path / "primary.db")
    replicas = [Node(n, sqlite_engine(tmp_path / f"{n}.db")) for n in ("r1", "r2")]
    if dead:
        replicas[1] = Node("dead", sqlite_engine(dead_path(tmp_path)))
    for engine in (primary, *(r.engine for r in replicas if r.name != "dead")):
        Base.metadata.create_all(engine)
    positions = FakePositions({str(r.engine.url.database): r.name for r in replicas})
    metrics = InMemoryMetrics()
    clock = FakeClock()
    topology = ReplicatedTopology(Node("primary", primary), replicas)
    db = Database(
        topology,
        metrics=metrics,
        policy=policy,
        reads=ReadSettings(
            token_wait_s=0.0,
            probe_interval_s=5.0,
            eject_s=2.0,
            eject_after_failures=eject_after_failures,
            background_probes=False,
        ),
        position_source=positions,
        clock=clock,
        sleep=lambda _s: None,
    )
    return Group(db, metrics, positions, clock, topology)


@pytest.fixture
def group(tmp_path: Path) -> Iterator[Group]:
    g = make_group(tmp_path)
    yield g
    g.db.close()
    g.topology.dispose()


def write(g: Group, i: int, **kw: object) -> str:
    with g.db.unit_of_work() as uow:
        uow.repository(Customer).add(customer(i, **kw))
    assert uow.token is not None
    return uow.token


def test_reads_without_a_token_spread_over_replicas(group: Group) -> None:
    write(group, 1)
    group.replicate()
    for _ in range(60):
        assert group.db.repository(Customer).require(1).id == 1
    assert group.reads("replica") == 60
    assert group.reads("primary") == 0
    # Least loaded of two drawn at random: sequential reads spread at random.
    assert group.statements("r1") >= 12
    assert group.statements("r2") >= 12


def test_an_affinity_key_keeps_a_read_only_unit_of_work_on_its_replica(group: Group) -> None:
    write(group, 1)
    group.replicate()
    nodes = set()
    for _ in range(10):
        with group.db.unit_of_work(read_only=True, key="session-7f3a") as uow:
            uow.repository(Customer).require(1)
        nodes.add(uow.node)
    assert len(nodes) == 1
    spread = set()
    for i in range(40):
        with group.db.unit_of_work(read_only=True, key=f"session-{i}") as uow:
            spread.add(uow.node)
    assert spread == {"r1", "r2"}


def test_writes_never_reach_a_replica(group: Group) -> None:
    for i in range(1, 6):
        write(group, i)
        with group.db.unit_of_work() as uow:
            uow.repository(Customer).update(i, name="x")
    assert group.statements("r1") + group.statements("r2") <= 2  # only the first probe
    assert group.statements("primary") >= 20


def test_a_token_is_honoured_and_falls_back_to_the_primary(group: Group) -> None:
    token = write(group, 1)
    group.replicate()
    group.positions.replayed = {"r1": 0, "r2": 0}  # copied, but "not replayed" as far as LSNs go
    found = group.db.repository(Customer).get(1, token=token)
    assert found is not None
    assert group.reads("primary") == 1
    assert group.metrics.value(f"{M}fallbacks_total", reason="token_timeout") == 1
    assert group.metrics.value(f"{M}token_waits_total", outcome="timeout") == 1
    group.positions.replayed = {"r1": 1, "r2": 1}
    group.clock.now += 3  # past the stall backoff (1 s), before the next probe (5 s)
    assert group.db.repository(Customer).get(1, token=token) is not None
    assert group.reads("replica") == 1
    assert group.metrics.value(f"{M}token_waits_total", outcome="reached") == 1
    # the replica is now known to have the position: no more waits for it
    waits = len(group.positions.waits)
    group.db.repository(Customer).get(1, token=token)
    assert len(group.positions.waits) == waits


def test_a_replica_the_probe_cannot_reach_is_marked_down_until_a_probe_reaches_it(
    tmp_path: Path,
) -> None:
    g = make_group(tmp_path, dead=True)
    write(g, 1)
    g.replicate()
    for _ in range(6):
        assert g.db.repository(Customer).require(1).id == 1
    assert g.metrics.value(f"{M}replica_ejections_total", group="main", node="dead") == 1
    assert g.reads("replica") == 6  # all served by r1
    assert g.statements("dead") == 0  # the balancer never picked it
    g.clock.now += 100  # probed again: still unreachable, still down (not counted twice)
    g.db.repository(Customer).require(1)
    assert g.metrics.value(f"{M}replica_ejections_total", group="main", node="dead") == 1
    assert g.metrics.value(
        "commercekit_balancer_health_transitions_total",
        balancer="repository:main", node="dead", to="down",
    ) == 1  # fmt: skip
    dead_path(tmp_path).parent.mkdir()  # the node comes back
    Base.metadata.create_all(g.topology.replicas[1].engine)
    replicate(g.topology.primary.engine, g.topology.replicas[1].engine)
    g.clock.now += 100
    for _ in range(40):
        g.db.repository(Customer).require(1)
    assert g.statements("dead") > 0  # probed back in


def test_a_replica_failing_reads_is_ejected_for_longer_each_time(tmp_path: Path) -> None:
    g = make_group(tmp_path)  # eject_s=2.0, probes every 5 s
    write(g, 1)
    g.replicate()
    g.db.repository(Customer).require(1)  # the first probe: both replicas fit
    r2 = g.topology.replicas[1].engine
    r2.dispose()
    (tmp_path / "r2.db").unlink()
    (tmp_path / "r2.db").mkdir()  # now r2 cannot open its file
    ejections = lambda: g.metrics.value(  # noqa: E731
        f"{M}replica_ejections_total", group="main", node="r2"
    )
    for _ in range(20):
        assert g.db.repository(Customer).require(1).id == 1
    assert ejections() == 1  # one failed read ejected it; that read moved to r1
    g.clock.now += 2.5  # the first ejection (2 s) is over: a read tries r2 again
    for _ in range(20):
        g.db.repository(Customer).require(1)
    assert ejections() == 2
    g.clock.now += 2.5  # the second ejection lasts 4 s: r2 is still out
    for _ in range(20):
        g.db.repository(Customer).require(1)
    assert ejections() == 2
    assert g.reads("primary") == 0  # every read served by a replica


def test_with_every_replica_gone_reads_go_to_the_primary(tmp_path: Path) -> None:
    primary = sqlite_engine(tmp_path / "p.db")
    Base.metadata.create_all(primary)
    dead = [Node(f"d{i}", sqlite_engine(tmp_path / f"gone{i}" / "x.db")) for i in (1, 2)]
    metrics = InMemoryMetrics()
    db = Database(ReplicatedTopology(Node("primary", primary), dead), metrics=metrics)
    with db.unit_of_work() as uow:
        uow.repository(Customer).add(customer(1))
    for _ in range(3):
        assert db.repository(Customer).require(1).id == 1
    assert metrics.value(f"{M}reads_total", role="primary") == 3


def test_lagging_replicas_leave_the_rotation(tmp_path: Path) -> None:
    g = make_group(tmp_path, policy=RoutingPolicy(max_lag_s=1.0, min_replicas=0))
    write(g, 1)
    g.replicate()
    g.positions.lag = {"r1": 30.0, "r2": 30.0}
    g.db.probe()
    g.db.repository(Customer).require(1)
    assert g.reads("primary") == 1
    assert g.metrics.value(f"{M}fallbacks_total", reason="no_replica") == 1
    assert g.metrics.value(f"{M}replica_lag_seconds", group="main", node="r1") == 30.0


def test_min_replicas_keeps_one_slow_replica_serving(tmp_path: Path) -> None:
    policy = RoutingPolicy(max_lag_s=1.0, tolerable_lag_s=60.0, min_replicas=1)
    g = make_group(tmp_path, policy=policy)
    write(g, 1)
    g.replicate()
    g.positions.lag = {"r1": 30.0, "r2": 20.0}
    g.db.probe()
    before = g.statements("r1")
    for _ in range(3):
        g.db.repository(Customer).require(1)
    assert g.reads("replica") == 3
    assert g.statements("r1") == before  # r2 lags less, so it is the one kept


def test_read_only_unit_of_work_stays_on_one_replica(group: Group) -> None:
    write(group, 1)
    write(group, 2)
    group.replicate()
    before = {n: group.statements(n) for n in ("primary", "r1", "r2")}
    with group.db.unit_of_work(read_only=True) as uow:
        assert uow.role is Role.REPLICA
        repo = uow.repository(Customer)
        for _ in range(5):
            repo.get_many([1, 2])
            repo.count()
        node = uow.node
    other = "r2" if node == "r1" else "r1"
    assert group.statements(node) - before[node] >= 10
    assert group.statements(other) - before[other] == 0
    assert group.statements("primary") == before["primary"]


def test_read_only_work_is_retried_and_writes_only_when_marked(group: Group) -> None:
    calls = {"n": 0}

    def flaky(uow: object) -> int:
        calls["n"] += 1
        if calls["n"] == 1:
            raise SerializationFailureError("deadlock (simulated)")
        return calls["n"]

    assert group.db.run(flaky, read_only=True).value == 2
    calls["n"] = 0
    with pytest.raises(SerializationFailureError):
        group.db.run(flaky)
    calls["n"] = 0
    assert group.db.run(flaky, retry=True).value == 2
    assert group.metrics.value(f"{M}retries_total", work="unit_of_work") == 2


def test_run_returns_a_token(group: Group) -> None:
    done = group.db.run(lambda uow: uow.repository(Customer).add(customer(9)).id)
    assert done.value == 9
    assert done.token == "ck1;main=lsn:0/1"
    follow = group.db.run(
        lambda uow: uow.repository(Customer).count(), read_only=True, token=done.token
    )
    assert follow.token == done.token


def test_bad_token_is_a_typed_error(group: Group) -> None:
    with pytest.raises(InvalidInputError):
        group.db.repository(Customer).get(1, token="garbage")


@pytest.mark.parametrize("ejects", [1, 3], ids=["ejected", "not-yet-ejected"])
def test_a_read_only_unit_of_work_fails_over_to_another_replica(
    tmp_path: Path, ejects: int
) -> None:
    g = make_group(tmp_path, eject_after_failures=ejects)
    write(g, 1)
    g.replicate()
    g.db.probe()  # both replicas in rotation; the next probe is 5 s away
    with g.db.unit_of_work(read_only=True, key="session-1") as uow:
        uow.repository(Customer).require(1)
    lost, other = uow.node, ("r2" if uow.node == "r1" else "r1")
    engine = next(r.engine for r in g.topology.replicas if r.name == lost)
    outage = Outage(engine)
    outage.on = True
    # The key keeps picking the lost replica while it is in service: the first
    # statement fails there, and the fail-over must still go elsewhere.
    with g.db.unit_of_work(read_only=True, key="session-1") as uow:
        repo = uow.repository(Customer)
        assert repo.require(1).id == 1
        assert uow.node == other
        # The repository taken before the fail-over runs on the new node, and says so.
        with pytest.raises(RepositoryError, match=f"database error on {other}:"):
            repo.count(text("no_such_column = 1"))
        assert uow.repository(Customer).count() == 1
    assert outage.failed == 1
    assert g.metrics.value(f"{M}retries_total", work="read") == 1
    # Whole read-only work run again after a lost replica goes elsewhere too.
    calls: list[str] = []

    def work(uow: UnitOfWork) -> int:
        calls.append(uow.node)
        if len(calls) == 1:
            uow.repository(Customer).require(1)  # served: from here on no fail-over
            outage.on = True
            uow.repository(Customer).count()
        return uow.repository(Customer).require(1).id

    outage.on = False
    g.clock.now += 10  # any ejection over; the probe finds both replicas fit again
    g.db.probe()
    assert g.db.run(work, read_only=True, key="session-1").value == 1
    assert calls == [lost, other]


def _replica_engine(g: Group, name: str) -> Engine:
    return next(r.engine for r in g.topology.replicas if r.name == name)


def _keys_by_replica(g: Group) -> dict[str, str]:
    """An affinity key that keeps a read-only unit of work on each replica."""
    keys: dict[str, str] = {}
    for i in range(200):
        with g.db.unit_of_work(read_only=True, key=f"k{i}") as uow:
            keys.setdefault(uow.node, f"k{i}")
        if len(keys) == 2:
            return keys
    raise AssertionError(f"the keys reached only {keys}")


def _ejected(db: Database, group: str, node: str) -> bool:
    return db._groups[group].replica_set.ejected(node)


@pytest.mark.parametrize("inner", ["replica", "primary", "engine"])
def test_a_loss_in_nested_work_is_not_the_outer_unit_of_work_s_loss(
    tmp_path: Path, inner: str
) -> None:
    """Only a loss of a unit of work's own connection ejects its replica.

    A DatabaseUnavailableError (or a driver error) that passes through an outer
    read-only unit of work came from somewhere else: a nested unit of work on
    the other replica or on the primary, or an engine used directly.
    """
    g = make_group(tmp_path, eject_after_failures=1)
    write(g, 1)
    g.replicate()
    g.db.probe()
    keys = _keys_by_replica(g)
    lost = "primary" if inner == "primary" else "r2"
    outage = Outage(g.topology.primary.engine if lost == "primary" else _replica_engine(g, "r2"))
    outer = g.db.unit_of_work(read_only=True, key=keys["r1"])

    def nested_work() -> None:
        with outer:
            outer.repository(Customer).require(1)
            if inner == "engine":
                with _replica_engine(g, "r2").connect() as conn:
                    outage.on = True
                    conn.execute(text("select count(*) from customers"))
            key = keys["r2"] if inner == "replica" else None
            with g.db.unit_of_work(read_only=inner == "replica", key=key) as nested:
                nested.repository(Customer).require(1)  # served: no fail-over from here
                outage.on = True
                nested.repository(Customer).count()

    with pytest.raises(DatabaseUnavailableError):
        nested_work()
    assert outer.node == "r1"
    assert not _ejected(g.db, "main", "r1")
    assert "r1" not in outer._avoid
    assert _ejected(g.db, "main", "r2") is (inner == "replica")
    assert g.metrics.value(f"{M}replica_ejections_total", group="main", node="r1") == 0


def test_a_database_without_replicas_reads_from_the_primary_and_retries_there(
    tmp_path: Path,
) -> None:
    """The routed reads of a single-node group: counted, retried, translated, connection back."""
    primary = sqlite_engine(tmp_path / "p.db")
    Base.metadata.create_all(primary)
    metrics = InMemoryMetrics()
    db = Database(ReplicatedTopology(Node("primary", primary)), metrics=metrics)
    with db.unit_of_work() as uow:
        uow.repository(Customer).add(customer(1))
    outage = Outage(primary)
    assert db.repository(Customer).require(1).id == 1
    assert [c.id for c in db.repository(Customer).find()] == [1]
    assert metrics.value(f"{M}reads_total", role="primary") == 2
    assert metrics.value(f"{M}fallbacks_total", reason="no_replica") == 2
    outage.on = True  # every attempt loses its connection: retried, then raised translated
    with pytest.raises(DatabaseUnavailableError, match="primary"):
        db.repository(Customer).get(1)
    assert outage.failed == 3  # RetryPolicy's 3 attempts
    assert metrics.value(f"{M}retries_total", work="read") == 2
    assert metrics.value(f"{M}reads_total", role="primary") == 2
    assert primary.pool.checkedout() == 0  # type: ignore[attr-defined]
    outage.on = False
    assert db.repository(Customer).get(1) is not None
    assert metrics.value(f"{M}reads_total", role="primary") == 3
