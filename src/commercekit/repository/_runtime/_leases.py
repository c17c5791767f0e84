"""What a routed read holds while it runs: its replica's balancer lease, its connection."""

from __future__ import annotations

from sqlalchemy import Connection

from commercekit.balancer import Lease
from commercekit.repository._policy._routing import Role, Target

from ._replicas import ReplicaSet

__all__ = ["ReadLease", "close_quietly"]


class ReadLease:
    """The balancer lease of one read: on the replica it runs on now, none on the primary.

    A read that fails over to another target moves its lease there, so every
    replica read counts as that replica's load while it runs, and each lease is
    released exactly once (``read.lease`` is None once released or handed on).
    """

    __slots__ = ("_replicas", "lease")

    def __init__(self, replicas: ReplicaSet, lease: Lease | None) -> None:
        self._replicas = replicas
        self.lease = lease

    def follow(self, target: Target) -> None:
        """Hold the lease on *target* if it is a replica (moving it there), else none."""
        on_replica = target.role is Role.REPLICA
        lease, self.lease = self.lease, None
        if lease is not None:
            if on_replica and lease.node == target.name:
                self.lease = lease
                return
            lease.release()
        if on_replica:
            self.lease = self._replicas.lease(target.name)

    def release(self) -> None:
        """Release the lease held, if any (once: later calls do nothing)."""
        lease, self.lease = self.lease, None
        if lease is not None:
            lease.release()


def close_quietly(conn: Connection) -> None:
    """Close *conn*, which may be broken already (a failure to close changes nothing)."""
    try:  # noqa: SIM105 - contextlib.suppress would cost three calls on every read
        conn.close()
    except Exception:  # noqa: S110 - the connection is already broken
        pass
