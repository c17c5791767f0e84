"""Shard placements: ketama (the default, one-way copies) and the capped ring (balanced)."""

from __future__ import annotations

from collections import Counter

import pytest

from commercekit.errors import ConfigurationError
from commercekit.repository import (
    Database,
    Node,
    ReplicatedTopology,
    ShardedTopology,
    capped_shards,
    ketama_shards,
    keys_to_move,
    sqlite_engine,
)

KEYS = range(12_000)


def shards(n: int) -> list[str]:
    return [f"s{i}" for i in range(1, n + 1)]


def peak_to_mean(placement: object, names: list[str]) -> float:
    shares = placement(names).shares()  # type: ignore[operator]  # exact shares of key space
    return float(max(shares.values()) * len(names))


@pytest.mark.parametrize("n", [4, 16, 32])
def test_the_capped_placement_balances_better_than_ketama(n: int) -> None:
    capped, ketama = peak_to_mean(capped_shards, shards(n)), peak_to_mean(ketama_shards, shards(n))
    assert capped <= 1.02 + 1e-9  # the ring's cap
    assert capped < ketama


def test_ketama_holds_on_counted_keys_too() -> None:
    ring = ketama_shards(shards(4))
    counts = Counter(ring.pick(str(k)) for k in KEYS)
    assert max(counts.values()) / (len(KEYS) / 4) < 1.25


@pytest.mark.parametrize("n", [3])
def test_both_placements_move_about_the_ideal_share(n: int) -> None:
    ideal = len(KEYS) / (n + 1)
    for placement in (ketama_shards, capped_shards):
        moves = keys_to_move(KEYS, shards(n), shards(n + 1), placement=placement)
        assert 0.85 * ideal < len(moves) < 1.15 * ideal
        between_old = [key for key, (_, new) in moves.items() if new != f"s{n + 1}"]
        if placement is ketama_shards:
            assert between_old == []  # one-way: every moved key goes to the new shard
        else:
            assert len(between_old) < 0.005 * len(KEYS)


def test_the_default_stays_ketama_and_capped_is_one_argument_away() -> None:
    groups = [ReplicatedTopology(Node("primary", sqlite_engine()), name=n) for n in shards(3)]
    default = Database(ShardedTopology(groups))
    ring = ketama_shards(shards(3))
    assert all(default.shard_for(k) == ring.pick(str(k)) for k in range(300))
    balanced = Database(ShardedTopology(groups), shard_placement=capped_shards)
    table = capped_shards(shards(3))
    assert all(balanced.shard_for(k) == table.pick(str(k)) for k in range(300))


def test_a_placement_needs_a_shard() -> None:
    with pytest.raises(ConfigurationError):
        capped_shards([])
