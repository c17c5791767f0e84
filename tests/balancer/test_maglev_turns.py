"""Maglev's weighted turns: the heap gives the same turns as Envoy's loop, in bounded time."""

from __future__ import annotations

import itertools
import time
from collections.abc import Iterator

from hypothesis import given
from hypothesis import strategies as st

from commercekit.balancer import MaglevBalancer
from commercekit.balancer._placement._maglev import _weighted_turns


def envoy_turns(shares: list[float], size: int) -> Iterator[int]:
    """The reference: each iteration, every node within its share takes a turn, in order."""
    claims = [0] * len(shares)
    given_turns = 0
    iteration = 0
    while True:
        iteration += 1
        for i, share in enumerate(shares):
            if iteration * share < claims[i]:
                continue
            claims[i] += 1
            yield i
            given_turns += 1
            if given_turns == size:
                return


weights = st.lists(
    st.one_of(
        st.floats(min_value=1e-9, max_value=1e12),
        st.integers(min_value=1, max_value=1000).map(float),
    ),
    min_size=1,
    max_size=12,
)


@given(weights, st.integers(min_value=1, max_value=3000))
def test_the_heap_gives_envoys_turns(ws: list[float], size: int) -> None:
    top = max(ws)
    shares = [w / top for w in ws]
    assert list(_weighted_turns(shares, size)) == list(
        itertools.islice(envoy_turns(shares, size), size)
    )


def test_very_unequal_weights_build_quickly() -> None:
    nodes = {"big": 1e12, **{f"light-{i}": 1e-9 for i in range(300)}}
    started = time.perf_counter()
    balancer = MaglevBalancer(nodes)
    assert time.perf_counter() - started < 3.0
    assert balancer.pick("key") == "big"
