"""``CappedRingBalancer``: a hash ring capped to balanced shares, flattened into a table."""

from __future__ import annotations

import time

from commercekit.errors import ConfigurationError
from commercekit.metrics import Metrics
from commercekit.typing import MonotonicClock

from ._placement._capped import (
    DEFAULT_POINTS,
    DEFAULT_TABLE_BITS,
    build_capped_table,
    check_balance,
    check_capacity,
    check_ring_points,
)
from ._placement._hashing import xxh3_64_intdigest
from ._pool._member import Member, Nodes
from ._pool._options import OutlierDetection, SlowStart
from ._shown import shown
from ._table import TablePool
from ._typing import Hasher

__all__ = ["CappedRingBalancer"]


class CappedRingBalancer(TablePool):
    """Consistent hashing that is both balanced and minimal, with O(1) picks.

    A hash ring of *points* points a node (SHAKE-128 of the node's name), each
    node's share capped at *balance* times its weight's share, flattened into
    a table of ``2**table_bits`` slots. A node over its cap passes the slots
    farthest from its points on along the ring (consistent hashing with bounded
    loads, with the slots as the balls). The result:

    - every node's share of the key space is at most *balance* times its
      weight's share (by default 1.02 up to 100 nodes, 1.05 at 1,000);
    - adding or removing one of *n* nodes moves close to the ideal 1/n of keys
      (1.00-1.08x of it in the benchmark, where Maglev moves 1.5x at 100 nodes
      and 7x at 1,000);
    - the table depends only on node names, weights and the three parameters,
      so every process with the same membership picks the same nodes.

    The price is the build: about 0.4 s at 100 nodes and 2 s at 1,000 (picks
    go on reading the old table meanwhile), and 16 MiB of table at the default
    ``2**21`` slots. For small fleets, ``table_bits=16`` builds in milliseconds;
    keep about 2,000 slots a node. Health works as in every table balancer: a
    node out of service keeps its slots, its keys walk to their next slots, and
    they come back when it recovers.
    """

    def __init__(
        self,
        nodes: Nodes = (),
        *,
        name: str = "default",
        table_bits: int = DEFAULT_TABLE_BITS,
        points: int = DEFAULT_POINTS,
        balance: float | None = None,
        metrics: Metrics | None = None,
        clock: MonotonicClock = time.monotonic,
        panic_threshold: float = 0.5,
        outlier_detection: OutlierDetection | None = None,
        slow_start: SlowStart | None = None,
        balance_factor: float = 1.25,
        hasher: Hasher = xxh3_64_intdigest,
    ) -> None:
        if isinstance(table_bits, bool) or not isinstance(table_bits, int):
            raise ConfigurationError(f"table_bits must be an int, not {type(table_bits).__name__}")
        if not 10 <= table_bits <= 24:
            raise ConfigurationError(
                f"table_bits must be from 10 to 24, got {table_bits}; "
                f"keep about 2,000 slots a node, such as 16 for 30 nodes or 21 (the default)"
            )
        if isinstance(points, bool) or not isinstance(points, int) or not 1 <= points <= 65536:
            raise ConfigurationError(
                f"points must be an int from 1 to 65536, got {shown(points)}; the default is "
                f"{DEFAULT_POINTS}"
            )
        self._bits = table_bits
        self._points = points
        self._balance = check_balance(balance)
        super().__init__(
            size=1 << table_bits,
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
        check_ring_points(weights, self._points)
        check_capacity(weights, self._size, self._balance)

    def _table(self, members: list[Member], weights: list[float]) -> list[Member]:
        return build_capped_table(
            [(m.name, w) for m, w in zip(members, weights, strict=True)],
            members,
            bits=self._bits,
            points=self._points,
            balance=self._balance,
        )
