"""``AsyncRepository`` and ``AsyncReadRepository``: the awaitable faces of the two repositories.

Each method runs its sync namesake (:class:`~commercekit.repository.Repository`,
:class:`~commercekit.repository.ReadRepository`) in one greenlet, so keys,
keyset pages, version checks, routing and error mapping are the sync code's.
"""

from __future__ import annotations

import builtins
from collections.abc import Callable, Hashable, Iterable, Sequence
from typing import TYPE_CHECKING, Any, Generic, TypeVar

from sqlalchemy import ColumnElement
from sqlalchemy.ext.asyncio import AsyncSession

from commercekit.repository._policy._keyset import OrderSpec
from commercekit.repository._policy._token import TokenLike
from commercekit.repository._runtime._reads import ReadRepository
from commercekit.repository._runtime._repository import Page, Repository

from ._bridge import run_sync

if TYPE_CHECKING:
    from commercekit._loop import LoopPool

    from ._loops import LoopEngines

__all__ = ["AsyncReadRepository", "AsyncRepository"]

R = TypeVar("R")
T = TypeVar("T")


class AsyncRepository(Generic[T]):
    """Typed access to one mapped class in an :class:`AsyncUnitOfWork` (``await`` each call).

    Get one from ``uow.repository(Model)``; the methods are those of
    :class:`~commercekit.repository.Repository`.
    """

    __slots__ = ("_repo", "_session")

    def __init__(self, repo: Repository[T], session: AsyncSession) -> None:
        self._repo = repo
        self._session = session

    @property
    def model(self) -> type[T]:
        """The mapped class."""
        return self._repo.model

    @property
    def session(self) -> AsyncSession:
        """The unit of work's ``AsyncSession``, for anything the repository does not cover."""
        return self._session

    async def get(self, key: Any) -> T | None:
        """The object with primary key *key* (a tuple for composite keys), or None."""
        return await run_sync(self._repo.get, key)

    async def require(self, key: Any) -> T:
        """The object with primary key *key*; :class:`NotFoundError` when there is none."""
        return await run_sync(self._repo.require, key)

    async def get_many(self, keys: Iterable[Any]) -> list[T]:
        """The objects with these keys that exist, in the order of *keys* (one query)."""
        return await run_sync(self._repo.get_many, keys)

    async def find(
        self,
        *where: ColumnElement[bool],
        order_by: Sequence[OrderSpec] = (),
        limit: int = 50,
        after: str | None = None,
        **equals: object,
    ) -> Page[T]:
        """One keyset page of matches (see :meth:`Repository.find`)."""
        return await run_sync(
            self._repo.find, *where, order_by=order_by, limit=limit, after=after, **equals
        )

    async def list(
        self,
        *where: ColumnElement[bool],
        order_by: Sequence[OrderSpec] = (),
        limit: int | None = None,
        **equals: object,
    ) -> builtins.list[T]:
        """Every match (up to *limit*), ordered by *order_by* then the primary key."""
        return await run_sync(self._repo.list, *where, order_by=order_by, limit=limit, **equals)

    async def count(self, *where: ColumnElement[bool], **equals: object) -> int:
        """How many rows match."""
        return await run_sync(self._repo.count, *where, **equals)

    async def add(self, obj: T) -> T:
        """Add *obj* and flush, so database defaults and keys are set; return it."""
        return await run_sync(self._repo.add, obj)

    async def add_all(self, objs: Iterable[T]) -> builtins.list[T]:
        """Add every object in one flush."""
        return await run_sync(self._repo.add_all, objs)

    async def update(
        self, target: T | Any, /, *, expected_version: int | None = None, **changes: Any
    ) -> T:
        """Apply *changes* and flush, checking versions (see :meth:`Repository.update`)."""
        return await run_sync(
            self._repo.update, target, expected_version=expected_version, **changes
        )

    async def delete(self, target: T | Any, /, *, expected_version: int | None = None) -> None:
        """Delete the object (or the one with key *target*), checking versions."""
        await run_sync(self._repo.delete, target, expected_version=expected_version)


class AsyncReadRepository(Generic[T]):
    """Routed reads of one mapped class outside a unit of work (``await`` each call).

    Get one from ``AsyncDatabase.repository(Model)``; the methods are those of
    :class:`~commercekit.repository.ReadRepository`: replicas first, tokens
    honoured, shards fanned out and merged.
    """

    __slots__ = ("_engines", "_reads")

    def __init__(self, reads: ReadRepository[T], engines: LoopPool[LoopEngines]) -> None:
        self._reads = reads
        self._engines = engines  # the database's pools, taken for the running loop

    async def _read(self, fn: Callable[..., R], *args: Any, **kwargs: Any) -> R:
        await self._engines.get()
        return await run_sync(fn, *args, **kwargs)

    async def get(
        self, key: Any, *, token: TokenLike = None, shard_key: Hashable | None = None
    ) -> T | None:
        """The object with primary key *key*, or None."""
        return await self._read(self._reads.get, key, token=token, shard_key=shard_key)

    async def require(
        self, key: Any, *, token: TokenLike = None, shard_key: Hashable | None = None
    ) -> T:
        """The object with primary key *key*; :class:`NotFoundError` when there is none."""
        return await self._read(self._reads.require, key, token=token, shard_key=shard_key)

    async def get_many(
        self, keys: Iterable[Any], *, token: TokenLike = None, shard_key: Hashable | None = None
    ) -> list[T]:
        """The objects with these keys that exist, in the order of *keys*."""
        return await self._read(self._reads.get_many, keys, token=token, shard_key=shard_key)

    async def find(
        self,
        *where: ColumnElement[bool],
        order_by: Sequence[OrderSpec] = (),
        limit: int = 50,
        after: str | None = None,
        token: TokenLike = None,
        shard_key: Hashable | None = None,
        **equals: object,
    ) -> Page[T]:
        """One keyset page; across shards, pages merge in order."""
        return await self._read(
            self._reads.find,
            *where,
            order_by=order_by,
            limit=limit,
            after=after,
            token=token,
            shard_key=shard_key,
            **equals,
        )

    async def list(
        self,
        *where: ColumnElement[bool],
        order_by: Sequence[OrderSpec] = (),
        limit: int | None = None,
        token: TokenLike = None,
        shard_key: Hashable | None = None,
        **equals: object,
    ) -> builtins.list[T]:
        """Every match (up to *limit*), merged in order across shards."""
        return await self._read(
            self._reads.list,
            *where,
            order_by=order_by,
            limit=limit,
            token=token,
            shard_key=shard_key,
            **equals,
        )

    async def count(
        self,
        *where: ColumnElement[bool],
        token: TokenLike = None,
        shard_key: Hashable | None = None,
        **equals: object,
    ) -> int:
        """How many rows match, summed over shards."""
        return await self._read(
            self._reads.count, *where, token=token, shard_key=shard_key, **equals
        )
