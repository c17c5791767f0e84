"""pick_n (replica sets) and acquire (bounded loads, leases) on both keyed placements."""

from __future__ import annotations

import math
import random
from collections.abc import Callable

import pytest

from commercekit.balancer import KetamaBalancer, Lease, MaglevBalancer, OutlierDetection
from commercekit.balancer._keyed import KeyedPool
from commercekit.errors import InvalidInputError

from .support import keys, names, small_capped

Factory = Callable[..., KeyedPool]
PLACEMENTS = [
    pytest.param(MaglevBalancer, id="maglev"),
    pytest.param(KetamaBalancer, id="ketama"),
    pytest.param(small_capped, id="capped"),
]


@pytest.mark.parametrize("make", PLACEMENTS)
def test_pick_n_gives_distinct_nodes_in_preference_order(make: Factory) -> None:
    balancer = make(names(10), panic_threshold=0)
    for key in keys(300):
        three = balancer.pick_n(key, 3)
        assert len(set(three)) == 3
        assert three[0] == balancer.pick(key)
        assert balancer.pick_n(key, 10)[:3] == three
        assert sorted(balancer.pick_n(key, 10)) == sorted(names(10))


@pytest.mark.parametrize("make", PLACEMENTS)
def test_pick_n_skips_nodes_out_of_service_and_keeps_the_order(make: Factory) -> None:
    balancer = make(names(6), panic_threshold=0)
    full = {k: balancer.pick_n(k, 6) for k in keys(200)}
    balancer.mark_down("node-2")
    for key, order in full.items():
        assert balancer.pick_n(key, 5) == [n for n in order if n != "node-2"]
        assert balancer.pick_n(key, 6) == [n for n in order if n != "node-2"]  # fewer come back


@pytest.mark.parametrize("make", PLACEMENTS)
def test_pick_n_validates_n(make: Factory) -> None:
    balancer = make(names(3))
    for bad in (0, -1, 1.5, True):
        with pytest.raises(InvalidInputError, match="at least 1"):
            balancer.pick_n("k", bad)  # type: ignore[arg-type]
    with pytest.raises(InvalidInputError, match="asked for 4 distinct nodes"):
        balancer.pick_n("k", 4)


@pytest.mark.parametrize("make", PLACEMENTS)
def test_a_lease_counts_in_flight_and_releases_once(make: Factory) -> None:
    balancer = make(names(4))
    with balancer.acquire("customer-1") as lease:
        assert isinstance(lease, Lease)
        assert lease.node == balancer.pick("customer-1")
        assert balancer.status(lease.node).in_flight == 1
        assert balancer.in_flight == 1
        assert "held" in repr(lease)
    assert lease.released
    lease.release()
    assert balancer.status(lease.node).in_flight == 0
    assert balancer.in_flight == 0
    with pytest.raises(RuntimeError), balancer.acquire("customer-1") as failing:
        raise RuntimeError("boom")
    assert failing.released
    assert balancer.in_flight == 0


@pytest.mark.parametrize("make", PLACEMENTS)
@pytest.mark.parametrize("factor", [1.1, 1.25, 2.0])
def test_bounded_load_caps_every_node(make: Factory, factor: float) -> None:
    # A skewed load: a few hot keys carry most requests. Every lease goes to a node
    # whose in-flight count is under ceil(c * mean), counting the new request.
    balancer = make(names(8), balance_factor=factor)
    assert balancer.balance_factor == factor
    rng = random.Random(3)
    hot = keys(5, "hot")
    held: list[Lease] = []
    for _ in range(4000):
        if held and rng.random() < 0.45:
            held.pop(rng.randrange(len(held))).release()
            continue
        key = rng.choice(hot) if rng.random() < 0.8 else f"cold-{rng.randrange(10**6)}"
        cap = math.ceil(factor * (balancer.in_flight + 1) / 8)
        lease = balancer.acquire(key)
        assert balancer.status(lease.node).in_flight <= cap
        held.append(lease)
    for lease in held:
        lease.release()
    assert balancer.in_flight == 0


@pytest.mark.parametrize("make", PLACEMENTS)
def test_bounded_load_keeps_affinity_while_under_the_cap(make: Factory) -> None:
    balancer = make(names(8))
    leases = [balancer.acquire(k) for k in keys(400)]
    kept = sum(
        1 for lease, key in zip(leases, keys(400), strict=True) if lease.node == balancer.pick(key)
    )
    assert kept / 400 > 0.85


def test_lease_reports_feed_outlier_detection_even_after_removal() -> None:
    detection = OutlierDetection(consecutive_failures=2)
    balancer = MaglevBalancer(names(5), outlier_detection=detection)
    lease = balancer.acquire("k")
    lease.report_failure()
    lease.report_success()
    lease.report_failure()
    assert balancer.status(lease.node).consecutive_failures == 1
    balancer.remove(lease.node)
    lease.report_failure()  # the node is gone: harmless
    lease.release()
    assert balancer.in_flight == 0
