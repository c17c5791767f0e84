"""Outlier ejection, slow start and leases on a chosen node, driven by an injected clock."""

from __future__ import annotations

import random
from collections import Counter
from collections.abc import Callable

import pytest

from commercekit.balancer import (
    KetamaBalancer,
    KeyedBalancer,
    LeastLoadedBalancer,
    MaglevBalancer,
    NodeHealth,
    OutlierDetection,
    RoundRobinBalancer,
    SlowStart,
)
from commercekit.balancer._pool._base import Pool
from commercekit.errors import ConfigurationError, NotFoundError, UnavailableError
from commercekit.metrics import InMemoryMetrics

from .support import FakeClock, keys, mapping, moved, names, small_capped

KEYS = keys(20_000)


def ejecting(clock: FakeClock, **overrides: float) -> MaglevBalancer:
    detection = OutlierDetection(
        consecutive_failures=3, base_ejection_s=30, max_ejection_s=100, max_ejected_fraction=0.5
    )
    return MaglevBalancer(
        names(6), clock=clock, outlier_detection=detection, panic_threshold=0, **overrides
    )


def test_consecutive_failures_eject_the_node() -> None:
    clock = FakeClock()
    balancer = ejecting(clock)
    before = mapping(balancer.pick, KEYS)
    balancer.report_failure("node-1")
    balancer.report_failure("node-1")
    balancer.report_success("node-1")  # the run is broken
    balancer.report_failure("node-1")
    balancer.report_failure("node-1")
    assert balancer.health("node-1") is NodeHealth.UP
    assert balancer.status("node-1").consecutive_failures == 2
    balancer.report_failure("node-1")
    assert balancer.health("node-1") is NodeHealth.EJECTED
    status = balancer.status("node-1")
    assert (status.ejections, status.share, status.consecutive_failures) == (1, 0.0, 0)
    during = mapping(balancer.pick, KEYS)
    assert moved(before, during) == {k for k, n in before.items() if n == "node-1"}


def test_ejection_ends_when_its_time_is_up_lazily_on_pick() -> None:
    clock = FakeClock()
    balancer = ejecting(clock)
    before = mapping(balancer.pick, KEYS)
    for _ in range(3):
        balancer.report_failure("node-2")
    clock.advance(29.9)
    assert "node-2" not in mapping(balancer.pick, KEYS).values()
    clock.advance(0.2)
    assert mapping(balancer.pick, KEYS) == before  # no tick() needed
    assert balancer.health("node-2") is NodeHealth.UP


def test_repeated_ejections_last_longer_up_to_the_cap_and_decay() -> None:
    clock = FakeClock()
    balancer = ejecting(clock)

    def eject_and_measure() -> float:
        for _ in range(3):
            balancer.report_failure("node-0")
        assert balancer.health("node-0") is NodeHealth.EJECTED
        start = clock.now
        while balancer.health("node-0") is NodeHealth.EJECTED:
            clock.advance(1)
            balancer.tick()
        return clock.now - start

    assert eject_and_measure() == 30
    assert eject_and_measure() == 60
    assert eject_and_measure() == 90
    assert eject_and_measure() == 100  # max_ejection_s
    clock.advance(3 * 30)  # three quiet base periods: the multiplier falls by three
    assert eject_and_measure() == 60


def test_at_most_the_allowed_fraction_is_ejected() -> None:
    clock = FakeClock()
    detection = OutlierDetection(consecutive_failures=1, max_ejected_fraction=0.2)
    balancer = MaglevBalancer(names(10), clock=clock, outlier_detection=detection)
    for name in names(10):
        balancer.report_failure(name)
    ejected = [s.name for s in balancer.statuses() if s.health is NodeHealth.EJECTED]
    assert ejected == ["node-0", "node-1"]


def test_at_least_one_node_may_always_be_ejected() -> None:
    detection = OutlierDetection(consecutive_failures=1, max_ejected_fraction=0.01)
    balancer = MaglevBalancer(["a", "b"], outlier_detection=detection)
    balancer.report_failure("a")
    balancer.report_failure("b")
    assert [balancer.health(n) for n in "ab"] == [NodeHealth.EJECTED, NodeHealth.UP]


