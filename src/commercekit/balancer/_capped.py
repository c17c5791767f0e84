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

import functools
import itertools
import math
import operator
import struct
import sys
from array import array
from bisect import bisect_left
from collections import Counter
from collections.abc import Sequence
from hashlib import shake_128
from typing import TypeVar

from commercekit.errors import ConfigurationError

__all__ = [
    "DEFAULT_POINTS",
    "DEFAULT_TABLE_BITS",
    "build_capped_table",
    "check_balance",
    "check_capacity",
    "default_balance",
    "ring_points",
]

T = TypeVar("T")

DEFAULT_TABLE_BITS = 21
"""2,097,152 slots: about 2,000 a node at 1,000 nodes."""

DEFAULT_POINTS = 2048
"""Ring points for a node of mean weight."""

_PREFIX = b"commercekit-ring\x00"
_POSITION_BITS = 52
"""Ring positions have 52 bits: a float's mantissa, which CPython sorts fastest."""
_SPAN = float(1 << _POSITION_BITS)


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


def check_capacity(weights: Sequence[float], size: int, balance: float | None) -> None:
    """Raise ``ConfigurationError`` unless the caps of nodes of *weights* exceed *size* slots.

    With room to spare, some node ends under its cap: the slots passed on
    always find a taker, and the walks of the cap have a place to start.
    """
    if weights and sum(caps(weights, size, balance)) <= size:
        ratio = default_balance(len(weights)) if balance is None else balance
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


class _Ring:
    """The points of every node in ring order, with what the cap needs of them.

    A point is kept as a float in ``[1, 2)`` whose 52 mantissa bits are its
    position, the low ones replaced by its node's index: one C-level sort then
    orders the points and carries their owners, and no two nodes can tie.
    """

    def __init__(self, nodes: Sequence[tuple[str, float]], points: int, bits: int) -> None:
        n = len(nodes)
        mean = sum(weight for _, weight in nodes) / n
        # Whole bytes, so the indexes can be read back without a loop.
        self.index_bits = index_bits = 8 if n <= 256 else 16 if n <= 65536 else 32
        self.counts = [max(1, round(points * weight / mean)) for _, weight in nodes]
        word = (1 << _POSITION_BITS) - 1 - ((1 << index_bits) - 1)
        one = 0x3FF << _POSITION_BITS  # the exponent of 1.0
        self.nodes = nodes
        self.word, self.one = word, one
        ring = array("d")
        for i in range(n):
            ring.frombytes(self._encoded(i))
        self.ring = ordered = sorted(ring)
        self.size = size = 1 << bits
        self.scale = scale = float(size)
        self.shift = _POSITION_BITS - bits
        self.width = 1 << self.shift
        self.span = 1 << _POSITION_BITS
        self.ids = _low_bits(ordered, index_bits)
        # Each point's slot is int(f * size) - size; only the differences are kept
        # for all points (small ints, which CPython does not allocate).
        slot = functools.partial(_slot, scale=scale, size=size)
        self.gaps = [
            slot(ordered[0]) + size - slot(ordered[-1]),
            *map(
                operator.sub,
                map(int, map(scale.__mul__, itertools.islice(ordered, 1, None))),
                map(int, map(scale.__mul__, ordered)),
            ),
        ]
        """Slots whose first point at or after their start is this one (wrapping at 0)."""

    def _encoded(self, i: int) -> bytes:
        name = self.nodes[i][0]
        count = self.counts[i]
        return _words(ring_points_bytes(name, count), self.word, self.one | i, count)

    def x(self, k: int) -> int:
        """Point *k*'s position on the ring, in ``[0, 2**52)``."""
        return int((self.ring[k] - 1.0) * _SPAN)

    def q(self, k: int) -> int:
        """Point *k*'s slot."""
        return int(self.ring[k] * self.scale) - self.size

    def indexes_of(self, i: int) -> list[int]:
        """Where node *i*'s points sit in ring order."""
        ring = self.ring
        return [bisect_left(ring, f) for f in array("d", self._encoded(i))]


