"""The capped ring's points: every node's, in ring order, as the cap needs them.

A point is a float in ``[1, 2)`` whose 52 mantissa bits are its position, the
lowest 8 (16 past 256 nodes) replaced by its node's index: one C-level sort
then orders the points and carries their owners, and no two nodes can tie.
Everything per point is done by C-level passes (``map``, ``struct``, big-int
masks), since a build handles two million points at 1,000 nodes.
"""

from __future__ import annotations

import functools
import itertools
import operator
import struct
import sys
from array import array
from bisect import bisect_left
from collections.abc import Sequence
from hashlib import shake_128

__all__ = ["POSITION_BITS", "Ring", "ring_points_bytes"]

_PREFIX = b"commercekit-ring\x00"
POSITION_BITS = 52
"""Ring positions have 52 bits: a float's mantissa, which CPython sorts fastest."""
_SPAN = float(1 << POSITION_BITS)


class Ring:
    """The points of every node in ring order: their owners, slots and gaps."""

    def __init__(self, nodes: Sequence[tuple[str, float]], points: int, bits: int) -> None:
        n = len(nodes)
        mean = sum(weight for _, weight in nodes) / n
        # Whole bytes, so the indexes can be read back without a loop.
        index_bits = 8 if n <= 256 else 16 if n <= 65536 else 32
        self.counts = [max(1, round(points * weight / mean)) for _, weight in nodes]
        word = (1 << POSITION_BITS) - 1 - ((1 << index_bits) - 1)
        one = 0x3FF << POSITION_BITS  # the exponent of 1.0
        self.nodes = nodes
        self.word, self.one = word, one
        ring = array("d")
        for i in range(n):
            ring.frombytes(self._encoded(i))
        self.ring = ordered = sorted(ring)
        self.size = size = 1 << bits
        self.scale = scale = float(size)
        self.width = 1 << (POSITION_BITS - bits)
        self.span = 1 << POSITION_BITS
        self.ids = _low_bits(ordered, index_bits)
        # Each point's slot is int(f * size) - size; only the differences are kept
        # for all points (small ints, which CPython does not allocate).
        self.gaps = [
            self.q(0) + size - self.q(len(ordered) - 1),
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
        """Where node *i*'s points sit in ring order (a point drawn twice, once)."""
        ring = self.ring
        return sorted({bisect_left(ring, f) for f in array("d", self._encoded(i))})


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