def test_failures_without_outlier_detection_only_count() -> None:
    balancer = MaglevBalancer(["a", "b"])
    for _ in range(100):
        balancer.report_failure("a")
    assert balancer.health("a") is NodeHealth.UP
    assert balancer.status("a").consecutive_failures == 100


def test_a_down_node_is_not_ejected_and_mark_up_ends_an_ejection() -> None:
    clock = FakeClock()
    balancer = ejecting(clock)
    balancer.mark_down("node-3")
    for _ in range(5):
        balancer.report_failure("node-3")
    assert balancer.health("node-3") is NodeHealth.DOWN
    balancer.mark_up("node-3")
    for _ in range(3):
        balancer.report_failure("node-3")
    assert balancer.health("node-3") is NodeHealth.EJECTED
    assert balancer.mark_up("node-3") is True
    assert balancer.health("node-3") is NodeHealth.UP


@pytest.mark.parametrize(
    "kwargs",
    [
        {"consecutive_failures": 0},
        {"base_ejection_s": 0},
        {"base_ejection_s": 10, "max_ejection_s": 5},
        {"max_ejected_fraction": 0},
        {"max_ejected_fraction": 1.5},
        {"base_ejection_s": float("inf")},
    ],
)
def test_outlier_settings_are_validated(kwargs: dict[str, float]) -> None:
    with pytest.raises(ConfigurationError):
        OutlierDetection(**kwargs)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    "kwargs", [{"window_s": 0}, {"initial_share": 1.0}, {"initial_share": -0.1}]
)
def test_slow_start_settings_are_validated(kwargs: dict[str, float]) -> None:
    with pytest.raises(ConfigurationError):
        SlowStart(**kwargs)


def test_slow_start_share_is_linear() -> None:
    ramp = SlowStart(window_s=10, initial_share=0.2)
    assert [ramp.share(t) for t in (-1, 0, 5, 10, 11)] == pytest.approx([0.2, 0.2, 0.6, 1, 1])


def test_a_joining_node_takes_its_keys_gradually_and_for_good() -> None:
    clock = FakeClock()
    balancer = MaglevBalancer(
        names(8), clock=clock, slow_start=SlowStart(window_s=60, initial_share=0.0)
    )
    full = MaglevBalancer([*names(8), "new"])
    target = {k for k in KEYS if full.pick(k) == "new"}
    balancer.add("new")
    assert "new" not in mapping(balancer.pick, KEYS).values()
    taken: set[str] = set()
    for _ in range(6):
        clock.advance(10)
        now = {k for k, n in mapping(balancer.pick, KEYS).items() if n == "new"}
        assert taken <= now <= target  # grows, never gives keys back, only its own keys
        taken = now
        assert balancer.status("new").share == pytest.approx(min(1.0, (clock.now - 1000) / 60))
    assert taken == target
    assert mapping(balancer.pick, KEYS) == mapping(full.pick, KEYS)
    assert balancer.status("new").share == 1.0


def test_halfway_through_the_window_about_half_the_keys_moved() -> None:
    clock = FakeClock()
    balancer = MaglevBalancer(
        names(4), clock=clock, slow_start=SlowStart(window_s=100, initial_share=0.0)
    )
    balancer.add("new")
    clock.advance(50)
    share = sum(1 for k in KEYS if balancer.pick(k) == "new") / len(KEYS)
    assert share == pytest.approx(0.5 * 0.2, abs=0.01)


def test_a_recovering_node_warms_up_again() -> None:
    clock = FakeClock()
    balancer = MaglevBalancer(
        names(5),
        clock=clock,
        slow_start=SlowStart(window_s=10, initial_share=0.0),
        panic_threshold=0,
    )
    before = mapping(balancer.pick, KEYS)
    balancer.mark_down("node-4")
    balancer.mark_up("node-4")
    assert "node-4" not in mapping(balancer.pick, KEYS).values()
    assert balancer.status("node-4").share == 0.0
    clock.advance(10)
    balancer.tick()
    assert mapping(balancer.pick, KEYS) == before