def _slot(f: float, scale: float, size: int) -> int:
    return int(f * scale) - size


def ring_points_bytes(name: str, count: int) -> bytes:
    """The first ``8 * count`` bytes of node *name*'s point stream."""
    return shake_128(_PREFIX + name.encode()).digest(8 * count)


def _words(raw: bytes, keep: int, put: int, count: int) -> bytes:
    """Each little-endian 64-bit word of *raw*, masked with *keep* and or-ed with *put*.

    Done as two operations on one big integer, so the cost is C's, not a loop's.
    """
    keeps = _repeat_word(keep, count)
    puts = int.from_bytes(put.to_bytes(8, "little") * count, "little")
    value = int.from_bytes(raw, "little") & keeps | puts
    out = value.to_bytes(8 * count, "little")
    if sys.byteorder == "big":  # array("d") reads native order
        flipped = array("Q")
        flipped.frombytes(out)
        flipped.byteswap()
        out = flipped.tobytes()
    return out


@functools.lru_cache(maxsize=8)
def _repeat_word(word: int, count: int) -> int:
    return int.from_bytes(word.to_bytes(8, "little") * count, "little")


def _low_bits(values: list[float], bits: int) -> list[int]:
    """The low *bits* of each float's mantissa (its node index), read C-level."""
    view = memoryview(struct.pack(f"<{len(values)}d", *values))
    if bits <= 8:
        return list(view[0::8])
    if bits <= 16:
        return view.cast("H")[0::4].tolist()
    return [v & ((1 << bits) - 1) for v in view.cast("Q").tolist()]


