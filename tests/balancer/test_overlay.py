"""Health as an overlay: down moves only that node's keys, up brings exactly them back."""

from __future__ import annotations

import time
from collections import Counter
from collections.abc import Callable

import pytest

from commercekit.balancer import KetamaBalancer, MaglevBalancer, NodeHealth
from commercekit.balancer._keyed import KeyedPool
from commercekit.errors import UnavailableError

from .support import keys, mapping, moved, names, small_capped

Factory = Callable[..., KeyedPool]
PLACEMENTS = [
    pytest.param(MaglevBalancer, id="maglev"),
    pytest.param(KetamaBalancer, id="ketama"),
    pytest.param(small_capped, id="capped"),
]
KEYS = keys(20_000)


@pytest.mark.parametrize("make", PLACEMENTS)
def test_down_moves_only_its_keys_and_up_restores_them(make: Factory) -> None:
    balancer = make(names(10), panic_threshold=0)
    before = mapping(balancer.pick, KEYS)
    assert balancer.mark_down("node-3") is True
    assert balancer.mark_down("node-3") is False  # already down
    during = mapping(balancer.pick, KEYS)
    changed = moved(before, during)
    assert changed == {k for k, n in before.items() if n == "node-3"}
    assert "node-3" not in during.values()
    # The displaced keys spread over the others, not onto one neighbour.
    spread = Counter(during[k] for k in changed)
    assert len(spread) >= 5
    assert balancer.mark_up("node-3") is True
    assert mapping(balancer.pick, KEYS) == before


@pytest.mark.parametrize("make", PLACEMENTS)
def test_overlapping_outages_restore_exactly(make: Factory) -> None:
    balancer = make(names(12), panic_threshold=0)
    before = mapping(balancer.pick, KEYS)
    for name in ("node-1", "node-5", "node-7"):
        balancer.mark_down(name)
    with_three_down = mapping(balancer.pick, KEYS)
    assert not {"node-1", "node-5", "node-7"} & set(with_three_down.values())
    balancer.mark_up("node-5")
    assert moved(with_three_down, mapping(balancer.pick, KEYS)) <= {
        k for k, n in before.items() if n in ("node-1", "node-5", "node-7")
    }
    balancer.mark_up("node-1")
    balancer.mark_up("node-7")
    assert mapping(balancer.pick, KEYS) == before


@pytest.mark.parametrize("make", PLACEMENTS)
def test_a_flip_costs_microseconds(make: Factory) -> None:
    balancer = make(names(1000), panic_threshold=0)
    start = time.perf_counter()
    for _ in range(200):
        balancer.mark_down("node-500")
        balancer.mark_up("node-500")
    per_flip = (time.perf_counter() - start) / 400
    assert per_flip < 100e-6  # a few microseconds; generous for a shared machine


@pytest.mark.parametrize("make", PLACEMENTS)
def test_panic_spreads_over_every_node(make: Factory) -> None:
    balancer = make(names(4), panic_threshold=0.5)
    before = mapping(balancer.pick, KEYS[:2000])
    balancer.mark_down("node-0")
    assert not balancer.panicking
    balancer.mark_down("node-1")  # 2 of 4 up: exactly at the threshold, not below
    assert not balancer.panicking
    assert not {"node-0", "node-1"} & set(mapping(balancer.pick, KEYS[:2000]).values())
    balancer.mark_down("node-2")  # 1 of 4 up: panic, picks ignore health
    assert balancer.panicking
    assert mapping(balancer.pick, KEYS[:2000]) == before
    assert "PANIC" in repr(balancer)
    balancer.mark_up("node-2")
    assert not balancer.panicking


@pytest.mark.parametrize("make", PLACEMENTS)
def test_without_panic_mode_all_down_is_unavailable(make: Factory) -> None:
    balancer = make(["a", "b"], panic_threshold=0)
    balancer.mark_down("a")
    balancer.mark_down("b")
    with pytest.raises(UnavailableError, match="none of the 2 nodes"):
        balancer.pick("k")
    with pytest.raises(UnavailableError):
        balancer.pick_n("k", 2)
    with pytest.raises(UnavailableError):
        balancer.acquire("k")


@pytest.mark.parametrize("make", PLACEMENTS)
def test_weighted_panic_threshold(make: Factory) -> None:
    balancer = make({"big": 3.0, "small": 1.0}, panic_threshold=0.5)
    balancer.mark_down("small")
    assert not balancer.panicking
    balancer.mark_up("small")
    balancer.mark_down("big")
    assert balancer.panicking  # a quarter of the weight is up


@pytest.mark.parametrize("make", PLACEMENTS)
def test_removed_node_gets_no_picks_and_health_calls_fail(make: Factory) -> None:
    balancer = make(names(5), panic_threshold=0)
    balancer.remove("node-2")
    assert "node-2" not in mapping(balancer.pick, KEYS[:3000]).values()
    assert balancer.health("node-3") is NodeHealth.UP
