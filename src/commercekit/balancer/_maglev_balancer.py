"""``MaglevBalancer``: a Maglev lookup table with a health overlay."""

from __future__ import annotations

import time

from commercekit.errors import ConfigurationError
from commercekit.metrics import Metrics
from commercekit.typing import MonotonicClock

from ._placement._hashing import xxh3_64_intdigest
from ._placement._maglev import DEFAULT_TABLE_SIZE, MAX_TABLE_SIZE, build_table, check_table_size
from ._pool._member import Member, Nodes
from ._pool._options import OutlierDetection, SlowStart
from ._table import TablePool
from ._typing import Hasher

__all__ = ["MaglevBalancer"]


class MaglevBalancer(TablePool):
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
        clock: MonotonicClock = time.monotonic,
        panic_threshold: float = 0.5,
        outlier_detection: OutlierDetection | None = None,
        slow_start: SlowStart | None = None,
        balance_factor: float = 1.25,
        hasher: Hasher = xxh3_64_intdigest,
    ) -> None:
        super().__init__(
            size=check_table_size(table_size),
            name=name,
            metrics=metrics,
            clock=clock,
            panic_threshold=panic_threshold,
            outlier_detection=outlier_detection,
            slow_start=slow_start,
            balance_factor=balance_factor,
            hasher=hasher,
        )
        self._populate(nodes)

    def _check_weights(self, weights: list[float]) -> None:
        if len(weights) > self._size:
            raise ConfigurationError(
                f"a Maglev table of {self._size:,} slots holds at most {self._size:,} nodes "
                f"(one slot each), got {len(weights):,}; use a larger table_size (a prime, "
                f"about 100 slots a node, at most {MAX_TABLE_SIZE:,})"
            )

    def _table(self, members: list[Member], weights: list[float]) -> list[Member]:
        index = build_table(
            [(m.name, w) for m, w in zip(members, weights, strict=True)], self._size
        )
        return [members[i] for i in index]
