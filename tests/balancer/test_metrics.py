"""What the balancer reports through the metrics hook."""

from __future__ import annotations

import pytest

from commercekit.balancer import (
    KetamaBalancer,
    LeastLoadedBalancer,
    MaglevBalancer,
    OutlierDetection,
    RoundRobinBalancer,
)
from commercekit.metrics import InMemoryMetrics

from .support import FakeClock, keys, names

P = "commercekit_balancer_"


@pytest.mark.parametrize("make", [MaglevBalancer, KetamaBalancer])
def test_picks_reroutes_and_node_gauges(make: type[MaglevBalancer]) -> None:
    metrics = InMemoryMetrics()
    balancer = make(names(4), name="web", metrics=metrics, panic_threshold=0)
    for key in keys(100):
        balancer.pick(key)
    assert metrics.value(P + "picks_total", balancer="web") == 100
    assert metrics.value(P + "nodes", balancer="web") == 4
    assert metrics.value(P + "healthy_nodes", balancer="web") == 4
    balancer.mark_down("node-1")
    rerouted = sum(1 for k in keys(100) if balancer.pick_n(k, 4)[0] != balancer.pick(k))
    assert rerouted == 0
    assert metrics.value(P + "reroutes_total", balancer="web") > 0
    assert metrics.value(P + "healthy_nodes", balancer="web") == 3
    assert (
        metrics.value(P + "health_transitions_total", balancer="web", node="node-1", to="down") == 1
    )
    balancer.mark_up("node-1")
    assert (
        metrics.value(P + "health_transitions_total", balancer="web", node="node-1", to="up") == 1
    )
    assert metrics.distribution(P + "rebuild_seconds", balancer="web").count == 1
    balancer.add("node-9")
    assert metrics.value(P + "nodes", balancer="web") == 5
    assert metrics.distribution(P + "rebuild_seconds", balancer="web").count == 2


def test_ejections_and_panic() -> None:
    metrics = InMemoryMetrics()
    detection = OutlierDetection(consecutive_failures=1, max_ejected_fraction=1.0)
    balancer = MaglevBalancer(
        names(3), name="db", metrics=metrics, outlier_detection=detection, clock=FakeClock()
    )
    balancer.report_failure("node-0")
    assert metrics.value(P + "ejections_total", balancer="db", node="node-0") == 1
    assert (
        metrics.value(P + "health_transitions_total", balancer="db", node="node-0", to="ejected")
        == 1
    )
    assert metrics.value(P + "panic", balancer="db") == 0
    balancer.report_failure("node-1")
    assert metrics.value(P + "panic", balancer="db") == 1


def test_in_flight_and_spills() -> None:
    metrics = InMemoryMetrics()
    balancer = MaglevBalancer(names(2), name="api", metrics=metrics, balance_factor=1.1)
    leases = [balancer.acquire("same-key") for _ in range(6)]
    first, second = (
        metrics.value(P + "in_flight", balancer="api", node=n) for n in ("node-0", "node-1")
    )
    assert first + second == 6
    assert abs(first - second) <= 2  # one hot key, spread by the cap
    assert metrics.value(P + "bounded_spills_total", balancer="api") >= 2
    assert metrics.value(P + "picks_total", balancer="api") == 6
    for lease in leases:
        lease.release()
    assert metrics.value(P + "in_flight", balancer="api", node="node-0") == 0


@pytest.mark.parametrize("make", [RoundRobinBalancer, LeastLoadedBalancer])
def test_non_keyed_balancers_count_picks(make: type[RoundRobinBalancer]) -> None:
    metrics = InMemoryMetrics()
    balancer = make(names(3), name="rr", metrics=metrics)
    for _ in range(10):
        balancer.pick()
    with balancer.acquire():
        assert metrics.total(P + "in_flight") == 1
    assert metrics.value(P + "picks_total", balancer="rr") == 11  # ten picks and a lease


def test_null_metrics_keep_the_bare_pick() -> None:
    # With the default NullMetrics, pick is the class's own method: no counting wrapper.
    balancer = MaglevBalancer(names(2))
    assert balancer.pick.__func__ is MaglevBalancer.pick  # type: ignore[attr-defined]
    counted = MaglevBalancer(names(2), metrics=InMemoryMetrics())
    assert counted.pick.__func__ is not MaglevBalancer.pick  # type: ignore[attr-defined]
    assert counted.pick("k") == balancer.pick("k")
