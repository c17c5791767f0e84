"""Rebuilds run off the balancer's lock: picks, health flips and leases never wait on one."""

from __future__ import annotations

import threading
import time

import pytest

from commercekit.balancer import CappedRingBalancer, MaglevBalancer
from commercekit.balancer._pool._member import Member
from commercekit.errors import ConfigurationError

from .support import keys, mapping, names


class GatedMaglev(MaglevBalancer):
    """A MaglevBalancer whose table builds wait until the test opens the gate."""

    def __init__(self, nodes: list[str]) -> None:
        self.gate = threading.Event()
        self.gate.set()
        self.building = threading.Event()
        super().__init__(nodes, panic_threshold=0)

    def _table(self, members: list[Member], weights: list[float]) -> list[Member]:
        self.building.set()
        assert self.gate.wait(10)
        return super()._table(members, weights)


def test_health_flips_leases_and_picks_go_on_while_a_table_builds() -> None:
    balancer = GatedMaglev(names(8))
    before = mapping(balancer.pick, keys(500))
    balancer.gate.clear()
    adder = threading.Thread(target=balancer.add, args=("node-new",))
    adder.start()
    assert balancer.building.wait(5)
    try:
        start = time.perf_counter()
        balancer.mark_down("node-3")
        with balancer.acquire_node("node-1"):
            pass
        balancer.mark_up("node-3")
        assert time.perf_counter() - start < 1.0  # not held up by the build
        assert mapping(balancer.pick, keys(500)) == before  # the old table, still whole
        assert adder.is_alive()
    finally:
        balancer.gate.set()
        adder.join(10)
    # add() returned once the new table was in: the newcomer takes its keys.
    assert "node-new" in set(mapping(balancer.pick, keys(500)).values())


def test_concurrent_changes_end_on_the_table_of_the_final_membership() -> None:
    balancer = MaglevBalancer(names(10), table_size=10007)
    extra = [f"extra-{i}" for i in range(8)]
    threads = [threading.Thread(target=balancer.add, args=(name,)) for name in extra]
    threads += [threading.Thread(target=balancer.remove, args=(f"node-{i}",)) for i in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(30)
    final = [*names(10)[4:], *extra]
    assert sorted(balancer.node_names()) == sorted(final)
    fresh = MaglevBalancer(final, table_size=10007)
    assert mapping(balancer.pick, keys(2000)) == mapping(fresh.pick, keys(2000))


def test_a_removed_node_gets_no_picks_even_before_the_new_table_is_in() -> None:
    balancer = GatedMaglev(names(5))
    balancer.gate.clear()
    remover = threading.Thread(target=balancer.remove, args=("node-2",))
    remover.start()
    assert balancer.building.wait(5)
    try:
        assert "node-2" not in set(mapping(balancer.pick, keys(500)).values())
    finally:
        balancer.gate.set()
        remover.join(10)


def test_a_membership_the_placement_cannot_hold_is_refused_before_anything_changes() -> None:
    # 1,024 slots capped at 1.1x: caps of floor(1126.4 / n) cover the table up to 112 nodes.
    balancer = CappedRingBalancer(names(10), table_bits=10, points=16, balance=1.1)
    before = mapping(balancer.pick, keys(200))
    with pytest.raises(ConfigurationError, match="cannot cap 200 nodes"):
        balancer.update(names(200))
    assert sorted(balancer.node_names()) == sorted(names(10))
    assert mapping(balancer.pick, keys(200)) == before
    for name in names(112)[10:]:
        balancer.add(name)
    with pytest.raises(ConfigurationError, match="cannot cap 113 nodes"):
        balancer.add("one-too-many")
    assert "one-too-many" not in balancer
    assert len(balancer) == 112
