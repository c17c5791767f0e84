"""The I/O side of one replication group: probes, token waits, reads with fail-over.

Decisions come from the pure core (:mod:`._routing`); this module carries
them out on connections and feeds what it learns (failures, replayed
positions, lag) back into the :class:`ReplicaBook`.
"""

from __future__ import annotations

import contextlib
import threading
from collections.abc import Callable, Hashable
from typing import TypeVar

import attrs
from sqlalchemy import Connection

from commercekit.errors import DatabaseUnavailableError, SerializationFailureError

from ._errors import translate
from ._health import ReplicaBook
from ._metrics import RepositoryMetrics
from ._position import Position
from ._routing import FallbackReason, Role, Route, RoutingPolicy, Target, route_read
from ._sources import position_source_for
from ._typing import Clock, PositionSource, ReplicaChooser, Topology, TopologyNode

__all__ = ["GroupRuntime", "ReadSettings"]

R = TypeVar("R")

ReadFn = Callable[[Connection, TopologyNode, Role], R]


@attrs.frozen(kw_only=True)
class ReadSettings:
    """Timing of reads: how long to wait for a token, how often to probe replicas."""

    token_wait_s: float = 0.5
    probe_interval_s: float = 1.0
    eject_s: float = 1.0
    max_eject_s: float = 30.0


