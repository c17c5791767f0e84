"""The Maglev lookup table (Eisenbud et al., NSDI 2016), weighted as Envoy weights it.

Pure: a list of ``(name, weight)`` in, a list of node indexes out, one per
table slot. Each node walks its own permutation of the slots (``offset``,
``offset + skip``, ... modulo the prime table size, both from the node's
name) and, taking turns with the others, claims the next slot nobody has
claimed yet. A node of weight *w* takes a turn only while its claims are at
most ``iteration * w / max_weight``, so every node ends with its weight's
share of slots to within one slot.

The table depends only on the names, weights and table size: nodes take turns
in name order, whatever order they were added in, so every process that knows
the same membership builds the same table.

The build is a tight pure-Python loop. Walking permutations costs about
``M ln M`` probes, half of them for the last few hundred slots, so the last
``sqrt(M) / 2`` claims are computed instead of walked (see :func:`_fill`);
65537 slots build in 25-40 ms of CPU here, whatever the number of nodes.
"""

from __future__ import annotations

import heapq
import itertools
import math
from collections.abc import Iterator, Sequence

from commercekit.balancer._shown import shown
from commercekit.errors import ConfigurationError

from ._hashing import node_hash

__all__ = ["DEFAULT_TABLE_SIZE", "MAX_TABLE_SIZE", "build_table", "check_table_size"]

DEFAULT_TABLE_SIZE = 65537
"""The default number of slots: prime, about 65 slots a node at 1000 nodes."""

_OFFSET_SEED = 0x4D41474C  # "MAGL"
_SKIP_SEED = 0x534B4950  # "SKIP"


MAX_TABLE_SIZE = 1 << 24
"""The largest Maglev table: 16,777,216 slots (128 MiB of references), 160,000 nodes' worth."""


def _is_prime(n: int) -> bool:
    if n < 2:
        return False
    if n % 2 == 0:
        return n == 2
    f = 3
    while f * f <= n:
        if n % f == 0:
            return False
        f += 2
    return True


def check_table_size(size: int) -> int:
    """Return *size* if it is a usable Maglev table size (a prime of at least 251)."""
    if isinstance(size, bool) or not isinstance(size, int):
        raise ConfigurationError(f"table_size must be an int, not {type(size).__name__}")
    if size > MAX_TABLE_SIZE:
        raise ConfigurationError(
            f"table_size must be at most {MAX_TABLE_SIZE:,} (a table holds one reference a "
            f"slot), got {shown(size)}; use about 100 slots a node, such as 65537 or 100003"
        )
    if size < 251 or not _is_prime(size):
        raise ConfigurationError(
            f"table_size must be a prime of at least 251, got {size}; "
            f"use about 100 slots a node, such as 65537 (the default) or 100003"
        )
    return size


def build_table(nodes: Sequence[tuple[str, float]], size: int) -> list[int]:
    """The Maglev table of *size* slots for *nodes*, as indexes into *nodes*.

    *nodes* must be non-empty, sorted by name, with positive weights.
    """
    offsets = [node_hash(name, _OFFSET_SEED) % size for name, _ in nodes]
    skips = [node_hash(name, _SKIP_SEED) % (size - 1) + 1 for name, _ in nodes]
    weights = [weight for _, weight in nodes]
    if min(weights) == max(weights):
        rounds, extra = divmod(size, len(nodes))
        everyone = range(len(nodes))
        turns: Iterator[int] = itertools.chain(
            itertools.chain.from_iterable(itertools.repeat(everyone, rounds)), range(extra)
        )
    else:
        top = max(weights)
        turns = _weighted_turns([w / top for w in weights], size)
    return _fill(offsets, skips, turns, size)


def _weighted_turns(shares: list[float], size: int) -> Iterator[int]:
    """Envoy's weighted turns: node *i* takes a turn while ``claims[i] <= iteration * shares[i]``.

    Yields exactly *size* turns: in each iteration, every node whose claims are
    still within its share takes one, in index order. Computed with a heap of
    each node's next iteration, so a node of tiny weight among many costs
    nothing until its turn comes (a loop over every node each iteration took
    seconds at 300 nodes of very unequal weights).
    """
    claims = [0] * len(shares)
    heap = [(1, i) for i in range(len(shares))]  # (iteration of its next turn, node)
    heapq.heapify(heap)
    for _ in range(size):
        iteration, i = heapq.heappop(heap)
        yield i
        claims[i] = claimed = claims[i] + 1
        share = shares[i]
        # The first iteration after this one in which iteration * share >= claimed.
        # The node of share 1 takes a turn every iteration, so all *size* turns are
        # given by iteration *size*: a node due later never takes another.
        if claimed / share > size + 1:
            continue
        due = max(iteration + 1, math.ceil(claimed / share))
        while due * share < claimed:
            due += 1
        while due - 1 > iteration and (due - 1) * share >= claimed:
            due -= 1
        heapq.heappush(heap, (due, i))


def _fill(offsets: list[int], skips: list[int], turns: Iterator[int], size: int) -> list[int]:
    """Each turn, the node whose turn it is claims the next free slot of its permutation.

    Walking the permutation costs ``size / free`` probes a claim, so the last few
    claims would cost most of the build (about ``size * ln(size)`` probes in all).
    Once only ``sqrt(size) / 2`` slots are free, each claim instead computes, for every
    free slot, how many steps of its permutation away it is, and takes the nearest:
    the same slot the walk would reach, found in ``O(free)``.
    """
    # One list, None where unclaimed: ``is not None`` is the cheapest test CPython has.
    table: list[int | None] = [None] * size
    nexts = offsets[:]
    walked = size - math.isqrt(size) // 2
    for i in itertools.islice(turns, walked):
        c = nexts[i]
        skip = skips[i]
        while table[c] is not None:
            c += skip
            if c >= size:
                c -= size
        table[c] = i
        c += skip
        nexts[i] = c - size if c >= size else c
    free: list[int] = []
    start = 0
    while walked + len(free) < size:
        start = table.index(None, start)
        free.append(start)
        start += 1
    for i in turns:
        c = nexts[i]
        skip = skips[i]
        inverse = pow(skip, -1, size)
        # The free slot reached after the fewest steps d, where c + d * skip = f (mod size).
        steps = min((f - c) * inverse % size for f in free)
        nearest = (c + steps * skip) % size
        free.remove(nearest)
        table[nearest] = i
        c = nearest + skip
        nexts[i] = c - size if c >= size else c
    return table  # type: ignore[return-value]  # every slot is claimed by now
