"""``ReadRepository``: reads outside a unit of work, routed to replicas, fanned out over shards.

Each call is one short read transaction on one node (a replica that has
replayed the token when one is given, else the primary), retried when a
transient error allows. Returned objects are detached: their loaded
attributes work, lazy relationships do not (use a read-only unit of work to
walk an object graph).
"""

from __future__ import annotations

import functools
import heapq
from collections.abc import Callable, Hashable, Iterable, Sequence
from typing import TYPE_CHECKING, Any, Generic, TypeVar

from sqlalchemy import ColumnElement

from commercekit.errors import InvalidInputError, NotFoundError
from commercekit.repository._policy._keyset import (
    OrderSpec,
    encode_cursor,
    merge_key,
    order_keys,
    row_values,
)
from commercekit.repository._policy._routing import Role
from commercekit.repository._policy._token import TokenLike

from ._repository import Page, Repository, model_info
from ._sessions import ReadOnlySession

if TYPE_CHECKING:
    from ._database import Database
    from ._group import GroupRuntime

__all__ = ["ReadRepository"]

T = TypeVar("T")
R = TypeVar("R")


class ReadRepository(Generic[T]):
    """Routed, read-only access to one mapped class (get one from ``Database.repository``)."""

    __slots__ = ("_db", "_model", "_pk")

    def __init__(self, model: type[T], db: Database) -> None:
        self._model = model
        self._db = db
        self._pk = model_info(model)[0]

    def _each(
        self,
        op: Callable[[Repository[T]], R],
        *,
        token: TokenLike,
        shard_key: Hashable | None,
        key: Any = None,
        groups: list[GroupRuntime] | None = None,
    ) -> list[R]:
        db = self._db
        parsed = db._token(token)
        model = self._model

        def read(conn: Any, node: Any, role: Role) -> R:
            with ReadOnlySession(bind=conn, autoflush=False) as session:
                return op(Repository(model, session, node=node.name))

        # No affinity: routed reads spread by load (a primary key as affinity key
        # would pin a hot row to one replica). For affinity, use a read-only
        # unit of work opened with key=.
        chosen = groups or db._groups_for(model, shard_key, key)
        if len(chosen) == 1:
            return [db._read_in(chosen[0], read, parsed)]
        return [db._read_in(group, read, parsed) for group in chosen]

    def get(
        self, key: Any, *, token: TokenLike = None, shard_key: Hashable | None = None
    ) -> T | None:
        """The object with primary key *key*, or None (a sharded get by key goes to its shard)."""
        for found in self._each(lambda r: r.get(key), token=token, shard_key=shard_key, key=key):
            if found is not None:
                return found
        return None

    def require(self, key: Any, *, token: TokenLike = None, shard_key: Hashable | None = None) -> T:
        """The object with primary key *key*; :class:`NotFoundError` when there is none."""
        found = self.get(key, token=token, shard_key=shard_key)
        if found is None:
            raise NotFoundError(f"no {self._model.__name__} with key {key!r}")
        return found

    def get_many(
        self, keys: Iterable[Any], *, token: TokenLike = None, shard_key: Hashable | None = None
    ) -> list[T]:
        """The objects with these keys that exist, in the order of *keys*."""
        try:
            wanted = list(dict.fromkeys(keys))
        except TypeError as exc:
            raise InvalidInputError(
                f"get_many takes an iterable of hashable {self._model.__name__} keys ({exc})"
            ) from None
        db = self._db
        by_group: dict[str, tuple[GroupRuntime, list[Any]]] = {}
        for k in wanted:
            for group in db._groups_for(self._model, shard_key, k):
                by_group.setdefault(group.name, (group, []))[1].append(k)
        found: dict[Any, T] = {}
        for group, group_keys in by_group.values():
            for batch in self._each(
                functools.partial(_get_many, keys=group_keys),
                token=token,
                shard_key=shard_key,
                groups=[group],
            ):
                for obj in batch:
                    values = tuple(getattr(obj, n) for n in self._pk)
                    found[values[0] if len(values) == 1 else values] = obj
        return [found[k] for k in wanted if k in found]

    def find(
        self,
        *where: ColumnElement[bool],
        order_by: Sequence[OrderSpec] = (),
        limit: int = 50,
        after: str | None = None,
        token: TokenLike = None,
        shard_key: Hashable | None = None,
        **equals: object,
    ) -> Page[T]:
        """One keyset page (see :meth:`Repository.find`); across shards, pages merge in order."""
        pages = self._each(
            lambda r: r.find(*where, order_by=order_by, limit=limit, after=after, **equals),
            token=token,
            shard_key=shard_key,
        )
        if len(pages) == 1:
            return pages[0]
        keys = order_keys(self._model, order_by)
        merged = list(heapq.merge(*(p.items for p in pages), key=merge_key(keys)))
        items = tuple(merged[:limit])
        more = len(merged) > limit or any(p.next_after is not None for p in pages)
        cursor = encode_cursor(row_values(items[-1], keys)) if more and items else None
        return Page(items, cursor)

    def list(
        self,
        *where: ColumnElement[bool],
        order_by: Sequence[OrderSpec] = (),
        limit: int | None = None,
        token: TokenLike = None,
        shard_key: Hashable | None = None,
        **equals: object,
    ) -> list[T]:
        """Every match (up to *limit*), merged in order across shards."""
        lists = self._each(
            lambda r: r.list(*where, order_by=order_by, limit=limit, **equals),
            token=token,
            shard_key=shard_key,
        )
        if len(lists) == 1:
            return lists[0]
        keys = order_keys(self._model, order_by)
        merged = list(heapq.merge(*lists, key=merge_key(keys)))
        return merged if limit is None else merged[:limit]

    def count(
        self,
        *where: ColumnElement[bool],
        token: TokenLike = None,
        shard_key: Hashable | None = None,
        **equals: object,
    ) -> int:
        """How many rows match, summed over shards."""
        return sum(
            self._each(lambda r: r.count(*where, **equals), token=token, shard_key=shard_key)
        )


def _get_many(repo: Repository[T], keys: list[Any]) -> list[T]:
    return repo.get_many(keys)
