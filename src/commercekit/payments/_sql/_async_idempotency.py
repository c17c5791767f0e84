"""AsyncSqlAlchemyIdempotencyStore: the SQL idempotency store on a SQLAlchemy AsyncEngine.

The store's SQL and its decisions (claims, leases, the scope lock) are
written once, in :class:`SqlAlchemyIdempotencyStore`. This twin runs those
very methods on the async engine's ``sync_engine`` inside
``greenlet_spawn``, the bridge SQLAlchemy's own ``AsyncSession`` and
``AsyncConnection.run_sync`` are built on: each driver call awaits (psycopg's
async mode, aiosqlite, asyncmy), so the event loop is never blocked, and no
rule is written twice. On SQLite the store's calls take turns under an
:class:`asyncio.Lock` (SQLite has one writer, and a thread lock held across an
await would stop the loop), the running loop's: a lock is bound to the loop it
first waited on.

Who owns the engine's pool, whose connections belong to one event loop
(asyncmy's and psycopg's sockets, aiosqlite's futures):

- an engine passed in is the caller's, as is its pool: the caller disposes it
  (``await engine.dispose()``) before its loop ends, or makes one per loop. A
  call on a later loop while the pool still holds the first loop's
  connections fails in the driver (asyncmy: "attached to a different loop");
  the store raises that as :class:`~commercekit.errors.ConfigurationError`;
- :meth:`AsyncSqlAlchemyIdempotencyStore.from_url` makes the store's own
  engine, whose pool belongs to the event loop of its first call, held by
  :func:`commercekit._loop_engines.engine_pools` as an ``AsyncDatabase``
  holds its engines' pools: that loop disposes it as it shuts down, and a
  later loop gets a fresh one.
"""

from __future__ import annotations

import asyncio
import contextlib
import weakref
from collections.abc import AsyncIterator, Callable
from typing import TYPE_CHECKING, Any, TypeVar

from sqlalchemy.util import greenlet_spawn

from commercekit._closing import AsyncClosing
from commercekit._loop import LoopPool, of_another_loop
from commercekit._loop_engines import LoopEngines, engine_pools
from commercekit.errors import ConfigurationError
from commercekit.payments._core._records import Claim, IdempotencyRecord
from commercekit.payments._sql._idempotency import SqlAlchemyIdempotencyStore

if TYPE_CHECKING:
    import sqlalchemy as sa
    from sqlalchemy.ext.asyncio import AsyncEngine

__all__ = ["AsyncSqlAlchemyIdempotencyStore"]

_T = TypeVar("_T")


