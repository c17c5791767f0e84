"""The routing decisions, pure: which node serves a statement, given what is known.

Nothing here does I/O or reads a clock: the caller passes the replicas' last
known state and the current times, and gets back a :class:`Route`, the
ordered list of nodes to try. The synchronous :class:`Database` and a future
asyncio twin share these functions, and the Hypothesis tests check them
without a server:

* a write goes to the primary, always (:func:`route_write`);
* a read that carries a position only goes to a replica known to have
  replayed it, or to one the executor must first confirm has
  (``must_confirm``), and ends with the primary (:func:`route_read`);
* lagging replicas leave the rotation, but never below ``min_replicas`` while
  their lag stays under ``tolerable_lag_s`` (:func:`in_rotation`).
"""

from __future__ import annotations

import enum
from collections.abc import Sequence
from typing import Any

import attrs

from commercekit.errors import ConfigurationError

from ._position import CommitTime, Position, covers

__all__ = [
    "FallbackReason",
    "ReplicaView",
    "Role",
    "Route",
    "RoutingPolicy",
    "Target",
    "in_rotation",
    "route_read",
    "route_write",
]


class Role(enum.Enum):
    """A node's part in its group."""

    PRIMARY = "primary"
    REPLICA = "replica"


class FallbackReason(enum.Enum):
    """Why a read may end on the primary rather than a replica."""

    NO_REPLICA = "no_replica"
    """No replica is in rotation (none configured, all ejected or lagging)."""
    TIME_WINDOW = "time_window"
    """The token is a commit time still inside the read-your-writes window."""
    TOKEN_UNREPLAYED = "token_unreplayed"  # noqa: S105 - not a secret
    """No replica in rotation has replayed the token, or is worth waiting for."""
    TOKEN_TIMEOUT = "token_timeout"  # noqa: S105 - not a secret
    """A replica did not replay the token within ``token_wait_s`` (set by the executor)."""
    REPLICA_FAILED = "replica_failed"
    """A replica failed during the read (set by the executor)."""


def _non_negative(_instance: object, attribute: attrs.Attribute[Any], value: Any) -> None:
    if value is not None and not value >= 0:
        raise ConfigurationError(f"{attribute.name} must be >= 0, got {value!r}")


@attrs.frozen(kw_only=True)
class RoutingPolicy:
    """How reads pick replicas (immutable; pass a new one to change it).

    * ``max_lag_s``: replicas lagging more leave the rotation (None: no limit).
    * ``min_replicas`` and ``tolerable_lag_s``: if fewer than ``min_replicas``
      are under ``max_lag_s``, the least lagging ones under ``tolerable_lag_s``
      stay in, so one slow replica does not send every read to the primary.
    * ``read_your_writes_window_s``: a read carrying a commit-time token (the
      fallback for engines without positions) goes to the primary within this
      many seconds of the commit, as Rails' automatic role switching does.
    * ``stall_backoff_s``: after a replica failed to replay a token in time it
      is not waited on again for this long (it still serves reads it has replayed).
    """

    max_lag_s: float | None = attrs.field(default=None, validator=_non_negative)
    tolerable_lag_s: float | None = attrs.field(default=None, validator=_non_negative)
    min_replicas: int = attrs.field(default=1, validator=_non_negative)
    read_your_writes_window_s: float = attrs.field(default=2.0, validator=_non_negative)
    stall_backoff_s: float = attrs.field(default=1.0, validator=_non_negative)

    def __attrs_post_init__(self) -> None:
        if (
            self.max_lag_s is not None
            and self.tolerable_lag_s is not None
            and self.tolerable_lag_s < self.max_lag_s
        ):
            raise ConfigurationError(
                f"tolerable_lag_s ({self.tolerable_lag_s}) must be >= max_lag_s ({self.max_lag_s})"
            )


@attrs.frozen(kw_only=True)
class ReplicaView:
    """What is known about one replica at decision time."""

    name: str
    available: bool = True
    """False while the health overlay has it ejected."""
    lag_s: float | None = None
    """Last measured replay lag in seconds (None: not measured yet)."""
    replayed: Position | None = None
    """The latest position this replica was seen to have replayed."""
    wait_failed_at_s: float | None = None
    """Monotonic time of its last token wait that timed out."""


@attrs.frozen
class Target:
    """One node to try. ``must_confirm``: check the token is replayed there before reading."""

    name: str
    role: Role
    must_confirm: bool = False


@attrs.frozen
class Route:
    """Nodes to try, in order; a read route always ends with the primary."""

    targets: tuple[Target, ...]
    reason: FallbackReason | None = None
    """Why the primary is (or may be) used; None when replicas lead without doubt."""


def route_write(primary: str) -> Route:
    """Every statement of a unit of work that may write runs on the primary."""
    return Route((Target(primary, Role.PRIMARY),))


def in_rotation(replicas: Sequence[ReplicaView], policy: RoutingPolicy) -> list[ReplicaView]:
    """The replicas that may serve reads now, in the order given."""
    available = [r for r in replicas if r.available]
    limit = policy.max_lag_s

    def fresh(r: ReplicaView) -> bool:
        return limit is None or r.lag_s is None or r.lag_s <= limit

    chosen = {r.name for r in available if fresh(r)}
    missing = policy.min_replicas - len(chosen)
    if missing > 0:
        ceiling = policy.tolerable_lag_s
        spare = sorted(
            (
                r
                for r in available
                if r.name not in chosen and (ceiling is None or (r.lag_s or 0.0) <= ceiling)
            ),
            key=lambda r: r.lag_s or 0.0,
        )
        chosen.update(r.name for r in spare[:missing])
    return [r for r in available if r.name in chosen]


def route_read(
    primary: str,
    replicas: Sequence[ReplicaView],
    policy: RoutingPolicy,
    *,
    wanted: Position | None = None,
    now_s: float = 0.0,
    wall_now_s: float = 0.0,
) -> Route:
    """Route a read that must see *wanted* (None: any replica will do).

    *replicas* come in the caller's preference order (the balancer's pick
    first). *now_s* is monotonic time (for ``wait_failed_at_s``); *wall_now_s*
    is epoch seconds (for commit-time tokens).
    """
    last = Target(primary, Role.PRIMARY)
    rotation = in_rotation(replicas, policy)
    if not rotation:
        return Route((last,), FallbackReason.NO_REPLICA)
    if wanted is None:
        return Route((*(Target(r.name, Role.REPLICA) for r in rotation), last))
    if isinstance(wanted, CommitTime):
        if wall_now_s - wanted.at_s < policy.read_your_writes_window_s:
            return Route((last,), FallbackReason.TIME_WINDOW)
        return Route((*(Target(r.name, Role.REPLICA) for r in rotation), last))
    ready = [
        Target(r.name, Role.REPLICA)
        for r in rotation
        if r.replayed is not None and covers(r.replayed, wanted)
    ]
    if ready:
        return Route((*ready, last))
    waitable = [
        r
        for r in rotation
        if r.wait_failed_at_s is None or now_s - r.wait_failed_at_s >= policy.stall_backoff_s
    ]
    if not waitable:
        return Route((last,), FallbackReason.TOKEN_UNREPLAYED)
    first = waitable[0]
    return Route((Target(first.name, Role.REPLICA, must_confirm=True), last))
