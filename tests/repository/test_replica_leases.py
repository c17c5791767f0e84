"""Reads count as load on the replica they run on, keyed or not, and release it exactly once."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from sqlalchemy import text

from commercekit.errors import CommerceKitError
from commercekit.metrics import InMemoryMetrics
from commercekit.repository import ReadSettings, Role, UnitOfWork
from commercekit.repository._runtime._replicas import ReplicaSet

from .fakes import FakeClock
from .models import Customer
from .test_database import Group, make_group, write

IN_FLIGHT = "commercekit_balancer_in_flight"
REPLICAS = ("r1", "r2")


def in_flight(g: Group) -> dict[str, float]:
    """The replicas' leases as the balancer's metrics report them."""
    return {
        name: g.metrics.value(IN_FLIGHT, balancer="repository:main", node=name) for name in REPLICAS
    }


IDLE = dict.fromkeys(REPLICAS, 0.0)


def only(node: str) -> dict[str, float]:
    return {name: 1.0 if name == node else 0.0 for name in REPLICAS}


@pytest.fixture
def group(tmp_path: Path) -> Iterator[Group]:
    g = make_group(tmp_path)
    write(g, 1)
    g.replicate()
    yield g
    g.db.close()
    g.topology.dispose()


def test_keyed_order_leases_the_preferred_replica_when_it_is_in_service() -> None:
    metrics = InMemoryMetrics()
    replicas = ReplicaSet(
        "main",
        {"r1": 1.0, "r2": 1.0, "r3": 1.0},
        outlier_detection=ReadSettings().outlier_detection(),
        metrics=metrics,
        clock=FakeClock(),
    )
    order, lease = replicas.order("session-1")
    assert lease is not None
    assert lease.node == order[0]
    assert metrics.value(IN_FLIGHT, balancer="repository:main", node=order[0]) == 1
    lease.release()
    assert metrics.value(IN_FLIGHT, balancer="repository:main", node=order[0]) == 0
    replicas.record_unreachable(order[0])
    assert replicas.order("session-1") == (order, None)  # out of service: nothing to lease


def test_a_keyed_unit_of_work_is_in_flight_on_its_replica_until_it_ends(group: Group) -> None:
    nodes = set()
    for i in range(20):
        with group.db.unit_of_work(read_only=True, key=f"session-{i}") as uow:
            uow.repository(Customer).require(1)
            assert uow.role is Role.REPLICA
            assert in_flight(group) == only(uow.node)
        assert in_flight(group) == IDLE
        nodes.add(uow.node)
    assert nodes == set(REPLICAS)  # both replicas were leased along the way


def fail_inside(g: Group, key: str, fail: Callable[[UnitOfWork], object]) -> None:
    """Run *fail*, which raises, in a keyed read-only unit of work that holds its lease."""
    with g.db.unit_of_work(read_only=True, key=key) as uow:
        assert in_flight(g) == only(uow.node)
        fail(uow)
    raise AssertionError("the unit of work did not raise")


def boom(_uow: UnitOfWork) -> None:
    raise RuntimeError("the caller's code failed")


def bad_sql(uow: UnitOfWork) -> None:
    uow.session.execute(text("SELECT * FROM no_such_table"))


def test_the_lease_is_released_when_the_unit_of_work_raises(group: Group) -> None:
    with pytest.raises(RuntimeError, match="the caller's code failed"):
        fail_inside(group, "k", boom)
    assert in_flight(group) == IDLE
    with pytest.raises(CommerceKitError, match="no_such_table"):
        fail_inside(group, "k", bad_sql)  # a database error, translated on the way out
    assert in_flight(group) == IDLE


def test_the_lease_is_released_once_when_closed_by_hand(group: Group) -> None:
    uow = group.db.unit_of_work(read_only=True, key="k").begin()
    assert in_flight(group) == only(uow.node)
    uow.commit()
    uow.close()
    uow.close()  # a second close releases nothing more
    assert in_flight(group) == IDLE
    with group.db.unit_of_work(read_only=True, key="k") as other:
        assert in_flight(group) == only(other.node)  # not pushed negative by the double close
    assert in_flight(group) == IDLE


def test_the_lease_follows_a_keyed_read_that_fails_over(tmp_path: Path, group: Group) -> None:
    with group.db.unit_of_work(read_only=True, key="session-7f3a") as uow:
        preferred = uow.node
    other = "r2" if preferred == "r1" else "r1"
    engine = next(r.engine for r in group.topology.replicas if r.name == preferred)
    engine.dispose()
    (tmp_path / f"{preferred}.db").unlink()
    (tmp_path / f"{preferred}.db").mkdir()  # the preferred replica cannot open its file now
    with group.db.unit_of_work(read_only=True, key="session-7f3a") as uow:
        assert uow.node == other  # it failed over
        uow.repository(Customer).require(1)
        assert in_flight(group) == only(other)  # the lease moved with it
    assert in_flight(group) == IDLE
    with pytest.raises(RuntimeError):
        fail_inside(group, "session-7f3a", boom)  # on the other one: the preferred is ejected
    assert in_flight(group) == IDLE


def test_a_read_that_falls_back_to_the_primary_holds_no_replica_lease(group: Group) -> None:
    token = write(group, 2)
    group.positions.replayed = dict.fromkeys(REPLICAS, 0)  # neither replica has replayed it
    with group.db.unit_of_work(read_only=True, key="k", token=token) as uow:
        assert uow.role is Role.PRIMARY
        assert in_flight(group) == IDLE
    assert in_flight(group) == IDLE


def test_reads_outside_a_unit_of_work_release_their_leases(group: Group) -> None:
    for _ in range(20):
        assert group.db.repository(Customer).require(1).id == 1
    with pytest.raises(CommerceKitError):
        group.db.repository(Customer).require(99)
    assert group.reads("replica") == 21
    assert in_flight(group) == IDLE
