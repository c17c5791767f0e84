"""A count-min sketch of 4-bit-style counters with periodic halving: TinyLFU's frequency filter.

Four rows of ``width`` byte counters, each capped at 15, indexed by four
multiply-shift hashes of the key's ``hash()``. After ``10 * width`` increments
every counter is halved (one ``bytes.translate``), so old popularity fades
and the sketch follows a changing workload (Einziger et al., TinyLFU, 2017).
``hash()`` is salted per process, which is fine: the sketch lives in one.
"""

from __future__ import annotations

__all__ = ["FrequencySketch"]

_SEEDS = (0x9E3779B97F4A7C15, 0xC2B2AE3D27D4EB4F, 0x165667B19E3779F9, 0xD6E8FEB86659FD93)
_M64 = (1 << 64) - 1
_HALVE = bytes(i >> 1 for i in range(256))
_MAX = 15


class FrequencySketch:
    """Estimates how often each key was seen recently, in ``4 * width`` bytes."""

    __slots__ = ("_additions", "_bits", "_sample", "_table", "_width")

    def __init__(self, expected_entries: int) -> None:
        width = 64
        while width < expected_entries:
            width <<= 1
        self._width = width
        self._bits = width.bit_length() - 1
        self._table = bytearray(4 * width)
        self._sample = 10 * width
        self._additions = 0

    @property
    def width(self) -> int:
        """Counters per row."""
        return self._width

    def _indexes(self, key: object) -> tuple[int, int, int, int]:
        h = hash(key) & _M64
        shift = 64 - self._bits
        w = self._width
        s0, s1, s2, s3 = _SEEDS
        return (
            ((h * s0) & _M64) >> shift,
            w + (((h * s1) & _M64) >> shift),
            2 * w + (((h * s2) & _M64) >> shift),
            3 * w + (((h * s3) & _M64) >> shift),
        )

    def increment(self, key: object) -> None:
        """Count one occurrence of *key*."""
        table = self._table
        added = False
        for i in self._indexes(key):
            if table[i] < _MAX:
                table[i] += 1
                added = True
        if added:
            self._additions += 1
            if self._additions >= self._sample:
                self._table = bytearray(self._table.translate(_HALVE))
                self._additions //= 2

    def frequency(self, key: object) -> int:
        """Return the estimated recent count of *key* (never an underestimate before aging)."""
        table = self._table
        a, b, c, d = self._indexes(key)
        return min(table[a], table[b], table[c], table[d])

    def clear(self) -> None:
        """Forget everything."""
        self._table = bytearray(4 * self._width)
        self._additions = 0
