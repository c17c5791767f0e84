"""AsyncSqlAlchemyIdempotencyStore: the SQL idempotency store on a SQLAlchemy AsyncEngine.

The store's SQL and its decisions (claims, leases, the scope lock) are
written once, in :class:`SqlAlchemyIdempotencyStore`. This twin runs those
very methods on the async engine's ``sync_engine`` inside
``greenlet_spawn``, the bridge SQLAlchemy's own ``AsyncSession`` and
``AsyncConnection.run_sync`` are built on: each driver call awaits (psycopg's
async mode, aiosqlite, asyncmy), so the event loop is never blocked, and no
rule is written twice. On SQLite the store's calls take turns under an
:class:`asyncio.Lock` (SQLite has one writer, and a thread lock held across an
await would stop the loop).
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Callable
from typing import TYPE_CHECKING, Any, TypeVar

from sqlalchemy.util import greenlet_spawn

from commercekit.payments._core._records import Claim, IdempotencyRecord
from commercekit.payments._sql._idempotency import SqlAlchemyIdempotencyStore

if TYPE_CHECKING:
    import sqlalchemy as sa
    from sqlalchemy.ext.asyncio import AsyncEngine

__all__ = ["AsyncSqlAlchemyIdempotencyStore"]

_T = TypeVar("_T")


class AsyncSqlAlchemyIdempotencyStore:
    """An :class:`AsyncIdempotencyStore` in the same two tables, through an :class:`AsyncEngine`.

    ``await store.create_tables()`` once (or create them with your
    migrations from :attr:`metadata`); *table_prefix* as for
    :class:`SqlAlchemyIdempotencyStore`, whose records it shares.
    """

    def __init__(self, engine: AsyncEngine, *, table_prefix: str = "commercekit_payments_") -> None:
        self._engine = engine
        self._store = SqlAlchemyIdempotencyStore(
            engine.sync_engine, table_prefix=table_prefix, _serialize=False
        )
        self._serial = asyncio.Lock() if engine.dialect.name == "sqlite" else None

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
        async with self._turn():
            result: _T = await greenlet_spawn(fn, *args, **kwargs)
            return result

    @contextlib.asynccontextmanager
    async def _turn(self) -> AsyncIterator[None]:
        if self._serial is None:
            yield
            return
        async with self._serial:
            yield

    def __repr__(self) -> str:
        return f"AsyncSqlAlchemyIdempotencyStore({self._engine.url.render_as_string()!r})"
