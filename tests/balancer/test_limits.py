"""Memberships a placement cannot build in reasonable time are refused at once, by name."""

from __future__ import annotations

import pytest

from commercekit.balancer import (
    CappedRingBalancer,
    KetamaBalancer,
    MaglevBalancer,
    _capped_balancer,
    _ketama_balancer,
)
from commercekit.balancer._ketama_balancer import MAX_NODES
from commercekit.balancer._placement._capped import MAX_RING_POINTS, ring_point_count
from commercekit.errors import ConfigurationError

from .support import names


def test_the_capped_ring_refuses_more_ring_points_than_it_can_build(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    balancer = CappedRingBalancer(names(8), table_bits=12, points=64)
    before = [balancer.pick(f"k{i}") for i in range(50)]

    def no_build(*args: object, **kwargs: object) -> None:
        raise AssertionError("refused only after starting to build the table")

    monkeypatch.setattr(_capped_balancer, "build_capped_table", no_build)
    with pytest.raises(ConfigurationError, match="at most 2,097,152 ring points"):
        CappedRingBalancer(names(10_000))
    with pytest.raises(ConfigurationError, match="1,024 nodes at the default 2,048"):
        CappedRingBalancer(names(1025))
    with pytest.raises(ConfigurationError, match="ring points"):
        balancer.update(names(MAX_RING_POINTS // 64 + 1))
    monkeypatch.undo()
    assert [balancer.pick(f"k{i}") for i in range(50)] == before
    assert ring_point_count([1.0] * 1024, 2048) == MAX_RING_POINTS


def test_weights_do_not_multiply_ring_points() -> None:
    # Points follow a node's weight over the mean weight: the total stays near nodes x points.
    weights = [1e9, 1.0, 1.0, 1e-9]
    assert ring_point_count(weights, 64) <= 64 * len(weights) + len(weights)


def test_ketama_refuses_more_nodes_than_it_can_rebuild(monkeypatch: pytest.MonkeyPatch) -> None:
    balancer = KetamaBalancer(names(4))

    def no_build(*args: object, **kwargs: object) -> None:
        raise AssertionError("refused only after starting to build the continuum")

    monkeypatch.setattr(_ketama_balancer, "build_continuum", no_build)
    with pytest.raises(ConfigurationError, match="at most 4,096 nodes"):
        KetamaBalancer(names(10_000))
    with pytest.raises(ConfigurationError, match="MaglevBalancer"):
        balancer.update(names(MAX_NODES + 1))
    monkeypatch.undo()
    assert sorted(balancer.node_names()) == sorted(names(4))


def test_maglev_refuses_more_nodes_than_slots() -> None:
    balancer = MaglevBalancer(names(4), table_size=251)
    with pytest.raises(ConfigurationError, match="holds at most 251 nodes"):
        balancer.update(names(252))
    with pytest.raises(ConfigurationError, match="table_size must be at most"):
        MaglevBalancer(names(2), table_size=2**61 - 1)  # a prime, far too big to build
    assert len(balancer) == 4
