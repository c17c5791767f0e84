"""``UnitOfWork``: one transaction on one node, from its first statement to its end.

A unit of work that may write runs on its group's primary; a read-only one on a single replica
(one that has replayed the caller's token) or the primary. As a context manager it commits when
the block ends normally and rolls back when it raises. After a commit, ``token`` is the
consistency token that makes later reads see this commit.
"""

from __future__ import annotations

import contextlib
import logging
import time
from collections.abc import Callable, Hashable
from types import TracebackType
from typing import Any, TypeVar

from sqlalchemy import Connection
from sqlalchemy import exc as sa_exc
from sqlalchemy.orm import Session
from sqlalchemy.orm import exc as orm_exc

from commercekit.balancer import Lease
from commercekit.errors import CommitOutcomeUnknownError, InvalidInputError, InvalidStateError
from commercekit.metrics import TRACING_AVAILABLE, SpanHandle, current_span, span
from commercekit.repository._engines._sources import CommitTimePositions
from commercekit.repository._engines._sqlite import BEGIN_OPTION
from commercekit.repository._errors import ErrorKind, classify, describe, translate
from commercekit.repository._policy._position import CommitTime, Position
from commercekit.repository._policy._routing import Role
from commercekit.repository._policy._token import ConsistencyToken
from commercekit.repository._typing import PositionSource, TopologyNode
from commercekit.typing import WallClock

from ._group import GroupRuntime
from ._leases import close_quietly
from ._metrics import RepositoryMetrics
from ._repository import Repository
from ._sessions import FAIL_OVER, LOST, FailOverSession, SessionFactory, plain_session, rebind
from ._spans import node_span_attributes

__all__ = ["NOTICES_KEY", "UnitOfWork"]

T = TypeVar("T")

_log = logging.getLogger("commercekit.repository")

NOTICES_KEY = "commercekit_notices"
"""Where a PostgreSQL connection's notices are collected (connection-record info)."""
_SYNC_REP_CANCEL = "wait for synchronous replication"