def _kth_distance(pieces: list[tuple[int, int]], k: int, width: int) -> int:
    """The *k*-th smallest (1-based) of the distances ``d, d + width, ...`` of *pieces*.

    A piece ``(d, n)`` stands for the *n* distances ``d + j * width``.
    """
    steps: dict[int, int] = {}
    for d, n in pieces:
        level = d // width
        steps[level] = steps.get(level, 0) + 1
        steps[level + n] = steps.get(level + n, 0) - 1
    active = 0
    seen = 0
    levels = sorted(steps)
    for here, after in itertools.pairwise(levels):
        active += steps[here]
        block = active * (after - here)
        if seen + block >= k:
            level = here + (k - seen - 1) // active
            rank = (k - seen - 1) % active
            residues = sorted(d % width for d, n in pieces if d // width <= level < d // width + n)
            return level * width + residues[rank]
        seen += block
    raise AssertionError("fewer distances than asked for")  # pragma: no cover


class _Capper:
    """Finds each capped node's radius, the farthest distance it keeps, by rounds.

    A round walks the ring from every point of a capped node, carrying the slots
    passed on until a node takes them all, and counts what each node was
    offered. A node offered more than its cap gets (or lowers) its radius to
    its cap-th nearest offer. Radii only come down, offers only grow, so the
    rounds end, at the unique stable assignment.
    """

    def __init__(self, ring: _Ring, caps: list[int], base: list[int]) -> None:
        self.ring = ring
        self.caps = caps
        self.base = base
        self.radius: list[int | None] = [None] * len(caps)
        self.points: dict[int, list[int]] = {}
        self.pieces: dict[int, list[tuple[int, int]]] = {}

    def run(self) -> list[tuple[int, int, int]]:
        """Cap every node; return the slot ranges whose owner the cap changed."""
        over = [i for i, c in enumerate(self.base) if c > self.caps[i]]
        if not over:
            return []
        offers: dict[int, list[tuple[int, int]]] = {}
        while over:
            for i in over:
                self._cap(i, offers.get(i, []))
            counts, offers, moves = self._round()
            over = [i for i, c in counts.items() if c > self.caps[i]]
        return moves

    def _own_pieces(self, i: int) -> list[tuple[int, int]]:
        found = self.pieces.get(i)
        if found is None:
            found = self.pieces[i] = self._arc_pieces(i)
        return found

    def _arc_pieces(self, i: int) -> list[tuple[int, int]]:
        ring = self.ring
        x, q, gaps, width = ring.x, ring.q, ring.gaps, ring.width
        pieces = []
        for k in self._points_of(i):
            if gaps[k]:
                pieces.append((x(k) - q(k) * width, gaps[k]))
        return pieces

    def _points_of(self, i: int) -> list[int]:
        found = self.points.get(i)
        if found is None:
            found = self.points[i] = self.ring.indexes_of(i)
        return found

    def _cap(self, i: int, inflow: list[tuple[int, int]]) -> None:
        pieces = self._own_pieces(i) + inflow
        self.radius[i] = _kth_distance(pieces, self.caps[i], self.ring.width)

    def _round(
        self,
    ) -> tuple[dict[int, int], dict[int, list[tuple[int, int]]], list[tuple[int, int, int]]]:
        """One walk of the ring under the current radii: counts, offers and moved ranges."""
        ring = self.ring
        at, slot, ids, gaps = ring.x, ring.q, ring.ids, ring.gaps
        width, size, span = ring.width, ring.size, ring.span
        radius, base = self.radius, self.base
        total = len(ids)
        sources = sorted(
            k for i, r in enumerate(radius) if r is not None for k in self._points_of(i)
        )
        # Start at a point whose predecessor's node is uncapped: that node takes
        # whatever reaches it, so nothing flows into the first walk from behind.
        first = next(j for j, k in enumerate(sources) if radius[ids[k - 1]] is None)
        order = sources[first:] + [k + total for k in sources[:first]]
        counts = {i: base[i] for i, r in enumerate(radius) if r is not None}
        offers: dict[int, list[tuple[int, int]]] = {}
        moves: list[tuple[int, int, int]] = []
        done = -1
        for start in order:
            if start <= done:
                continue
            if start < total:
                # Most arcs of a capped node are shorter than its radius: nothing to pass on.
                g = gaps[start]
                if at(start) - (slot(start) - g + 1) * width <= radius[ids[start]]:
                    done = start
                    continue
            t = start
            flow: list[list[int]] = []  # slot ranges passed on, ascending
            while True:
                lap, k = divmod(t, total)
                x = at(k) + lap * span
                q = slot(k) + lap * size
                i = ids[k]
                g = gaps[k]
                r = radius[i]
                if flow:
                    offers.setdefault(i, []).extend(
                        (x - hi * width, hi - lo + 1) for lo, hi in flow
                    )
                own_lo = q - g + 1
                if g:
                    flow.append([own_lo, q])
                # The node keeps slot s when x - s * width <= r, that is s >= cut.
                cut = flow[0][0] if r is None else -((r - x) // width)
                kept_own = kept_behind = 0
                while flow and flow[-1][1] >= cut:
                    lo, hi = flow[-1]
                    if lo >= cut:
                        flow.pop()
                    else:
                        flow[-1][1] = cut - 1
                        lo = cut
                    if g and lo >= own_lo:
                        kept_own += hi - lo + 1
                    else:
                        kept_behind += hi - lo + 1
                        moves.append((lo, hi, i))
                counts[i] = counts.get(i, base[i]) - (g - kept_own) + kept_behind
                done = t
                t += 1
                if not flow:
                    break
        return counts, offers, moves


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
    ring = _Ring(nodes, points, bits)
    size = ring.size
    limits = caps(weights, size, balance)
    ids = ring.ids
    # Every slot to its arc's node, counted and filled at C speed; then the cap.
    index = list(
        itertools.chain.from_iterable(map(itertools.repeat, ids, [ring.q(0) + 1, *ring.gaps[1:]]))
    )
    index += [ids[0]] * (size - len(index))
    counted = Counter(index)
    moves = _Capper(ring, limits, [counted[i] for i in range(n)]).run()
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
