"""The repository's seams: topologies of engines, position sources, clocks."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Protocol

import attrs
from sqlalchemy import Connection, Engine

from ._policy._position import Position

__all__ = [
    "Clock",
    "PositionSource",
    "ReplicaStatus",
    "Topology",
    "TopologyNode",
]

Clock = Callable[[], float]
"""Any clock in seconds; kept for existing imports. The repository's own signatures say
which clock they mean: :data:`commercekit.typing.MonotonicClock` (``time.monotonic``,
for intervals, probes and ejections) or :data:`commercekit.typing.WallClock`
(``time.time``, for commit times that replicas compare)."""


@attrs.frozen
class ReplicaStatus:
    """What a probe of one replica found."""

    replayed: Position | None
    """The position it has replayed (None when it cannot tell)."""
    lag_s: float | None
    """Seconds it is behind its primary (None when it cannot tell)."""
    replicating: bool = True
    """False when it is not a replica any more, or its replication is stopped."""


class PositionSource(Protocol):
    """The consistency-token source of one engine kind (PostgreSQL LSN, MariaDB GTID, time).

    Every method runs on a connection it is handed and leaves that connection's
    transaction as it found it, except where said.
    """

    def after_commit(self, connection: Connection) -> Position:
        """On the primary, right after COMMIT on *connection*: a position covering that commit."""
        ...

    def wait(self, connection: Connection, wanted: Position, timeout_s: float) -> Position | None:
        """On a replica: wait up to *timeout_s* until it has replayed *wanted*.

        Return a replayed position that covers *wanted*, or None on time-out.
        """
        ...

    def status(self, connection: Connection) -> ReplicaStatus:
        """On a replica: its replay position and lag, for the health probe."""
        ...


class TopologyNode(Protocol):
    """One database node: a name unique in its topology, and its engine."""

    @property
    def name(self) -> str:
        """A name unique in the topology, used in metrics tags and errors."""
        ...

    @property
    def engine(self) -> Engine:
        """The SQLAlchemy engine that reaches the node."""
        ...


class Topology(Protocol):
    """A replication group: one primary and its read replicas."""

    @property
    def name(self) -> str:
        """The group's name (``main``, or the shard's name); it keys the consistency token."""
        ...

    @property
    def primary(self) -> TopologyNode:
        """The node that takes every write."""
        ...

    @property
    def replicas(self) -> Sequence[TopologyNode]:
        """The nodes that may serve reads; may be empty."""
        ...
