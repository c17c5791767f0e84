"""Repositories and units of work over replicated, sharded SQLAlchemy topologies.

Applications define their SQLAlchemy 2.x models; a :class:`Database` over a
topology (a primary and its replicas, or shards of such groups) hands out
units of work (on the primary, or read-only on one replica) and routed
reads. Writes return a consistency token; reads that carry it are served
only by replicas that have replayed it. :class:`AsyncDatabase` is the asyncio
twin (``async with db.unit_of_work() as uow``) over the same logic. See
``docs/repository.md``.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from commercekit.errors import (
    CommitOutcomeUnknownError,
    DatabaseUnavailableError,
    ReadOnlyError,
    RepositoryError,
    SerializationFailureError,
    StaleVersionError,
)

from ._engines._sources import CommitTimePositions, MariaDbPositions, PostgresPositions
from ._engines._sqlite import configure_sqlite, sqlite_engine
from ._engines._topology import (
    Node,
    ReplicatedTopology,
    ShardedTopology,
    async_engine_from_url,
    engine_from_url,
)
from ._policy._keyset import OrderSpec, decode_cursor, encode_cursor
from ._policy._placement import ShardPlacement, capped_shards, ketama_shards
from ._policy._position import CommitTime, GtidPosition, Lsn, Position
from ._policy._reshard import keys_to_move
from ._policy._routing import (
    FallbackReason,
    ReplicaView,
    Role,
    Route,
    RoutingPolicy,
    Target,
    in_rotation,
    route_read,
    route_write,
)
from ._policy._token import ConsistencyToken, TokenLike
from ._retry import RetryPolicy
from ._runtime._database import Database
from ._runtime._outbox import Outbox, OutboxClaim, OutboxEvent, new_event_id
from ._runtime._reads import ReadRepository
from ._runtime._repository import Page, Repository, Versioned
from ._runtime._run import Committed
from ._runtime._settings import ReadSettings
from ._runtime._uow import UnitOfWork
from ._typing import Clock, PositionSource, ReplicaStatus, Topology, TopologyNode

if TYPE_CHECKING:
    from ._asyncio import (
        AsyncCommitted,
        AsyncDatabase,
        AsyncReadRepository,
        AsyncRepository,
        AsyncUnitOfWork,
    )

_ASYNC = frozenset(
    {"AsyncCommitted", "AsyncDatabase", "AsyncReadRepository", "AsyncRepository", "AsyncUnitOfWork"}
)


def __getattr__(name: str) -> Any:
    """The asyncio twins, imported on first use (SQLAlchemy's asyncio support costs ~75 ms)."""
    if name in _ASYNC:
        from . import _asyncio

        value = getattr(_asyncio, name)
        globals()[name] = value
        return value
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


__all__ = [
    "AsyncCommitted",
    "AsyncDatabase",
    "AsyncReadRepository",
    "AsyncRepository",
    "AsyncUnitOfWork",
    "Clock",
    "CommitOutcomeUnknownError",
    "CommitTime",
    "CommitTimePositions",
    "Committed",
    "ConsistencyToken",
    "Database",
    "DatabaseUnavailableError",
    "FallbackReason",
    "GtidPosition",
    "Lsn",
    "MariaDbPositions",
    "Node",
    "OrderSpec",
    "Outbox",
    "OutboxClaim",
    "OutboxEvent",
    "Page",
    "Position",
    "PositionSource",
    "PostgresPositions",
    "ReadOnlyError",
    "ReadRepository",
    "ReadSettings",
    "ReplicaStatus",
    "ReplicaView",
    "ReplicatedTopology",
    "Repository",
    "RepositoryError",
    "RetryPolicy",
    "Role",
    "Route",
    "RoutingPolicy",
    "SerializationFailureError",
    "ShardPlacement",
    "ShardedTopology",
    "StaleVersionError",
    "Target",
    "TokenLike",
    "Topology",
    "TopologyNode",
    "UnitOfWork",
    "Versioned",
    "async_engine_from_url",
    "capped_shards",
    "configure_sqlite",
    "decode_cursor",
    "encode_cursor",
    "engine_from_url",
    "in_rotation",
    "ketama_shards",
    "keys_to_move",
    "new_event_id",
    "route_read",
    "route_write",
    "sqlite_engine",
]
