"""A relative-error quantile sketch (the DDSketch construction, Masson et al., VLDB 2019).

A positive value ``x`` goes to bucket ``i = ceil(log(x) / log(gamma))`` with
``gamma = (1 + a) / (1 - a)``; every value in bucket ``i`` lies in
``(gamma**(i-1), gamma**i]``, and the bucket's estimate ``2 * gamma**i / (gamma + 1)``
is within a relative error ``a`` of each of them. So a quantile read off the
buckets is within ``a`` of the exact quantile's value, whatever the data.

Two sketches with the same accuracy merge exactly by adding bucket counts, so
shards of a measurement (threads, processes, servers) combine without loss.
Memory is bounded: past ``max_buckets`` the lowest buckets fold into one,
which keeps the upper quantiles (the ones latency work reads) exact to ``a``.
The default range, 1 us to 1 h at a = 0.5 %, needs about 2,200 buckets.

Not thread-safe by itself: each writing thread of an ``InMemoryMetrics`` histogram
has a sketch of its own (see ``_shards``), and reads merge copies.
"""

from __future__ import annotations

import math
from collections.abc import Iterator

from commercekit.errors import ConfigurationError, InvalidInputError

__all__ = ["QuantileSketch"]

_DEFAULT_ACCURACY = 0.005
_DEFAULT_MAX_BUCKETS = 4096
_MIN_POSITIVE = 1e-12  # values at or below this (and zero) are counted as zero
_log2 = math.log2  # faster than math.log on CPython, and as exact for indexing
_ceil = math.ceil


def _infinite() -> InvalidInputError:
    return InvalidInputError("a QuantileSketch takes finite values only, not infinity")


class QuantileSketch:
    """Quantiles of a stream of values, each within ``relative_accuracy`` of the truth."""

    __slots__ = (
        "_buckets",
        "_count",
        "_gamma",
        "_inv_log2_gamma",
        "_max",
        "_max_buckets",
        "_min",
        "_negative",
        "_sum",
        "_zero_count",
        "relative_accuracy",
    )

    def __init__(
        self,
        relative_accuracy: float = _DEFAULT_ACCURACY,
        *,
        max_buckets: int = _DEFAULT_MAX_BUCKETS,
    ) -> None:
        if not 0 < relative_accuracy < 1:
            raise ConfigurationError(
                f"relative_accuracy must lie between 0 and 1 (0.01 is 1 %), not {relative_accuracy}"
            )
        if max_buckets < 16:
            raise ConfigurationError(f"max_buckets must be at least 16, not {max_buckets}")
        self.relative_accuracy = relative_accuracy
        self._gamma = (1 + relative_accuracy) / (1 - relative_accuracy)
        self._inv_log2_gamma = 1 / math.log2(self._gamma)
        self._max_buckets = max_buckets
        self._buckets: dict[int, int] = {}
        self._negative: dict[int, int] = {}
        self._zero_count = 0
        self._count = 0
        self._sum = 0.0
        self._min = math.inf
        self._max = -math.inf

    @property
    def count(self) -> int:
        """How many values were added."""
        return self._count

    @property
    def sum(self) -> float:
        """The sum of the values added."""
        return self._sum

    @property
    def min(self) -> float:
        """The smallest value added (``inf`` when empty)."""
        return self._min

    @property
    def max(self) -> float:
        """The largest value added (``-inf`` when empty)."""
        return self._max

    @property
    def bucket_count(self) -> int:
        """How many buckets are in use: the sketch's memory, in entries."""
        return len(self._buckets) + len(self._negative)

    def add(self, value: float) -> None:
        """Add one value. NaN and infinities are refused."""
        # The hot path of every histogram: positive finite values, in as few
        # steps as it can be written (an infinity overflows math.ceil).
        if value > _MIN_POSITIVE:
            try:
                key = _ceil(_log2(value) * self._inv_log2_gamma)
            except OverflowError:
                raise _infinite() from None
            buckets = self._buckets
            try:
                buckets[key] += 1
            except KeyError:
                buckets[key] = 1
                if len(buckets) > self._max_buckets:
                    self._collapse(buckets)
        else:
            self._add_rare(value)
        self._count += 1
        self._sum += value
        if value > self._max:
            self._max = value
        if value < self._min:
            self._min = value

    def _add_rare(self, value: float) -> None:
        if value < -_MIN_POSITIVE:
            try:
                key = _ceil(_log2(-value) * self._inv_log2_gamma)
            except OverflowError:
                raise _infinite() from None
            negative = self._negative
            negative[key] = negative.get(key, 0) + 1
            if len(negative) > self._max_buckets:
                self._collapse(negative)
        elif value == value:
            self._zero_count += 1
        else:
            raise InvalidInputError("cannot add NaN to a QuantileSketch")

    def quantile(self, q: float) -> float:
        """The value below which a fraction *q* (0 to 1) of the values lie; NaN when empty.

        The rank is ``q * (count - 1)`` rounded down, as for the exact
        "lower" quantile of the values; the result is within the relative
        accuracy of that value, and clamped to the observed min and max.
        """
        if not 0 <= q <= 1:
            raise InvalidInputError(f"quantile must lie between 0 and 1, not {q}")
        if self._count == 0:
            return math.nan
        rank = math.floor(q * (self._count - 1))
        seen = 0
        for value, count in self._ascending():
            seen += count
            if seen > rank:
                return min(max(value, self._min), self._max)
        return self._max  # unreachable: the counts add up to count

    def merge(self, other: QuantileSketch) -> None:
        """Add every value of *other* into this sketch, exactly.

        *other* may be written by another thread meanwhile: its buckets are
        copied first (one atomic step each), and its count is taken from the copy.
        """
        if other._gamma != self._gamma:
            raise InvalidInputError(
                "only sketches with the same relative_accuracy merge exactly "
                f"({self.relative_accuracy} and {other.relative_accuracy})"
            )
        zero_count = other._zero_count
        added = zero_count
        for mine, theirs in (
            (self._buckets, other._buckets.copy()),
            (self._negative, other._negative.copy()),
        ):
            for key, count in theirs.items():
                mine[key] = mine.get(key, 0) + count
                added += count
            if len(mine) > self._max_buckets:
                self._collapse(mine)
        self._zero_count += zero_count
        self._count += added
        self._sum += other._sum
        self._min = min(self._min, other._min)
        self._max = max(self._max, other._max)

    def copy(self) -> QuantileSketch:
        """An independent copy."""
        twin = QuantileSketch(self.relative_accuracy, max_buckets=self._max_buckets)
        twin.merge(self)
        return twin

    def _value(self, key: int) -> float:
        return 2 * self._gamma**key / (self._gamma + 1)

    def _ascending(self) -> Iterator[tuple[float, int]]:
        for key in sorted(self._negative, reverse=True):
            yield -self._value(key), self._negative[key]
        if self._zero_count:
            yield 0.0, self._zero_count
        for key in sorted(self._buckets):
            yield self._value(key), self._buckets[key]

    def _collapse(self, buckets: dict[int, int]) -> None:
        keys = sorted(buckets)
        excess = len(keys) - self._max_buckets
        target = keys[excess]
        folded = sum(buckets.pop(key) for key in keys[:excess])
        buckets[target] += folded

    def __repr__(self) -> str:
        return (
            f"QuantileSketch(relative_accuracy={self.relative_accuracy}, count={self._count}, "
            f"buckets={self.bucket_count})"
        )
