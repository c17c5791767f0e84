"""The capped ring table: a hash ring of many points a node, capped to a balanced share.

Pure: a list of ``(name, weight)`` in, a table of ``2**bits`` slots out, one
owner per slot.

**The ring.** Each node has ``points * weight / mean weight`` points (at
least one), the 64-bit words of ``SHAKE-128("commercekit-ring\\0" + name)``
read little-endian, so a node's points depend on its name and point count
alone. A point's position is the low 52 bits of its word, the lowest 8 of
them (16 past 256 nodes) replaced by the node's index so that points of two
nodes never tie; passing 256 nodes thus nudges every point by less than
``2**-36`` of the ring, which moves a few dozen slots at most. A slot
belongs to the first point at or after its start, as on any hash ring.
Adding or removing a node moves only the slots of that node's arcs: the ideal
share, no more. What a plain ring lacks is balance: a node's share
varies by about ``1 / sqrt(points)`` (2% at 2,048 points).

**The cap.** Every node may own at most ``floor(balance * size * weight /
total weight)`` slots. A node over its cap keeps the slots nearest its points
(ring distance from the slot's start to the point) and passes the farthest on
to the next point along the ring, which takes them if its node has room and
they are nearer than the farthest slots it keeps, and so on. This is
consistent hashing with bounded loads (Mirrokni, Thorup and Zadimoghaddam,
2016) with the table's slots as the balls. Slots and nodes both rank each
other by that one distance, so the capped assignment is the unique stable
matching: it depends on the membership alone, not on any order of work or
history, and every process builds the same table.

Only the few nodes whose arcs come to more than the cap pass slots on; the
slots they pass sit at the far ends of their arcs, and a membership change
re-routes few of them. So a change still moves close to the ideal share
(1.01x-1.08x of it in the benchmark), while every node's share is within
*balance* of its weight's share.

The build is pure Python, the sort of the ring's points and a few C-level
passes over them: about 0.5 s at 100 nodes and 2.5 s at 1,000. See
docs/balancer.md.
"""

from __future__ import annotations

import itertools
import math
import sys
from array import array
from collections import Counter
from collections.abc import Sequence
from typing import TypeVar

from commercekit.errors import ConfigurationError

from ._capped_cap import Capper
from ._capped_ring import Ring, ring_points_bytes

__all__ = [
    "DEFAULT_POINTS",
    "DEFAULT_TABLE_BITS",
    "MAX_RING_POINTS",
    "build_capped_table",
    "check_balance",
    "check_capacity",
    "check_ring_points",
    "default_balance",
    "ring_points",
]

T = TypeVar("T")

DEFAULT_TABLE_BITS = 21
"""2,097,152 slots: about 2,000 a node at 1,000 nodes."""

DEFAULT_POINTS = 2048
"""Ring points for a node of mean weight."""


def default_balance(nodes: int) -> float:
    """The default cap on a node's share over its weight's share, for *nodes* nodes.

    1.02 up to 100 nodes, then rising with the logarithm of the count: 1.05 at
    1,000 and 1.08 at 10,000. A fixed table holds fewer slots a node as the
    fleet grows, so a tighter cap would pass on more slots and move more of
    them on each change.
    """
    if nodes <= 100:
        return 1.02
    return 1.02 + 0.03 * math.log10(nodes / 100)


def check_balance(balance: float | None) -> float | None:
    """Return *balance* if it is None (the default) or a cap from 1.0 (exclusive) to 2.0."""
    if balance is None:
        return None
    if isinstance(balance, bool) or not isinstance(balance, int | float):
        raise ConfigurationError(f"balance must be a number, not {type(balance).__name__}")
    if not 1.0 < balance <= 2.0:
        raise ConfigurationError(
            f"balance must be above 1.0 and at most 2.0, got {balance}; "
            f"1.02-1.05 keeps shares tight, more moves fewer keys on a change"
        )
    return float(balance)


def caps(weights: Sequence[float], size: int, balance: float | None) -> list[int]:
    """Each node's cap: ``floor(balance * size * weight / total weight)`` slots."""
    ratio = default_balance(len(weights)) if balance is None else balance
    total = sum(weights)
    return [math.floor(ratio * size * weight / total) for weight in weights]


