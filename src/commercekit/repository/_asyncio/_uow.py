"""``AsyncUnitOfWork``: one transaction on one node, used with ``async with``.

It drives a sync :class:`~commercekit.repository.UnitOfWork` through the
greenlet bridge, so the choice of node, the commit and its error mapping, the
lost-COMMIT and synchronous-replication rules and the token are that class's.
Its session is an ``AsyncSession`` over the same connection.
"""

from __future__ import annotations

from types import TracebackType
from typing import TYPE_CHECKING, Any, TypeVar

from sqlalchemy import Connection
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncSession
from sqlalchemy.orm import Session

from commercekit.repository._policy._routing import Role
from commercekit.repository._policy._token import ConsistencyToken
from commercekit.repository._runtime._sessions import REBIND, FailOverSession
from commercekit.repository._runtime._uow import UnitOfWork

from ._bridge import run_sync
from ._repository import AsyncRepository

if TYPE_CHECKING:
    from commercekit._loop import LoopPool

    from ._loops import LoopEngines

__all__ = ["AsyncUnitOfWork", "async_session"]

T = TypeVar("T")

_ASYNC_SESSION = "commercekit_async_session"
"""Where a unit of work's sync session keeps the ``AsyncSession`` proxying it (session info)."""


def async_session(conn: Connection, read_only: bool) -> Session:
    """The session factory of an async unit of work: an ``AsyncSession`` on *conn*'s proxy.

    The ``AsyncSession`` proxies a sync Session on the unit of work's
    connection, as ``AsyncSession(bind=async_connection)`` does; the
    ``AsyncConnection`` is SQLAlchemy's own proxy of that connection (the
    lookup ``AsyncSession.connection()`` uses). Returns the sync session, which
    keeps the ``AsyncSession`` in its ``info``, with how to move both to
    another connection when a read-only unit of work fails over.
    """
    kind = FailOverSession if read_only else Session
    options: dict[str, Any] = {"autoflush": False} if read_only else {}
    session = AsyncSession(
        AsyncConnection._retrieve_proxy_for_target(conn),
        sync_session_class=kind,
        expire_on_commit=False,
        **options,
    )
    sync = session.sync_session
    sync.info[_ASYNC_SESSION] = session
    sync.info[REBIND] = _rebind
    return sync


def _rebind(sync: Session, conn: Connection) -> None:
    # Through the AsyncSession, so its bind (and what it maps back to) is the new connection.
    sync.info[_ASYNC_SESSION].bind = AsyncConnection._retrieve_proxy_for_target(conn)


class AsyncUnitOfWork:
    """A transaction on one node (get one from :meth:`AsyncDatabase.unit_of_work`).

    ``async with db.unit_of_work() as uow`` commits when the block ends
    normally and rolls back when it raises. The names are those of the sync
    :class:`~commercekit.repository.UnitOfWork`; what needs the database is
    awaited, among it :meth:`token` (after a commit, PostgreSQL and MariaDB
    need one query on the primary for it, paid only by callers that ask).
    """

    __slots__ = ("_engines", "_repos", "_uow")

    def __init__(self, uow: UnitOfWork, engines: LoopPool[LoopEngines] | None = None) -> None:
        self._repos: dict[type[Any], AsyncRepository[Any]] = {}
        self._uow = uow  # built with the async_session factory
        self._engines = engines  # the database's pools, taken for this loop on entering

    # -- lifecycle ----------------------------------------------------------

    async def __aenter__(self) -> AsyncUnitOfWork:
        if self._engines is not None:
            await self._engines.get()
        await run_sync(self._uow.__enter__)
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await run_sync(self._uow.__exit__, exc_type, exc, tb)

    async def begin(self) -> AsyncUnitOfWork:
        """Open the connection and the session (``async with`` does this)."""
        if self._engines is not None:
            await self._engines.get()
        await run_sync(self._uow.begin)
        return self

    async def commit(self) -> None:
        """Commit (see :meth:`UnitOfWork.commit`: a lost COMMIT is outcome-unknown)."""
        await run_sync(self._uow.commit)

    async def rollback(self) -> None:
        """Roll back and end the unit of work."""
        await run_sync(self._uow.rollback)

    async def close(self) -> None:
        """Release the connection (rolling back anything uncommitted) and the replica's lease."""
        await run_sync(self._uow.close)

    # -- access ---------------------------------------------------------------

    @property
    def session(self) -> AsyncSession:
        """The ``AsyncSession`` on this unit of work's connection (plain SQLAlchemy)."""
        session: AsyncSession = self._uow.session.info[_ASYNC_SESSION]  # raises before begin
        return session

    @property
    def read_only(self) -> bool:
        """True for a read-only unit of work."""
        return self._uow.read_only

    @property
    def node(self) -> str:
        """The name of the node this unit of work runs on."""
        return self._uow.node

    @property
    def role(self) -> Role:
        """Whether it runs on the primary or a replica."""
        return self._uow.role

    @property
    def group(self) -> str:
        """The replication group (shard) it runs in."""
        return self._uow.group

    def repository(self, model: type[T]) -> AsyncRepository[T]:
        """The repository of *model* over this unit of work's session.

        A read-only unit of work that fails over moves its session, and with it
        every repository it handed out, to the new node's connection.
        """
        repo = self._repos.get(model)
        if repo is None:
            repo = AsyncRepository(self._uow.repository(model), self.session)
            self._repos[model] = repo
        return repo

    async def consistency_token(self) -> ConsistencyToken | None:
        """After a commit: the token covering it (see :attr:`UnitOfWork.consistency_token`)."""
        return await run_sync(lambda: self._uow.consistency_token)

    async def token(self) -> str | None:
        """:meth:`consistency_token` as a string for a cookie or a header (None before commit)."""
        return await run_sync(lambda: self._uow.token)
