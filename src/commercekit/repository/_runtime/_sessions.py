"""The sessions a unit of work runs its statements in: plain, or read-only with fail-over."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from sqlalchemy import Connection, TextClause
from sqlalchemy import exc as sa_exc
from sqlalchemy.orm import Session

from commercekit.errors import ReadOnlyError

__all__ = [
    "FAIL_OVER",
    "LOST",
    "REBIND",
    "FailOverSession",
    "ReadOnlySession",
    "SessionFactory",
    "plain_session",
    "rebind",
]


FAIL_OVER = "commercekit_fail_over"
"""Where a read-only unit of work on a replica keeps its fail-over (session info)."""
LOST = "commercekit_lost"
"""Where a read-only unit of work keeps what its own statements' driver errors tell (info).

Only an error raised by a statement on the unit of work's own session can say
its node was lost: one passing through its block may come from a nested unit
of work on another node or shard, or from an engine used directly.
"""
REBIND = "commercekit_rebind"
"""Where a session proxied by another (an ``AsyncSession``) keeps how to move both (info)."""


def rebind(session: Session, conn: Connection) -> None:
    """Move *session* to *conn* (a fail-over), with the session proxying it if there is one.

    An ``AsyncSession`` maps its sync session's bind back to its own
    ``AsyncConnection``: binding only the sync session would leave it pointing
    at the connection that was lost.
    """
    hook = session.info.get(REBIND)
    if hook is None:
        session.bind = conn
    else:
        hook(session, conn)


def _plain_select(statement: Any) -> bool:
    """Whether *statement* only reads: a SELECT construct, or text that starts with SELECT."""
    if isinstance(statement, TextClause):
        return statement.text.lstrip().lower().startswith("select")
    return bool(getattr(statement, "is_select", False))


class ReadOnlySession(Session):
    """A session whose ORM flushes refuse to write (a routed read, a read-only unit of work).

    A routed read runs in one on the node its executor chose, which moves the
    read to the next node itself when this one fails: the session adds nothing
    to a statement but the refusal to flush changes.
    """

    def flush(self, objects: Any = None) -> None:
        if self.new or self.deleted or self.dirty:
            raise ReadOnlyError(
                "a read-only unit of work cannot write; open one with read_only=False"
            )
        super().flush(objects)


class FailOverSession(ReadOnlySession):
    """The session of a read-only unit of work: read-only, with fail-over under its first statement.

    A read-only unit of work on a replica whose first statement loses the
    replica runs that statement again on another node (the unit of work's
    fail-over, in ``info``): nothing was read yet, so no read goes back in
    time. From the first statement served on, a lost node fails the block;
    each driver error of its own statements is shown to the unit of work
    (``info[LOST]``), which takes a lost connection out of rotation.
    """

    def _execute_internal(self, statement: Any, *args: Any, **kwargs: Any) -> Any:
        try:
            try:
                result = super()._execute_internal(statement, *args, **kwargs)
            except sa_exc.DBAPIError as exc:
                fail_over = self.info.pop(FAIL_OVER, None)
                if fail_over is None or not _plain_select(statement) or not fail_over(self, exc):
                    raise
                result = super()._execute_internal(statement, *args, **kwargs)
        except sa_exc.DBAPIError as exc:
            lost = self.info.get(LOST)
            if lost is not None:
                lost(exc)
            raise
        if FAIL_OVER in self.info:
            del self.info[FAIL_OVER]  # a statement was served here: no moving from now on
        return result


SessionFactory = Callable[[Connection, bool], Session]
"""Builds a unit of work's session on its connection (the bool: read-only)."""


def plain_session(conn: Connection, read_only: bool) -> Session:
    """The session of a sync unit of work: read-only ones refuse ORM writes and fail over."""
    if read_only:
        return FailOverSession(bind=conn, autoflush=False)
    return Session(bind=conn, expire_on_commit=False)
