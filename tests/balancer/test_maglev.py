"""The Maglev table: balanced, weighted, deterministic, and validated."""

from __future__ import annotations

import random
from collections import Counter

import pytest

from commercekit.balancer._placement._maglev import (
    DEFAULT_TABLE_SIZE,
    build_table,
    check_table_size,
)
from commercekit.errors import ConfigurationError

from .support import names


@pytest.mark.parametrize("n", [1, 2, 10, 100, 1000])
def test_every_node_gets_its_share_to_within_one_slot(n: int) -> None:
    table = build_table([(name, 1.0) for name in sorted(names(n))], DEFAULT_TABLE_SIZE)
    counts = Counter(table)
    assert len(table) == DEFAULT_TABLE_SIZE
    assert sorted(counts) == list(range(n))
    assert max(counts.values()) - min(counts.values()) <= 1


def test_float_weights_give_shares_within_one_percent() -> None:
    rng = random.Random(7)
    nodes = sorted((name, rng.uniform(0.25, 4.0)) for name in names(20))
    table = build_table(nodes, DEFAULT_TABLE_SIZE)
    counts = Counter(table)
    total = sum(w for _, w in nodes)
    for i, (_, weight) in enumerate(nodes):
        asked = weight / total
        got = counts[i] / DEFAULT_TABLE_SIZE
        assert abs(got - asked) <= 0.01 * asked


def test_the_table_depends_only_on_names_weights_and_size() -> None:
    nodes = sorted((name, 1.0 + i % 3) for i, name in enumerate(names(30)))
    assert build_table(nodes, 10007) == build_table(list(nodes), 10007)
    assert build_table(nodes, 10007) != build_table(nodes, 10009)


@pytest.mark.parametrize("size", [250, 256, 65536, 1, 0, -7])
def test_table_size_must_be_a_large_enough_prime(size: int) -> None:
    with pytest.raises(ConfigurationError, match="prime"):
        check_table_size(size)


@pytest.mark.parametrize("size", [1.5, "65537", True])
def test_table_size_must_be_an_int(size: object) -> None:
    with pytest.raises(ConfigurationError):
        check_table_size(size)  # type: ignore[arg-type]


def test_accepted_sizes() -> None:
    assert check_table_size(251) == 251
    assert check_table_size(100003) == 100003
