"""The replica set over commercekit.balancer: ejection, the lag overlay, affinity (no I/O)."""

from __future__ import annotations

from collections import Counter

from commercekit.balancer import NodeHealth
from commercekit.metrics import NullMetrics
from commercekit.repository import ReadSettings, ReplicaStatus, RoutingPolicy
from commercekit.repository._runtime._replicas import ReplicaSet

from .fakes import FakeClock


def make(clock: FakeClock, names: tuple[str, ...] = ("r1", "r2", "r3")) -> ReplicaSet:
    settings = ReadSettings(eject_s=2.0, max_eject_s=5.0)
    return ReplicaSet(
        "main",
        dict.fromkeys(names, 1.0),
        outlier_detection=settings.outlier_detection(),
        metrics=NullMetrics(),
        clock=clock,
    )


def test_failures_eject_for_growing_times_and_every_replica_may_go() -> None:
    clock = FakeClock()
    replicas = make(clock)
    assert replicas.report_failure("r1")
    assert replicas.report_failure("r2")
    assert replicas.report_failure("r3")  # no cap: the primary takes the reads
    assert [v.available for v in replicas.views(replicas.names, clock())] == [False] * 3
    assert replicas.order(None) == (["r1", "r2", "r3"], None)  # nothing to lease
    clock.now += 2.0
    assert replicas.in_service("r1")
    assert replicas.report_failure("r1")  # fails again at once: out for 4 s this time
    clock.now += 3.0
    assert not replicas.in_service("r1")
    clock.now += 1.0
    assert replicas.in_service("r1")
    clock.now += 100.0
    assert replicas.report_failure("r1")  # long quiet: back to the base ejection
    clock.now += 5.0
    assert replicas.in_service("r1")


def test_a_success_ends_a_run_of_failures() -> None:
    clock = FakeClock()
    settings = ReadSettings(eject_after_failures=2)
    replicas = ReplicaSet(
        "main",
        {"r1": 1.0, "r2": 1.0},
        outlier_detection=settings.outlier_detection(),
        metrics=NullMetrics(),
        clock=clock,
    )
    assert not replicas.report_failure("r1")
    replicas.report_success("r1")
    assert not replicas.report_failure("r1")
    assert replicas.report_failure("r1")


def test_lag_marks_replicas_down_but_min_replicas_keep_serving() -> None:
    clock = FakeClock()
    replicas = make(clock)
    policy = RoutingPolicy(max_lag_s=1.0, tolerable_lag_s=60.0, min_replicas=1)
    for name, lag in (("r1", 30.0), ("r2", 20.0), ("r3", 0.1)):
        replicas.record_status(name, ReplicaStatus(None, lag))
    replicas.sync(policy)
    assert [replicas.in_service(n) for n in replicas.names] == [False, False, True]
    replicas.record_unreachable("r3")
    replicas.sync(policy)  # r3 gone: the least lagging tolerable one comes back
    assert [replicas.in_service(n) for n in replicas.names] == [False, True, False]
    replicas.record_status("r3", ReplicaStatus(None, 0.0))
    replicas.sync(policy)  # probed back in
    assert [replicas.in_service(n) for n in replicas.names] == [False, False, True]


def test_an_ejected_replica_waits_out_its_ejection_whatever_the_probe_says() -> None:
    clock = FakeClock()
    replicas = make(clock)
    replicas.report_failure("r1")
    replicas.record_status("r1", ReplicaStatus(None, 0.0))
    replicas.sync(RoutingPolicy())
    assert replicas.ejected("r1")
    clock.now += 2.0
    replicas.sync(RoutingPolicy())
    assert replicas.in_service("r1")


def test_reads_without_a_key_are_leased_and_spread_and_keys_stick() -> None:
    clock = FakeClock()
    replicas = make(clock)
    firsts = Counter()
    for _ in range(300):
        order, lease = replicas.order(None)
        assert lease is not None
        assert lease.node == order[0]
        assert sorted(order) == ["r1", "r2", "r3"]
        firsts[order[0]] += 1
        lease.release()
    assert min(firsts.values()) > 50
    order, lease = replicas.order("session-1")
    assert lease is not None  # a keyed read counts as load on its replica too
    assert lease.node == order[0]
    lease.release()
    assert replicas.order("session-1")[0] == order
    assert sorted(order) == ["r1", "r2", "r3"]
    held = [replicas.order(None)[1] for _ in range(30)]  # held leases steer new reads away
    assert max(Counter(h.node for h in held if h).values()) <= 12


def test_health_is_the_balancers() -> None:
    clock = FakeClock()
    replicas = make(clock, ("r1", "r2"))
    replicas.record_unreachable("r2")
    assert replicas._balancer.health("r2") is NodeHealth.DOWN
    assert [v.available for v in replicas.views(["r2", "r1"], clock())] == [False, True]
