"""Round robin and power-of-two-choices on the same health machinery."""

from __future__ import annotations

import random
from collections import Counter

import pytest

from commercekit.balancer import LeastLoadedBalancer, RoundRobinBalancer, SlowStart
from commercekit.balancer._policies import weighted_schedule
from commercekit.balancer._pool._member import Member
from commercekit.errors import UnavailableError

from .support import FakeClock, names


def test_round_robin_cycles_in_order() -> None:
    balancer = RoundRobinBalancer(["a", "b", "c"])
    assert [balancer.pick() for _ in range(7)] == ["a", "b", "c", "a", "b", "c", "a"]


def test_weighted_round_robin_is_smooth_and_proportional() -> None:
    balancer = RoundRobinBalancer({"a": 5, "b": 1, "c": 1})
    picks = [balancer.pick() for _ in range(700)]
    assert Counter(picks) == {"a": 500, "b": 100, "c": 100}
    # Smooth: "a" never runs more than a few times in a row.
    longest = max(len(run) for run in "".join(picks).replace("b", " ").replace("c", " ").split())
    assert longest <= 5


def test_float_weight_schedule_is_within_one_percent() -> None:
    rng = random.Random(5)
    members = [Member(n, rng.uniform(0.5, 3.0), None) for n in names(10)]
    counts = Counter(m.name for m in weighted_schedule(members, [m.weight for m in members]))
    total_weight = sum(m.weight for m in members)
    length = sum(counts.values())
    for m in members:
        assert counts[m.name] / length == pytest.approx(m.weight / total_weight, rel=0.01)


def test_round_robin_skips_nodes_out_of_service() -> None:
    balancer = RoundRobinBalancer(names(4), panic_threshold=0)
    balancer.mark_down("node-1")
    assert Counter(balancer.pick() for _ in range(300)) == {
        "node-0": 100,
        "node-2": 100,
        "node-3": 100,
    }
    for name in ("node-0", "node-2", "node-3"):
        balancer.mark_down(name)
    with pytest.raises(UnavailableError, match="none of the 4"):
        balancer.pick()
    with pytest.raises(UnavailableError, match="no nodes"):
        RoundRobinBalancer().pick()


def test_round_robin_panics_like_the_keyed_ones() -> None:
    balancer = RoundRobinBalancer(names(4))
    for name in names(3):
        balancer.mark_down(name)
    assert balancer.panicking
    assert {balancer.pick() for _ in range(8)} == set(names(4))


def test_round_robin_slow_start_ramps_a_new_node() -> None:
    clock = FakeClock()
    balancer = RoundRobinBalancer(
        names(3), clock=clock, slow_start=SlowStart(window_s=10, initial_share=0.0)
    )
    balancer.add("new")
    assert "new" not in {balancer.pick() for _ in range(400)}
    clock.advance(5)
    half = Counter(balancer.pick() for _ in range(4000))["new"] / 4000
    assert 0.08 < half < 0.17  # about half of its quarter
    clock.advance(5)
    assert Counter(balancer.pick() for _ in range(400))["new"] == 100


def test_least_loaded_prefers_the_node_with_fewer_leases() -> None:
    balancer = LeastLoadedBalancer(names(4), rng=random.Random(1))
    leases = [balancer.acquire() for _ in range(400)]
    loads = [s.in_flight for s in balancer.statuses()]
    assert sum(loads) == 400
    assert max(loads) - min(loads) <= 3  # power of two choices keeps them level
    for lease in leases:
        lease.release()
    assert balancer.in_flight == 0


def test_least_loaded_weights_and_health() -> None:
    balancer = LeastLoadedBalancer({"big": 3.0, "small": 1.0, "down": 1.0}, rng=random.Random(2))
    balancer.mark_down("down")
    leases = [balancer.acquire() for _ in range(400)]
    loads = {s.name: s.in_flight for s in balancer.statuses()}
    assert loads["down"] == 0
    assert 2.5 < loads["big"] / loads["small"] < 3.5
    assert balancer.pick() in {"big", "small"}
    for lease in leases:
        lease.release()


def test_least_loaded_errors() -> None:
    with pytest.raises(UnavailableError, match="no nodes"):
        LeastLoadedBalancer().acquire()
    balancer = LeastLoadedBalancer(["a"], panic_threshold=0)
    balancer.mark_down("a")
    with pytest.raises(UnavailableError):
        balancer.pick()