MAX_RING_POINTS = 1 << 21
"""The most ring points a capped ring builds: 1,024 nodes at the default 2,048 points.

A build sorts every point and walks the ring in rounds; past this it takes tens
of seconds (4,000 nodes: 15 s; 10,000 never finished). Use fewer *points* for
more nodes, or :class:`MaglevBalancer`.
"""


def ring_point_count(weights: Sequence[float], points: int) -> int:
    """How many ring points nodes of *weights* get at *points* a node of mean weight."""
    mean = sum(weights) / len(weights)
    return sum(max(1, round(points * weight / mean)) for weight in weights)


def check_ring_points(weights: Sequence[float], points: int) -> None:
    """Raise ``ConfigurationError`` if nodes of *weights* need more than MAX_RING_POINTS."""
    if not weights:
        return
    total = ring_point_count(weights, points)
    if total > MAX_RING_POINTS:
        raise ConfigurationError(
            f"a capped ring builds at most {MAX_RING_POINTS:,} ring points (nodes x points: "
            f"{MAX_RING_POINTS // DEFAULT_POINTS:,} nodes at the default {DEFAULT_POINTS:,} "
            f"points); {len(weights):,} nodes at {points:,} points need {total:,}. Use fewer "
            f"points (balance still holds; changes move a little more) or MaglevBalancer"
        )


def check_capacity(weights: Sequence[float], size: int, balance: float | None) -> None:
    """Raise ``ConfigurationError`` unless nodes of *weights* can be capped in *size* slots.

    Every node needs a cap of at least one slot, and the caps must add up to
    more than *size*: then some node ends under its cap, so the slots passed
    on always find a taker.
    """
    if not weights:
        return
    limits = caps(weights, size, balance)
    ratio = default_balance(len(weights)) if balance is None else balance
    if min(limits) < 1:
        lightest = min(weights)
        raise ConfigurationError(
            f"a node of weight {lightest:g} of {sum(weights):g} in all would be capped at "
            f"no slot of a table of {size}; raise its weight or use more table_bits"
        )
    if sum(limits) <= size:
        raise ConfigurationError(
            f"a table of {size} slots cannot cap {len(weights)} nodes at {ratio:.3f}x their "
            f"share; use more table_bits (keep about 2,000 slots a node) or a larger balance"
        )


def ring_points(name: str, count: int) -> list[int]:
    """The first *count* ring points of node *name*, as 64-bit integers.

    A stream: the first *k* points are the same whatever *count* is, so a node
    whose weight grows keeps its points and gains new ones.
    """
    raw = array("Q")
    raw.frombytes(ring_points_bytes(name, count))
    if sys.byteorder == "big":
        raw.byteswap()
    return raw.tolist()


def build_capped_table(
    nodes: Sequence[tuple[str, float]],
    owners: Sequence[T],
    *,
    bits: int = DEFAULT_TABLE_BITS,
    points: int = DEFAULT_POINTS,
    balance: float | None = None,
) -> list[T]:
    """The capped ring table of ``2**bits`` slots for *nodes*, filled with *owners*.

    *nodes* must be non-empty, sorted by name, with positive weights;
    ``owners[i]`` stands for ``nodes[i]``. *balance* caps each node's share
    over its weight's share (default: :func:`default_balance`).
    """
    n = len(nodes)
    weights = [weight for _, weight in nodes]
    check_capacity(weights, 1 << bits, balance)
    check_ring_points(weights, points)
    ring = Ring(nodes, points, bits)
    size = ring.size
    limits = caps(weights, size, balance)
    ids = ring.ids
    # Every slot to its arc's node, counted and filled at C speed; then the cap.
    index = list(
        itertools.chain.from_iterable(map(itertools.repeat, ids, [ring.q(0) + 1, *ring.gaps[1:]]))
    )
    index += [ids[0]] * (size - len(index))
    counted = Counter(index)
    moves = Capper(ring, limits, [counted[i] for i in range(n)]).run()
    table = list(map(owners.__getitem__, index))
    for lo, hi, i in moves:
        owner = owners[i]
        lo %= size
        hi %= size
        if lo <= hi:
            table[lo : hi + 1] = [owner] * (hi - lo + 1)
        else:
            table[lo:] = [owner] * (size - lo)
            table[: hi + 1] = [owner] * (hi + 1)
    return table