class AsyncSqlAlchemyIdempotencyStore(AsyncClosing):
    """An :class:`AsyncIdempotencyStore` in the same two tables, through an :class:`AsyncEngine`.

    ``await store.create_tables()`` once (or create them with your
    migrations from :attr:`metadata`); *table_prefix* as for
    :class:`SqlAlchemyIdempotencyStore`, whose records it shares.

    *engine* stays the caller's, with its pool: dispose it before its event
    loop ends (see the module's docstring), or use :meth:`from_url`.
    """

    def __init__(self, engine: AsyncEngine, *, table_prefix: str = "commercekit_payments_") -> None:
        self._engine = engine
        self._store = SqlAlchemyIdempotencyStore(
            engine.sync_engine, table_prefix=table_prefix, _serialize=False
        )
        self._sqlite = engine.dialect.name == "sqlite"
        self._locks: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, asyncio.Lock] = (
            weakref.WeakKeyDictionary()
        )
        self._pools: LoopPool[LoopEngines] | None = None

    @classmethod
    def from_url(
        cls, url: str, *, table_prefix: str = "commercekit_payments_", **engine_options: Any
    ) -> AsyncSqlAlchemyIdempotencyStore:
        """A store on its own engine for *url* (``mysql+asyncmy://...``, ``sqlite+aiosqlite:///...``).

        *engine_options* go to ``create_async_engine``. The engine's pool
        belongs to the event loop of the store's first call: that loop
        disposes it as it shuts down (``asyncio.run()`` does), ``aclose()`` or
        ``async with`` disposes it at once, and a call on a later loop gets a
        fresh pool. A call from another loop while the first still runs is a
        :class:`ConfigurationError` (a store per loop); one made once the loop
        has begun finalizing async generators is an
        :class:`~commercekit.errors.UnavailableError`, before any query.
        """
        from sqlalchemy.ext.asyncio import create_async_engine

        store = cls(create_async_engine(url, **engine_options), table_prefix=table_prefix)
        store._pools = engine_pools(
            "AsyncSqlAlchemyIdempotencyStore",
            lambda: [store._engine.sync_engine],
            how_to_close="'await store.aclose()' or 'async with store'",
        )
        return store

    async def aclose(self) -> None:
        """Dispose the pool of the engine :meth:`from_url` made (a caller's engine: nothing)."""
        if self._pools is not None:
            await self._pools.aclose()

    @property
    def metadata(self) -> sa.MetaData:
        """The tables, for migrations."""
        return self._store.metadata

    async def create_tables(self) -> None:
        """Create the tables if they do not exist."""
        await self._run(self._store.create_tables)

    async def drop_tables(self) -> None:
        """Drop the tables (tests and teardown)."""
        await self._run(self._store.drop_tables)

    async def begin(
        self,
        key: str,
        *,
        scope: str,
        operation: str,
        fingerprint: str,
        request: str,
        owner: str,
        now: float,
        lease_s: float,
    ) -> Claim:
        """Claim *key*; see :meth:`IdempotencyStore.begin`."""
        return await self._run(
            self._store.begin,
            key,
            scope=scope,
            operation=operation,
            fingerprint=fingerprint,
            request=request,
            owner=owner,
            now=now,
            lease_s=lease_s,
        )

    async def complete(self, key: str, *, owner: str, result: str, now: float) -> None:
        """Record *result* for *key*; see :meth:`IdempotencyStore.complete`."""
        await self._run(self._store.complete, key, owner=owner, result=result, now=now)

    async def release(self, key: str, *, owner: str, unknown: bool) -> None:
        """Give *key* up; see :meth:`IdempotencyStore.release`."""
        await self._run(self._store.release, key, owner=owner, unknown=unknown)

    async def get(self, key: str) -> IdempotencyRecord | None:
        """The record of *key*, or None."""
        return await self._run(self._store.get, key)

    async def history(self, scope: str) -> list[IdempotencyRecord]:
        """The completed records of *scope*, oldest first."""
        return await self._run(self._store.history, scope)

    async def unresolved(self, now: float) -> list[IdempotencyRecord]:
        """Records whose outcome is unknown, or pending with a lease that has run out."""
        return await self._run(self._store.unresolved, now)

    async def _run(self, fn: Callable[..., _T], *args: Any, **kwargs: Any) -> _T:
        if self._pools is not None:
            await self._pools.get()
        async with self._turn():
            try:
                result: _T = await greenlet_spawn(fn, *args, **kwargs)
            except RuntimeError as exc:
                if not of_another_loop(exc):
                    raise
                raise ConfigurationError(
                    f"the engine of AsyncSqlAlchemyIdempotencyStore "
                    f"({self._engine.url.render_as_string()!r}) holds connections of another "
                    "event loop (one that has ended, or is running elsewhere): the engine is the "
                    "caller's, so dispose it ('await engine.dispose()') before its event loop "
                    "ends, make one per loop, or use AsyncSqlAlchemyIdempotencyStore.from_url"
                ) from exc
            return result

    @contextlib.asynccontextmanager
    async def _turn(self) -> AsyncIterator[None]:
        if not self._sqlite:
            yield
            return
        loop = asyncio.get_running_loop()
        lock = self._locks.get(loop)
        if lock is None:  # a lock is bound to the first loop it waits on: one per loop
            lock = self._locks[loop] = asyncio.Lock()
        async with lock:
            yield

    def __repr__(self) -> str:
        return f"AsyncSqlAlchemyIdempotencyStore({self._engine.url.render_as_string()!r})"
