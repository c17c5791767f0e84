"""What every lookup-table placement shares: the O(1) pick, the walk, the shares.

A table placement builds a list of members, one per slot, from the membership
alone; a pick hashes the key (XXH3-64), reads slot ``hash % size``, and returns
its node when that node is in service. A node out of service stays in the
table: its keys walk to their next slots (``xxh3(key, seed=1)``, ``seed=2``,
...) until a node in service, so only its keys move, they spread over the
others by weight, and they come back when it recovers. A membership change
builds a new table while picks go on reading the old one, then swaps it in with
one assignment.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator

from commercekit.metrics import Metrics
from commercekit.typing import MonotonicClock

from ._keyed import KeyedPool
from ._placement._hashing import key_bytes, unit_interval, xxh3_64_intdigest
from ._pool._member import Member
from ._pool._options import OutlierDetection, SlowStart
from ._typing import Hasher, Key

__all__ = ["TablePool"]

_PROBES = 32
"""Fallback slots tried per key before the rendezvous order takes over."""


class TablePool(KeyedPool):
    """A keyed balancer whose placement is a lookup table; subclasses build the table."""

    def __init__(
        self,
        *,
        size: int,
        name: str,
        metrics: Metrics | None,
        clock: MonotonicClock,
        panic_threshold: float,
        outlier_detection: OutlierDetection | None,
        slow_start: SlowStart | None,
        balance_factor: float,
        hasher: Hasher,
    ) -> None:
        super().__init__(
            name=name,
            metrics=metrics,
            clock=clock,
            panic_threshold=panic_threshold,
            outlier_detection=outlier_detection,
            slow_start=slow_start,
        )
        self._size = size
        self._hash = hasher
        if hasher is not xxh3_64_intdigest:
            self.pick = self._pick_hashed  # type: ignore[method-assign]
        self._init_keyed(balance_factor)
        self._nobody = Member("", 1.0, None)
        self._nobody.live = False
        self._nobody.serving = None
        self._slots: list[Member] = [self._nobody] * self._size

    @property
    def table_size(self) -> int:
        """The number of slots in the lookup table."""
        return self._size

    def _table(self, members: list[Member], weights: list[float]) -> list[Member]:
        """The table for *members* (non-empty, sorted by name) of *weights*: a member a slot."""
        raise NotImplementedError

    def _build(self, members: list[tuple[Member, float]]) -> Callable[[], None]:
        ordered = sorted(members, key=lambda mw: mw[0].name)
        slots = (
            self._table([m for m, _ in ordered], [w for _, w in ordered])
            if ordered
            else [self._nobody] * self._size
        )

        def install() -> None:
            self._slots = slots

        return install

    def pick(self, key: Key) -> str:
        """The node for *key*: one hash, one slot, one health check when all is well.

        Raises :class:`~commercekit.errors.UnavailableError` when no node can take
        it, and :class:`~commercekit.errors.UnsupportedTypeError` for a key that is
        neither ``str`` nor bytes.
        """
        # The hot path, kept to what the floor (hash, index) needs plus one attribute
        # read: the default hash is called as a global, which CPython calls fastest.
        try:
            data = key.encode()  # type: ignore[union-attr]
        except (AttributeError, UnicodeEncodeError):
            data = key_bytes(key)  # not a str, or not valid Unicode: a typed error
        name = self._slots[xxh3_64_intdigest(data) % self._size].serving
        if name is not None:
            return name
        return self._reroute(data)

    def _pick_hashed(self, key: Key) -> str:
        # pick() with a custom hasher (installed as self.pick at construction).
        try:
            data = key.encode()  # type: ignore[union-attr]
        except (AttributeError, UnicodeEncodeError):
            data = key_bytes(key)  # not a str, or not valid Unicode: a typed error
        name = self._slots[self._hash(data) % self._size].serving
        if name is not None:
            return name
        return self._reroute(data)

    def _first(self, data: bytes) -> Member:
        return self._slots[self._hash(data) % self._size]

    def _walk(self, data: bytes) -> tuple[float, Iterator[Member]]:
        hasher = self._hash
        h = hasher(data)
        return unit_interval(h), self._slots_of(data, h, hasher, self._slots, self._size)

    @staticmethod
    def _slots_of(
        data: bytes, h: int, hasher: Hasher, slots: list[Member], size: int
    ) -> Iterator[Member]:
        yield slots[h % size]
        for seed in range(1, _PROBES + 1):
            yield slots[hasher(data, seed) % size]

    def shares(self) -> dict[str, float]:
        """Each node's share of the key space, from the table (in service or not)."""
        counts: dict[str, int] = {}
        for member in self._slots:
            if member.live:
                counts[member.name] = counts.get(member.name, 0) + 1
        return {name: count / self._size for name, count in counts.items()}
