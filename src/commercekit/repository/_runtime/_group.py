"""The I/O side of one replication group: probes, token waits, reads with fail-over.

Decisions come from the pure core (:mod:`._routing`); replica choice, health
and ejection come from ``commercekit.balancer`` (:mod:`._replicas`). This
module carries the decisions out on connections and reports what it learns
(failures, successes, replayed positions, lag) back.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Hashable, Mapping
from types import MappingProxyType
from typing import TypeVar

import attrs
from sqlalchemy import Connection

from commercekit.balancer import Lease
from commercekit.errors import (
    ConfigurationError,
    DatabaseUnavailableError,
    SerializationFailureError,
)
from commercekit.metrics import Metrics
from commercekit.repository._engines._deadlines import statement_timeout_of
from commercekit.repository._engines._sources import position_source_for
from commercekit.repository._errors import translate
from commercekit.repository._policy._position import Position
from commercekit.repository._policy._routing import (
    FallbackReason,
    Role,
    Route,
    RoutingPolicy,
    Target,
    route_read,
)
from commercekit.repository._typing import PositionSource, Topology, TopologyNode
from commercekit.typing import MonotonicClock, WallClock

from ._background import Background, Spawn, spawn_thread
from ._leases import ReadLease, close_quietly
from ._metrics import RepositoryMetrics
from ._replicas import ReplicaSet
from ._settings import ReadSettings

__all__ = ["GroupRuntime"]

R = TypeVar("R")

_log = logging.getLogger("commercekit.repository")

ReadFn = Callable[[Connection, TopologyNode, Role], R]
_NONE: frozenset[str] = frozenset()


class GroupRuntime:
    """One primary and its replicas, as the :class:`Database` drives them."""

    def __init__(
        self,
        topology: Topology,
        *,
        policy: RoutingPolicy,
        settings: ReadSettings,
        metrics: RepositoryMetrics,
        metrics_backend: Metrics,
        clock: MonotonicClock,
        wall_clock: WallClock,
        source: PositionSource | None = None,
        sleep: Callable[[float], None] = time.sleep,
        spawn: Spawn = spawn_thread,
    ) -> None:
        self.topology = topology
        self.name = topology.name
        self.primary = topology.primary
        self.replicas = {node.name: node for node in topology.replicas}
        self.policy = policy
        self.settings = settings
        self._metrics = metrics
        self._clock = clock
        self._wall_clock = wall_clock
        self._source = source
        self._sleep = sleep
        self._spawn = spawn
        for node in topology.replicas:
            deadline = statement_timeout_of(getattr(node, "engine", None))
            if deadline is not None and settings.token_wait_s >= deadline:
                raise ConfigurationError(
                    f"token_wait_s ({settings.token_wait_s:g} s) must be shorter than replica "
                    f"{node.name!r}'s statement_timeout_s ({deadline:g} s): a token wait is one "
                    "statement on MariaDB, and one past the deadline drops the connection"
                )
        self.replica_set = ReplicaSet(
            self.name,
            # Node weights, where the node type has them (Node does; the protocol need not).
            {n.name: float(getattr(n, "weight", 1.0)) for n in topology.replicas},
            outlier_detection=settings.outlier_detection(),
            metrics=metrics_backend,
            clock=clock,
        )
        self.span_attributes: dict[bool, Mapping[str, object]] = {
            read_only: MappingProxyType(
                {
                    "db.system": self.primary.engine.dialect.name,
                    "commercekit.group": self.name,
                    "commercekit.read_only": read_only,
                }
            )
            for read_only in (False, True)
        }
        """A unit of work's trace-span attributes (by read-only), built once."""
        self.notices = self.primary.engine.dialect.name == "postgresql"
        """Whether the primary's connections collect server notices (only PostgreSQL's do)."""
        self._primary_only = Route(
            (Target(self.primary.name, Role.PRIMARY),), FallbackReason.NO_REPLICA
        )
        """The route of every read while the group has no replica (built once)."""
        self._count_primary_read = metrics.reads[Role.PRIMARY].inc
        self._count_replica_read = metrics.reads[Role.REPLICA].inc
        self._count_no_replica = metrics.fallbacks[FallbackReason.NO_REPLICA].inc
        self._probe_lock = threading.Lock()
        self._probe_work: Background | None = None
        self._next_probe_s = float("-inf")

    # -- positions ------------------------------------------------------------

    def source(self, connection: Connection) -> PositionSource:
        """The group's position source (found from the engine's dialect on first use)."""
        if self._source is None:
            self._source = position_source_for(
                connection, wall_clock=self._wall_clock, sleep=self._sleep
            )
        return self._source

    # -- probes ---------------------------------------------------------------

    def maybe_probe(self) -> None:
        """Probe the replicas if ``probe_interval_s`` has passed (one probe at a time).

        With ``background_probes`` the probe runs on its own short-lived thread
        and this returns at once.
        """
        if not self.replicas or self._clock() < self._next_probe_s:
            return
        if not self._probe_lock.acquire(blocking=False):
            return
        if not self.settings.background_probes:
            try:
                self.probe()
            finally:
                self._probe_lock.release()
            return
        self._next_probe_s = self._clock() + self.settings.probe_interval_s
        try:
            self._probe_work = self._spawn(
                self._probe_in_background,
                f"commercekit-probe-{self.name}",
                self._probe_lock.release,  # also when the probe never started
            )
        except BaseException:
            self._probe_lock.release()
            raise

    def _probe_in_background(self) -> None:
        try:
            self.probe()
        except Exception:  # a probe that failed as a whole: the next one tries again
            _log.exception("probing the replicas of group %s failed", self.name)

    def join_probe(self, timeout_s: float) -> None:
        """Wait up to *timeout_s* for a background probe in progress to end."""
        work = self._probe_work
        if work is not None:
            work.join(timeout_s)

    def probe(self) -> None:
        """Measure every replica not ejected, then put the fit ones in rotation, the rest out.

        A replica the probe cannot reach is marked down in the balancer and
        stays out until a probe reaches it again; an ejected one waits out its
        ejection (then a read tries it).
        """
        replica_set = self.replica_set
        self._next_probe_s = self._clock() + self.settings.probe_interval_s
        for name, node in self.replicas.items():
            if replica_set.ejected(name):
                continue
            try:
                with node.engine.connect() as conn:
                    status = self.source(conn).status(conn)
            except Exception:  # any failure means "not usable now"
                if replica_set.record_unreachable(name):
                    self._metrics.ejections[(self.name, name)].inc()
                continue
            replica_set.record_status(name, status)
            if status.lag_s is not None:
                self._metrics.lag[(self.name, name)].set(status.lag_s)
        replica_set.sync(self.policy)

    def report_failure(self, name: str) -> None:
        if self.replica_set.report_failure(name):
            self._metrics.ejections[(self.name, name)].inc()

    # -- routing --------------------------------------------------------------

    def route(
        self, wanted: Position | None, key: Hashable | None, avoid: frozenset[str] = _NONE
    ) -> tuple[Route, Lease | None]:
        """Decide where a read goes: the balancer's order, then the pure core.

        Returns the route and a lease on its first target if that is a replica:
        the balancer's own lease when the route starts on the replica it leased,
        else one on the replica the route starts on (None on the primary, or on a
        replica that has just left service). Replicas in *avoid* (lost by this
        read's earlier attempt, maybe not yet ejected) are left out.
        """
        if not self.replicas:  # route_read's answer for no replica, without the work
            return self._primary_only, None  # (a read-only unit of work's route)
        now = self._clock()
        order, lease = self.replica_set.order(key)
        read = ReadLease(self.replica_set, lease)
        try:
            views = self.replica_set.views(order, now)
            if avoid:
                views = [attrs.evolve(v, available=False) if v.name in avoid else v for v in views]
            route = route_read(
                self.primary.name,
                views,
                self.policy,
                wanted=wanted,
                now_s=now,
                wall_now_s=self._wall_clock(),
            )
            read.follow(route.targets[0])
        except BaseException:
            read.release()
            raise
        return route, read.lease

    def confirm(self, connection: Connection, name: str, wanted: Position) -> bool:
        """Wait (up to ``token_wait_s``) until replica *name* has replayed *wanted*."""
        started = self._clock()
        replayed = self.source(connection).wait(connection, wanted, self.settings.token_wait_s)
        elapsed = self._clock() - started
        self._metrics.token_wait.record(elapsed)
        if replayed is None:
            self.replica_set.record_wait_timeout(name, self._clock())
            self._metrics.token_timeout.inc()
            return False
        self.replica_set.record_replayed(name, replayed)
        self._metrics.token_reached.inc()
        return True

    def _node(self, target: Target) -> TopologyNode:
        return self.primary if target.role is Role.PRIMARY else self.replicas[target.name]

    # -- reads ----------------------------------------------------------------

    def run_read(self, fn: ReadFn[R], wanted: Position | None, key: Hashable | None) -> R:
        """Run *fn* on the node the route picks; a replica failing mid-read is retried once.

        A replica that fails is reported to the balancer (which ejects it) and
        the read moves to the next target (the next replica that qualifies, else
        the primary); after a second failure it goes to the primary. Errors on
        the primary are raised, translated.
        """
        if not self.replicas:
            return self._read_on_primary(fn)
        return self._serve(fn, wanted, key, keep_open=False)[3]  # type: ignore[return-value]

    def _read_on_primary(self, fn: ReadFn[R]) -> R:
        """:meth:`_attempt` of the one-target route a group without replicas gets (``NO_REPLICA``).

        Without the probe check, the route and the lease: a single-node database pays for no
        replica logic on every read.
        """
        node = self.primary
        conn: Connection | None = None
        try:
            conn = node.engine.connect()
            result = fn(conn, node, Role.PRIMARY)
        except BaseException as exc:  # a cancelled task (asyncio) gives its connection back too
            if conn is not None:
                close_quietly(conn)
            error = translate(exc, node=node.name) if isinstance(exc, Exception) else exc
            if error is exc:
                raise
            raise error from exc
        close_quietly(conn)
        self._count_primary_read()
        self._count_no_replica()
        return result

    def acquire_read(
        self, wanted: Position | None, key: Hashable | None, avoid: frozenset[str] = _NONE
    ) -> tuple[Connection, TopologyNode, Role, Lease | None]:
        """Open the connection a read-only unit of work runs on from start to end.

        The lease (if any) counts the work as load on its replica: release it
        when the unit of work ends. No replica in *avoid* is used (ones the work
        lost already, which the balancer may not have ejected yet).
        """
        conn, node, role, _, lease = self._serve(None, wanted, key, keep_open=True, avoid=avoid)
        return conn, node, role, lease

    def _serve(
        self,
        fn: ReadFn[R] | None,
        wanted: Position | None,
        key: Hashable | None,
        *,
        keep_open: bool,
        avoid: frozenset[str] = _NONE,
    ) -> tuple[Connection, TopologyNode, Role, R | None, Lease | None]:
        self.maybe_probe()
        route, lease = self.route(wanted, key, avoid)
        read = ReadLease(self.replica_set, lease)
        try:
            conn, node, role, result = self._attempt(fn, wanted, route, read, keep_open=keep_open)
        except BaseException:
            read.release()
            raise
        if not keep_open:
            read.release()  # the read is over
        return conn, node, role, result, read.lease

    def _attempt(
        self,
        fn: ReadFn[R] | None,
        wanted: Position | None,
        route: Route,
        read: ReadLease,
        *,
        keep_open: bool,
    ) -> tuple[Connection, TopologyNode, Role, R | None]:
        targets = route.targets
        reason = route.reason
        failures = 0
        i = 0
        while True:
            target = targets[i]
            read.follow(target)  # the lease moves with the read when it fails over
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
                    close_quietly(conn)
                error = translate(exc, node=node.name)
                if target.role is Role.REPLICA:
                    if isinstance(error, DatabaseUnavailableError):
                        self.report_failure(target.name)
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
            except BaseException:  # a cancelled task (asyncio) gives its connection back too
                if conn is not None:
                    close_quietly(conn)
                raise
            if not keep_open:
                close_quietly(conn)  # the read is done; a failure to close changes nothing
            if target.role is Role.REPLICA:
                self.replica_set.report_success(target.name)
                self._count_replica_read()
            else:
                self._count_primary_read()
                if reason is FallbackReason.NO_REPLICA:
                    self._count_no_replica()
                elif reason is not None:
                    self._metrics.fallbacks[reason].inc()
            return conn, node, target.role, result
