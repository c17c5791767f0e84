"""``MaglevBalancer``: the default keyed balancer, a Maglev table with a health overlay."""

from __future__ import annotations

import time
from collections.abc import Iterator

from commercekit.metrics import Metrics

from ._hashing import key_bytes, unit_interval, xxh3_64_intdigest
from ._keyed import KeyedPool
from ._maglev import DEFAULT_TABLE_SIZE, build_table, check_table_size
from ._member import Member, Nodes
from ._options import OutlierDetection, SlowStart
from ._typing import Clock, Hasher, Key

__all__ = ["MaglevBalancer"]

_PROBES = 32
"""Fallback slots tried per key before the rendezvous order takes over."""


class MaglevBalancer(KeyedPool):
    """Consistent hashing with O(1) picks: a Maglev lookup table plus a health overlay.

    A pick hashes the key (XXH3-64), reads one table slot, and returns its node
    if that node is in service. A node out of service (down, ejected) stays in
    the table: its keys walk to their next slots (``xxh3(key, seed=1)``,
    ``seed=2``, ...) until a node in service, so only its keys move, they
    spread over the others by weight, and they come back when it recovers. A
    membership change builds a new table (tens of milliseconds) while picks go
    on reading the old one, then swaps it in with one assignment.

    Every node's share of the key space is its weight's share to within one
    slot of *table_size* (a prime; keep about 100 slots a node or more). The
    table depends only on node names, weights and *table_size*, so every
    process with the same membership picks the same nodes. The price of that
    balance: adding or removing one of *n* nodes moves more than 1/n of keys
    (about 1.6x at 100 nodes, 7x at 1000 with the default table; see
    docs/balancer.md). Where that matters more than balance, use
    :class:`KetamaBalancer`.
    """

    def __init__(
        self,
        nodes: Nodes = (),
        *,
        name: str = "default",
        table_size: int = DEFAULT_TABLE_SIZE,
        metrics: Metrics | None = None,
        clock: Clock = time.monotonic,
        panic_threshold: float = 0.5,
        outlier_detection: OutlierDetection | None = None,
        slow_start: SlowStart | None = None,
        balance_factor: float = 1.25,
        hasher: Hasher = xxh3_64_intdigest,
    ) -> None:
        super().__init__(
            name=name,
            metrics=metrics,
            clock=clock,
            panic_threshold=panic_threshold,
            outlier_detection=outlier_detection,
            slow_start=slow_start,
        )
        self._size = check_table_size(table_size)
        self._hash = hasher
        if hasher is not xxh3_64_intdigest:
            self.pick = self._pick_hashed  # type: ignore[method-assign]
        self._init_keyed(balance_factor)
        self._nobody = Member("", 1.0, None)
        self._nobody.live = False
        self._nobody.serving = None
        self._slots: list[Member] = [self._nobody] * self._size
        self._populate(nodes)

    @property
    def table_size(self) -> int:
        """The number of slots in the lookup table."""
        return self._size

    def _rebuild(self) -> None:
        members = sorted(self._members.values(), key=lambda m: m.name)
        if not members:
            self._slots = [self._nobody] * self._size
            return
        index = build_table([(m.name, m.weight) for m in members], self._size)
        self._slots = [members[i] for i in index]

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
        except AttributeError:
            data = key_bytes(key)
        name = self._slots[xxh3_64_intdigest(data) % self._size].serving
        if name is not None:
            return name
        return self._reroute(data)

    def _pick_hashed(self, key: Key) -> str:
        # pick() with a custom hasher (installed as self.pick at construction).
        try:
            data = key.encode()  # type: ignore[union-attr]
        except AttributeError:
            data = key_bytes(key)
        name = self._slots[self._hash(data) % self._size].serving
        if name is not None:
            return name
        return self._reroute(data)

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