class GroupRuntime:
    """One primary and its replicas, as the :class:`Database` drives them."""

    def __init__(
        self,
        topology: Topology,
        *,
        policy: RoutingPolicy,
        settings: ReadSettings,
        chooser: ReplicaChooser,
        metrics: RepositoryMetrics,
        clock: Clock,
        wall_clock: Clock,
        source: PositionSource | None = None,
    ) -> None:
        self.topology = topology
        self.name = topology.name
        self.primary = topology.primary
        self.replicas = {node.name: node for node in topology.replicas}
        self._replica_names = list(self.replicas)
        self.policy = policy
        self.settings = settings
        self._chooser = chooser
        self._metrics = metrics
        self._clock = clock
        self._wall_clock = wall_clock
        self._source = source
        self.book = ReplicaBook(
            self._replica_names, eject_s=settings.eject_s, max_eject_s=settings.max_eject_s
        )
        self._probe_lock = threading.Lock()
        self._next_probe_s = float("-inf")

    # -- positions ------------------------------------------------------------

    def source(self, connection: Connection) -> PositionSource:
        """The group's position source (found from the engine's dialect on first use)."""
        if self._source is None:
            self._source = position_source_for(connection, wall_clock=self._wall_clock)
        return self._source

    # -- probes ---------------------------------------------------------------

    def maybe_probe(self) -> None:
        """Probe the replicas if ``probe_interval_s`` has passed (one thread at a time)."""
        if not self._replica_names or self._clock() < self._next_probe_s:
            return
        if self._probe_lock.acquire(blocking=False):
            try:
                self.probe()
            finally:
                self._probe_lock.release()

    def probe(self) -> None:
        """Measure every replica not currently ejected: replay position, lag, liveness."""
        now = self._clock()
        self._next_probe_s = now + self.settings.probe_interval_s
        for view in self.book.views(self._replica_names, now):
            if not view.available and view.lag_s is not None and view.replayed is not None:
                # Ejected after a failure: its ejection expiring lets one read try it.
                continue
            node = self.replicas[view.name]
            try:
                with node.engine.connect() as conn:
                    status = self.source(conn).status(conn)
            except Exception:  # any failure means "not usable now"
                self._eject(view.name)
                continue
            self.book.record_status(view.name, status)
            if status.lag_s is not None:
                self._metrics.lag[(self.name, view.name)].set(status.lag_s)

    def _eject(self, name: str) -> None:
        if self.book.report_failure(name, self._clock()):
            self._metrics.ejections[(self.name, name)].inc()

    # -- routing --------------------------------------------------------------

    def route(self, wanted: Position | None, key: Hashable | None) -> Route:
        """Decide where a read goes (pure core over the book's current views)."""
        now = self._clock()
        order = self._chooser.order(self._replica_names, key) if self._replica_names else []
        return route_read(
            self.primary.name,
            self.book.views(order, now),
            self.policy,
            wanted=wanted,
            now_s=now,
            wall_now_s=self._wall_clock(),
        )

    def confirm(self, connection: Connection, name: str, wanted: Position) -> bool:
        """Wait (up to ``token_wait_s``) until replica *name* has replayed *wanted*."""
        started = self._clock()
        replayed = self.source(connection).wait(connection, wanted, self.settings.token_wait_s)
        elapsed = self._clock() - started
        self._metrics.token_wait.record(elapsed)
        if replayed is None:
            self.book.record_wait_timeout(name, self._clock())
            self._metrics.token_timeout.inc()
            return False
        self.book.record_replayed(name, replayed)
        self._metrics.token_reached.inc()
        return True

    def _node(self, target: Target) -> TopologyNode:
        return self.primary if target.role is Role.PRIMARY else self.replicas[target.name]

    # -- reads ----------------------------------------------------------------

    def run_read(self, fn: ReadFn[R], wanted: Position | None, key: Hashable | None) -> R:
        """Run *fn* on the node the route picks; a replica failing mid-read is retried once.

        A failed replica is ejected and the read moves to the next target (the
        next replica that qualifies, else the primary); after a second failure
        it goes to the primary. Errors on the primary are raised, translated.
        """
        return self._serve(fn, wanted, key, keep_open=False)[3]  # type: ignore[return-value]

    def acquire_read(
        self, wanted: Position | None, key: Hashable | None
    ) -> tuple[Connection, TopologyNode, Role]:
        """Open the connection a read-only unit of work runs on from start to end."""
        conn, node, role, _ = self._serve(None, wanted, key, keep_open=True)
        return conn, node, role

    def _serve(
        self,
        fn: ReadFn[R] | None,
        wanted: Position | None,
        key: Hashable | None,
        *,
        keep_open: bool,
    ) -> tuple[Connection, TopologyNode, Role, R | None]:
        self.maybe_probe()
        route = self.route(wanted, key)
        targets = route.targets
        reason = route.reason
        failures = 0
        i = 0
        while True:
            target = targets[i]
            node = self._node(target)
            conn: Connection | None = None
            try:
                conn = node.engine.connect()
                if (
                    target.must_confirm
                    and wanted is not None
                    and not self.confirm(conn, target.name, wanted)
                ):
                    conn.close()
                    reason = FallbackReason.TOKEN_TIMEOUT
                    i = len(targets) - 1
                    continue
                result = None if fn is None else fn(conn, node, target.role)
            except Exception as exc:
                if conn is not None:
                    _close_quietly(conn)
                error = translate(exc, node=node.name)
                if target.role is Role.REPLICA:
                    if isinstance(error, DatabaseUnavailableError):
                        self._eject(target.name)
                        failures += 1
                    elif isinstance(error, SerializationFailureError):
                        failures += 1
                    else:
                        failures = -1
                    if failures > 0:
                        reason = FallbackReason.REPLICA_FAILED
                        i = len(targets) - 1 if failures >= 2 else i + 1
                        continue
                if error is exc:
                    raise
                raise error from exc
            if not keep_open:
                _close_quietly(conn)  # the read is done; a failure to close changes nothing
            if target.role is Role.REPLICA:
                self.book.report_success(target.name)
                self._metrics.reads[Role.REPLICA].inc()
            else:
                self._metrics.reads[Role.PRIMARY].inc()
                if reason is not None:
                    self._metrics.fallbacks[reason].inc()
            return conn, node, target.role, result


def _close_quietly(conn: Connection) -> None:
    with contextlib.suppress(Exception):  # the connection is already broken
        conn.close()