def test_initial_nodes_start_warm() -> None:
    balancer = MaglevBalancer(names(3), slow_start=SlowStart(window_s=1000))
    assert {s.share for s in balancer.statuses()} == {1.0}


def test_keys_still_go_somewhere_when_every_node_is_warming() -> None:
    clock = FakeClock()
    balancer = MaglevBalancer(clock=clock, slow_start=SlowStart(window_s=60, initial_share=0.0))
    balancer.add("a")
    balancer.add("b")
    assert {balancer.pick(k) for k in KEYS[:200]} <= {"a", "b"}


def test_an_ejection_noticed_late_warms_up_from_when_it_ended() -> None:
    clock = FakeClock()
    balancer = MaglevBalancer(
        names(4),
        clock=clock,
        panic_threshold=0,
        outlier_detection=OutlierDetection(consecutive_failures=1, base_ejection_s=10),
        slow_start=SlowStart(window_s=20, initial_share=0.0),
    )
    before = mapping(balancer.pick, KEYS)
    balancer.report_failure("node-2")
    clock.advance(10 + 20)  # ejection over, and a whole window since: nobody looked meanwhile
    assert mapping(balancer.pick, KEYS) == before
    assert balancer.status("node-2").share == 1.0


def test_status_and_health_apply_the_time_that_passed() -> None:
    clock = FakeClock()
    balancer = ejecting(clock)
    for _ in range(3):
        balancer.report_failure("node-4")
    clock.advance(30)
    assert balancer.health("node-4") is NodeHealth.UP
    assert [s.health for s in balancer.statuses()] == [NodeHealth.UP] * 6


# --- acquire_node: a lease on the node the caller chose ----------------------------------

PoolFactory = Callable[..., Pool]
EVERY_BALANCER = [
    pytest.param(MaglevBalancer, id="maglev"),
    pytest.param(KetamaBalancer, id="ketama"),
    pytest.param(small_capped, id="capped"),
    pytest.param(RoundRobinBalancer, id="round-robin"),
    pytest.param(LeastLoadedBalancer, id="least-loaded"),
]
IN_FLIGHT = "commercekit_balancer_in_flight"


@pytest.mark.parametrize("make", EVERY_BALANCER)
def test_acquire_node_counts_in_flight_and_releases_once(make: PoolFactory) -> None:
    metrics = InMemoryMetrics()
    balancer = make(names(3), name="api", metrics=metrics)

    def gauge(node: str) -> float:
        return metrics.value(IN_FLIGHT, balancer="api", node=node)

    lease = balancer.acquire_node("node-2")
    again = balancer.acquire_node("node-2")
    assert (lease.node, lease.released) == ("node-2", False)
    assert balancer.in_flight == 2
    assert balancer.status("node-2").in_flight == 2
    assert gauge("node-2") == 2
    assert [balancer.status(n).in_flight for n in names(2)] == [0, 0]
    lease.release()
    lease.release()  # the second release does nothing
    assert lease.released
    assert (balancer.in_flight, balancer.status("node-2").in_flight, gauge("node-2")) == (1, 1, 1)
    with pytest.raises(RuntimeError), again:
        raise RuntimeError("the request failed")
    assert again.released
    assert (balancer.in_flight, balancer.status("node-2").in_flight, gauge("node-2")) == (0, 0, 0)


@pytest.mark.parametrize("make", EVERY_BALANCER)
def test_acquire_node_of_an_unknown_node_is_not_found(make: PoolFactory) -> None:
    balancer = make(names(2), name="api")
    with pytest.raises(NotFoundError, match=r"no node 'node-9' in balancer 'api'"):
        balancer.acquire_node("node-9")
    with pytest.raises(LookupError):
        balancer.acquire_node("")
    assert balancer.in_flight == 0


