"""Ketama mode sends every key where uhashring (and libketama) send it."""

from __future__ import annotations

import pytest
from uhashring import HashRing

from commercekit.balancer import KetamaBalancer

from .support import keys, names


@pytest.mark.parametrize("n", [1, 3, 10, 60])
def test_same_node_as_uhashring_for_every_key(n: int) -> None:
    nodes = names(n, "cache")
    ours = KetamaBalancer(nodes)
    theirs = HashRing(nodes, hash_fn="ketama")
    for key in keys(20_000):
        assert ours.pick(key) == theirs.get_node(key)


def test_same_node_as_uhashring_with_integer_weights() -> None:
    weights = {name: 1 + i % 4 for i, name in enumerate(names(25, "10.0.0."))}
    ours = KetamaBalancer(weights)
    theirs = HashRing(weights, hash_fn="ketama")
    assert ours.points() == theirs.get_points()
    for key in keys(20_000, "url"):
        assert ours.pick(key) == theirs.get_node(key)


def test_same_continuum_as_uhashring() -> None:
    nodes = ["127.0.0.1:11211", "127.0.0.1:11212", "127.0.0.1:11213"]
    assert KetamaBalancer(nodes).points() == HashRing(nodes, hash_fn="ketama").get_points()


def test_same_as_uhashring_after_membership_changes() -> None:
    nodes = names(12, "mc")
    ours = KetamaBalancer(nodes)
    theirs = HashRing(nodes, hash_fn="ketama")
    ours.remove("mc-3")
    theirs.remove_node("mc-3")
    ours.add("mc-new")
    theirs.add_node("mc-new")
    for key in keys(10_000):
        assert ours.pick(key) == theirs.get_node(key)


def test_unicode_keys_and_names() -> None:
    nodes = ["nœud-un", "nœud-deux", "節點"]
    ours = KetamaBalancer(nodes)
    theirs = HashRing(nodes, hash_fn="ketama")
    for key in ["clé", "ключ", "鍵", "🔑", ""]:
        assert ours.pick(key) == theirs.get_node(key)


def test_pick_n_follows_the_ring_like_uhashring_range() -> None:
    nodes = names(8, "cache")
    ours = KetamaBalancer(nodes)
    theirs = HashRing(nodes, hash_fn="ketama")
    for key in keys(300):
        expected = [conf["nodename"] for conf in theirs.range(key, size=3)]
        assert ours.pick_n(key, 3) == expected


def test_shares_sum_to_one() -> None:
    shares = KetamaBalancer(names(10)).shares()
    assert sum(shares.values()) == pytest.approx(1.0)
    assert len(shares) == 10