class UnitOfWork:
    """A transaction on one node, with repositories over its session.

    Get one from :meth:`Database.unit_of_work`. ``session`` is the plain
    SQLAlchemy session for anything the repositories do not cover.
    """

    def __init__(
        self,
        group: GroupRuntime,
        *,
        read_only: bool,
        token: ConsistencyToken | None,
        key: Hashable | None,
        guard: Callable[[type[Any]], Callable[[object], None] | None],
        metrics: RepositoryMetrics,
        wall_clock: WallClock = time.time,
        session_factory: SessionFactory = plain_session,
        avoid: frozenset[str] = frozenset(),
    ) -> None:
        self._group = group
        self._session_factory = session_factory
        self._read_only = read_only
        self._incoming = token
        self._key = key
        self._guard = guard
        self._metrics = metrics
        self._wall_clock = wall_clock
        self._conn: Connection | None = None
        self._session: Session | None = None
        self._node: TopologyNode | None = None
        self._role = Role.PRIMARY
        self._repos: dict[type[Any], Repository[Any]] = {}
        self._committed_at: float | None = None
        self._token: ConsistencyToken | None = None
        self._finished = False
        self._source: PositionSource | None = None
        self._lease: Lease | None = None
        self._avoid = avoid
        """Replicas this work lost (here or in an earlier attempt): reads go elsewhere."""
        self._traced: SpanHandle | None = None  # its span while it records, to name the node

    # -- lifecycle ----------------------------------------------------------

    def begin(self) -> UnitOfWork:
        """Open the connection and the session (``with`` does this)."""
        if self._session is not None:
            raise InvalidStateError("this unit of work has begun already")
        group = self._group
        if self._read_only:
            wanted = None if self._incoming is None else self._incoming.get(group.name)
            conn, node, role, self._lease = group.acquire_read(wanted, self._key, self._avoid)
        else:
            node, role = group.primary, Role.PRIMARY
            try:
                conn = node.engine.connect()
            except Exception as exc:
                error = translate(exc, node=node.name)
                self._metrics.error(error)
                raise error from exc
            if conn.dialect.name == "sqlite":
                conn.execution_options(**{BEGIN_OPTION: "IMMEDIATE"})
            self._source = group.source(conn)
        try:
            session = self._session_factory(conn, self._read_only)
        except BaseException:
            self._conn = conn
            self.close()
            raise
        self._conn, self._node, self._role, self._session = conn, node, role, session
        if role is Role.REPLICA and isinstance(session, FailOverSession):
            session.info[FAIL_OVER] = self._fail_over
            session.info[LOST] = self._lost
        if self._traced is not None:
            self._traced.set_attributes(node_span_attributes(node, role))
        return self

    def _fail_over(self, session: Session, exc: sa_exc.DBAPIError) -> bool:
        """Move to another node after the replica was lost under the first statement.

        The replica leaves rotation and the route is taken again with the same
        token and affinity key (another replica that qualifies, else the
        primary). False when *exc* is no lost connection.
        """
        if classify(exc) is not ErrorKind.DISCONNECT:
            return False
        self._lost(exc)
        with contextlib.suppress(Exception):  # ending a transaction on a lost connection
            session.rollback()
        old, lease = self._conn, self._lease
        self._conn = self._lease = None
        if old is not None:
            with contextlib.suppress(Exception):
                old.close()
        if lease is not None:
            lease.release()
        group = self._group
        wanted = None if self._incoming is None else self._incoming.get(group.name)
        # Not the replica just lost, even while the balancer keeps it in service
        # (eject_after_failures > 1), nor one lost before.
        conn, node, role, self._lease = group.acquire_read(wanted, self._key, self._avoid)
        rebind(session, conn)
        self._conn, self._node, self._role = conn, node, role
        for repo in self._repos.values():  # same session, now on another node
            repo._node = node.name
        if self._traced is not None:  # the span names the node that serves the work
            self._traced.set_attributes(node_span_attributes(node, role))
        self._metrics.retries["read"].inc()
        return True

    def __enter__(self) -> UnitOfWork:
        if not TRACING_AVAILABLE:  # no opentelemetry-api in this process: no span, not even a no-op
            return self.begin()
        # A span (no-op without a tracer provider) covers the whole unit of work, its attributes
        # built once per group (most record nothing); the node's are added once it is chosen.
        attributes = self._group.span_attributes[self._read_only]
        self._span = span("unit_of_work", kind="client", attributes=attributes)
        self._span.__enter__()
        self._traced = current_span()  # this span, while it records (None when spans are off)
        try:
            return self.begin()
        except BaseException as exc:
            self._span.__exit__(type(exc), exc, exc.__traceback__)
            raise

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        if not TRACING_AVAILABLE:
            self._exit(exc_type, exc, tb)
            return
        try:
            self._exit(exc_type, exc, tb)
        except BaseException as error:
            self._span.__exit__(type(error), error, error.__traceback__)
            raise
        self._span.__exit__(exc_type, exc, tb)

    def _exit(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        if exc is None:
            try:
                if not self._finished:
                    self.commit()
            finally:
                self.close()
            return
        # Only its own connection lost is its node lost (its session's statements say
        # so as they fail, or SQLAlchemy invalidated it): an error passing through the
        # block (a nested unit of work's, an engine's used directly) is another node's.
        invalidated = self._conn is not None and self._conn.invalidated
        self.rollback()
        self.close()
        if isinstance(exc, sa_exc.DBAPIError | orm_exc.StaleDataError):
            error = translate(exc, node=self.node)
            self._metrics.error(error)
            if invalidated:
                self._lost(exc)
            raise error from exc

    def _lost(self, exc: BaseException) -> None:
        """A replica lost under this unit of work leaves rotation (a primary stays).

        So the work run again (``Database.run(read_only=True)`` does, passing
        on :attr:`_avoid`) goes to another node, not to the one that just
        failed, also while the balancer keeps it in service. Only for errors of
        its own connection; each node is reported once.
        """
        fresh = self._role is Role.REPLICA and self.node not in self._avoid
        if fresh and classify(exc) is ErrorKind.DISCONNECT:
            self._group.report_failure(self.node)
            self._avoid = self._avoid | {self.node}

    def commit(self) -> None:
        """Commit (a read-only unit of work just ends its transaction).

        Raises :class:`CommitOutcomeUnknownError` when the connection is lost
        during COMMIT or PostgreSQL reports its synchronous-replication wait
        cancelled: the transaction may be durable; look before redoing it.
        """
        session = self._require()
        if self._finished:
            raise InvalidStateError("this unit of work has finished already")
        if self._read_only:
            # Detach first: a rollback would expire what was read, and the objects
            # should stay usable after the block, as after a write unit of work.
            session.expunge_all()
            self._finished = True
            try:
                session.rollback()
            except sa_exc.DBAPIError as exc:
                # Everything was read: a node lost while the transaction ends changes
                # nothing the caller got (an error here would run read-only work again).
                self._lost(exc)
            return
        try:
            session.flush()
        except (sa_exc.DBAPIError, orm_exc.StaleDataError) as exc:
            self._fail(exc, committing=False)
        if self._conn is None:
            raise InvalidStateError("the unit of work has no connection to flush on")
        pg = self._group.notices  # only a PostgreSQL primary collects notices
        notices: list[str] | None = self._conn.connection.info.get(NOTICES_KEY) if pg else None
        if notices:
            notices.clear()
        try:
            session.commit()
        except sa_exc.DBAPIError as exc:
            self._fail(exc, committing=True)
        self._finished = True
        self._committed_at = self._wall_clock()
        if notices and any(_SYNC_REP_CANCEL in n for n in notices):
            error = CommitOutcomeUnknownError(
                f"the synchronous-replication wait of a COMMIT on {self.node} was cancelled: "
                f"the transaction committed there but may not be on any standby ({notices[-1]})"
            )
            self._metrics.error(error)
            raise error

    def _fail(self, exc: Exception, *, committing: bool) -> None:
        self._finished = True
        with contextlib.suppress(Exception):  # the connection is gone; the error says so
            self._require().rollback()
        error = translate(exc, node=self.node, committing=committing)
        self._metrics.error(error)
        raise error from exc

    def rollback(self) -> None:
        """Roll back and end the unit of work."""
        if self._session is not None and not self._finished:
            self._finished = True
            with contextlib.suppress(Exception):  # rolling back a broken connection
                self._session.rollback()

    def close(self) -> None:
        """Release the connection (rolling back anything uncommitted) and the replica's lease."""
        try:
            if self._session is not None:
                self._session.close()
        finally:
            if self._conn is not None:
                close_quietly(self._conn)  # a broken connection's close raises nothing here
            lease, self._lease = self._lease, None
            if lease is not None:
                lease.release()  # the replica's load, for the balancer: once, whatever happened

    def _require(self) -> Session:
        if self._session is None:
            raise InvalidStateError("the unit of work has not begun: use it in a with block")
        return self._session

    # -- access ---------------------------------------------------------------

    @property
    def session(self) -> Session:
        """The SQLAlchemy session (plain SQLAlchemy for anything else)."""
        return self._require()

    @property
    def read_only(self) -> bool:
        """True for a read-only unit of work."""
        return self._read_only

    @property
    def node(self) -> str:
        """The name of the node this unit of work runs on."""
        return self._node.name if self._node is not None else self._group.primary.name

    @property
    def role(self) -> Role:
        """Whether it runs on the primary or a replica."""
        return self._role

    @property
    def group(self) -> str:
        """The replication group (shard) it runs in."""
        return self._group.name

    def repository(self, model: type[T]) -> Repository[T]:
        """The repository of *model* over this unit of work's session."""
        repo = self._repos.get(model)
        if repo is None:
            repo = Repository(model, self._require(), node=self.node, guard=self._guard(model))
            self._repos[model] = repo
        return repo

    @property
    def consistency_token(self) -> ConsistencyToken | None:
        """After a commit: the token covering it (and the token this unit of work was given).

        Computed on first access: PostgreSQL and MariaDB need one query on the
        primary, so callers that never read it never pay for it.
        """
        if self._read_only or self._committed_at is None:
            return self._incoming
        if self._token is None:
            mine = ConsistencyToken.of(self._group.name, self._position())
            self._token = mine.merge(self._incoming)
        return self._token

    @property
    def token(self) -> str | None:
        """:attr:`consistency_token` as a string for a cookie or a header (None before commit)."""
        token = self.consistency_token
        return str(token) if token else None

    def _position(self) -> Position:
        """The commit's replication position; its commit time when the primary cannot say.

        Only the failures that mean "no position now" fall back (the primary lost
        or timed out, the query failed, an answer that is no position), and each
        is logged and counted (``commercekit_repository_token_fallbacks_total``):
        reads with the token then go to the primary for the time window. Anything
        else is a bug and is raised.
        """
        if self._committed_at is None:
            raise InvalidStateError("the unit of work has not committed")
        source = self._source
        if source is None or isinstance(source, CommitTimePositions):
            return CommitTime(self._committed_at)
        primary = self._group.primary
        try:
            with primary.engine.connect() as conn:
                return source.after_commit(conn)
        except sa_exc.DBAPIError as exc:
            reason = "unavailable" if classify(exc) is ErrorKind.DISCONNECT else "failed"
            cause: BaseException = exc
        except sa_exc.TimeoutError as exc:  # no pooled connection in time
            reason, cause = "unavailable", exc
        except InvalidInputError as exc:
            reason, cause = "unreadable", exc
        self._metrics.token_fallbacks[(self._group.name, reason)].inc()
        _log.warning(
            "the consistency token of a commit on %s (group %s) fell back to a time window "
            "(%s: %s); reads with it go to the primary for the window",
            primary.name,
            self._group.name,
            reason,
            describe(cause),
        )
        return CommitTime(self._committed_at)