@pytest.mark.parametrize("make", EVERY_BALANCER)
def test_acquire_node_refuses_a_node_out_of_service(make: PoolFactory) -> None:
    clock = FakeClock()
    detection = OutlierDetection(consecutive_failures=1, base_ejection_s=10)
    balancer = make(
        names(4), name="api", clock=clock, panic_threshold=0, outlier_detection=detection
    )
    balancer.mark_down("node-1")
    with pytest.raises(UnavailableError, match=r"node 'node-1' of balancer 'api' is down") as info:
        balancer.acquire_node("node-1")
    assert "another node" in str(info.value)  # what to do
    balancer.report_failure("node-2")
    with pytest.raises(UnavailableError, match=r"'node-2' .* ejected .* another 10\.0 s"):
        balancer.acquire_node("node-2")
    assert balancer.in_flight == 0
    clock.advance(10)  # the ejection is over: no tick() needed
    with balancer.acquire_node("node-2") as lease:
        assert balancer.status(lease.node).in_flight == 1
    balancer.mark_up("node-1")
    balancer.acquire_node("node-1").release()
    assert balancer.in_flight == 0


@pytest.mark.parametrize("make", EVERY_BALANCER)
def test_acquire_node_in_panic_mode_takes_any_node(make: PoolFactory) -> None:
    balancer = make(names(4), panic_threshold=0.5)
    balancer.mark_down("node-0")
    with pytest.raises(UnavailableError):
        balancer.acquire_node("node-0")  # half the weight is still in service: no panic
    balancer.mark_down("node-1")
    balancer.mark_down("node-2")
    assert balancer.panicking  # picks spread over every node, and so may the caller
    with balancer.acquire_node("node-0") as lease:
        assert balancer.status(lease.node).in_flight == 1
    assert balancer.in_flight == 0


@pytest.mark.parametrize("make", EVERY_BALANCER)
def test_acquire_node_takes_a_node_warming_up(make: PoolFactory) -> None:
    balancer = make(
        names(2), clock=FakeClock(), slow_start=SlowStart(window_s=60, initial_share=0.0)
    )
    balancer.add("new")
    assert balancer.status("new").share == 0.0
    with balancer.acquire_node("new") as lease:
        assert balancer.status(lease.node).in_flight == 1


def test_least_loaded_acquire_avoids_a_node_loaded_through_acquire_node() -> None:
    balancer = LeastLoadedBalancer(names(3), rng=random.Random(7))
    held = [balancer.acquire_node("node-0") for _ in range(20)]
    chosen: Counter[str] = Counter()
    for _ in range(300):
        with balancer.acquire() as lease:
            chosen[lease.node] += 1
    # Two distinct nodes drawn: never node-0, which has more leases. It wins only when
    # all eight draws of a pick land on it alone (about 1 pick in 2000).
    assert chosen["node-0"] <= 2
    assert chosen["node-1"] > 100
    assert chosen["node-2"] > 100
    for lease in held:
        lease.release()
    with_node_0 = Counter(balancer.pick() for _ in range(300))
    assert with_node_0["node-0"] > 50  # released: it takes its share again


@pytest.mark.parametrize("make", [MaglevBalancer, KetamaBalancer, small_capped])
def test_bounded_load_acquire_counts_leases_taken_by_acquire_node(make: PoolFactory) -> None:
    balancer = make(names(4), balance_factor=1.25)
    home = balancer.pick("customer-1")
    held = [balancer.acquire_node(home) for _ in range(8)]  # over its cap: ceil(1.25 * 9 / 4)
    with balancer.acquire("customer-1") as lease:
        assert lease.node != home
    for lease in held:
        lease.release()
    with balancer.acquire("customer-1") as lease:
        assert lease.node == home


def test_keyed_balancers_offer_acquire_node() -> None:
    balancers: list[KeyedBalancer] = [
        MaglevBalancer(["a"]),
        KetamaBalancer(["a"]),
        small_capped(["a"]),
    ]
    for balancer in balancers:
        with balancer.acquire_node("a") as lease:
            assert lease.node == "a"
