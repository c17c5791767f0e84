"""``AsyncDatabase``: the asyncio twin of :class:`~commercekit.repository.Database`.

Same topology, same settings, same names; every call that touches the
database is awaited. Underneath it is a :class:`Database` over the
``sync_engine`` of each ``AsyncEngine``, driven through the greenlet bridge
(:mod:`._bridge`), with the injected async sleep awaited where it sleeps and
probes started as tasks. So routing, token checks, shard choice, retry
classification and error mapping are one copy, shared with the sync side, and
so are ``run``, ``close`` and ``dispose``: each runs the :class:`Database`
method in one greenlet.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable, Hashable, Mapping
from typing import Any, Generic, TypeVar

import attrs
from sqlalchemy import Engine, MetaData

from commercekit._retry import async_sleep
from commercekit.metrics import Metrics
from commercekit.repository._engines._topology import ShardedTopology
from commercekit.repository._policy._placement import ShardPlacement, ketama_shards
from commercekit.repository._policy._routing import RoutingPolicy
from commercekit.repository._policy._token import TokenLike
from commercekit.repository._retry import RetryPolicy
from commercekit.repository._runtime._background import Background
from commercekit.repository._runtime._database import Database
from commercekit.repository._runtime._settings import ReadSettings
from commercekit.repository._runtime._uow import UnitOfWork
from commercekit.repository._typing import PositionSource, Topology
from commercekit.typing import AsyncSleep, MonotonicClock, WallClock

from ._bridge import await_, greenlet_sleep, run_sync, spawn_task
from ._loops import loop_engines
from ._repository import AsyncReadRepository
from ._uow import AsyncUnitOfWork, async_session

__all__ = ["AsyncCommitted", "AsyncDatabase"]

R = TypeVar("R")
T = TypeVar("T")


@attrs.frozen
class AsyncCommitted(Generic[R]):
    """What :meth:`AsyncDatabase.run` returns: the work's value and its unit of work."""

    value: R
    unit_of_work: AsyncUnitOfWork = attrs.field(repr=False)

    async def token(self) -> str | None:
        """The consistency token of the commit (None for read-only work without a token)."""
        return await self.unit_of_work.token()


class _GreenletDatabase(Database):
    """The sync runtime over async engines, run in greenlets by :class:`AsyncDatabase`."""

    _asyncio = True

    def _spawn(self, fn: Callable[[], None], name: str, done: Callable[[], None]) -> Background:
        return spawn_task(fn, name, done)


class AsyncDatabase:
    """Units of work and routed reads over a replicated, optionally sharded topology, awaited.

    The topology's nodes hold ``AsyncEngine``\\ s (from :func:`async_engine_from_url`,
    ``ReplicatedTopology.from_urls(..., asyncio=True)``, or ``create_async_engine``
    with psycopg, asyncmy or aiosqlite). The arguments are those of
    :class:`~commercekit.repository.Database`, and so are the promises::

        async with db.unit_of_work() as uow:
            await uow.repository(Customer).add(Customer(id=1, name="Ada"))
        token = await uow.token()
        await db.repository(Customer).get(1, token=token)

    But *sleep*, the wait between attempts, is an async sleep
    (``asyncio.sleep`` by default, or a coroutine function of the seconds):
    ``time.sleep`` is a :class:`ConfigurationError` at once, and a callable
    whose call returns no awaitable at its first wait, before anything is
    tried again.
    """

    def __init__(
        self,
        topology: Topology | ShardedTopology,
        *,
        metrics: Metrics | None = None,
        policy: RoutingPolicy | None = None,
        reads: ReadSettings | None = None,
        retry: RetryPolicy | None = None,
        shard_keys: Mapping[type[Any], str] | None = None,
        shard_placement: ShardPlacement = ketama_shards,
        position_source: PositionSource | None = None,
        clock: MonotonicClock = time.monotonic,
        wall_clock: WallClock = time.time,
        sleep: AsyncSleep = asyncio.sleep,
    ) -> None:
        self._db = _GreenletDatabase(
            topology,
            metrics=metrics,
            policy=policy,
            reads=reads,
            retry=retry,
            shard_keys=shard_keys,
            shard_placement=shard_placement,
            position_source=position_source,
            clock=clock,
            wall_clock=wall_clock,
            sleep=greenlet_sleep(async_sleep(sleep, owner="AsyncDatabase")),
        )
        self._engines = loop_engines(self._db)

    # -- shards -------------------------------------------------------------

    @property
    def shards(self) -> tuple[str, ...]:
        """The names of the replication groups, in topology order."""
        return self._db.shards

    def shard_for(self, key: Hashable) -> str:
        """The shard that owns *key* (the placement's pick for ``str(key)``)."""
        return self._db.shard_for(key)

    # -- units of work ------------------------------------------------------

    def unit_of_work(
        self,
        *,
        read_only: bool = False,
        token: TokenLike = None,
        shard_key: Hashable | None = None,
        key: Hashable | None = None,
    ) -> AsyncUnitOfWork:
        """A unit of work (use it in ``async with``): on the primary, or one replica if read-only.

        The arguments are those of :meth:`Database.unit_of_work`.
        """
        return AsyncUnitOfWork(
            self._db._unit_of_work(
                read_only=read_only,
                token=token,
                shard_key=shard_key,
                key=key,
                session_factory=async_session,
            ),
            self._engines,
        )

    async def run(
        self,
        work: Callable[[AsyncUnitOfWork], Awaitable[R]],
        *,
        read_only: bool = False,
        retry: bool = False,
        token: TokenLike = None,
        shard_key: Hashable | None = None,
        key: Hashable | None = None,
    ) -> AsyncCommitted[R]:
        """Await *work* in a unit of work and commit; return its value and unit of work.

        :meth:`Database.run` itself, run in one greenlet: the same policy, the
        same rule of what is transient, the same replicas avoided after a loss,
        with waits through the *sleep* given to the database (``asyncio.sleep``).
        """

        def once(uow: UnitOfWork) -> AsyncCommitted[R]:
            handle = AsyncUnitOfWork(uow)
            with uow:
                value = await_(work(handle))
            return AsyncCommitted(value, handle)

        await self._engines.get()
        return await run_sync(
            self._db._run,
            once,
            read_only=read_only,
            retry=retry,
            token=token,
            shard_key=shard_key,
            key=key,
            session_factory=async_session,
        )

    # -- reads outside a unit of work -----------------------------------------

    def repository(self, model: type[T]) -> AsyncReadRepository[T]:
        """Routed reads of *model* outside any unit of work (replicas first)."""
        return AsyncReadRepository(self._db.repository(model), self._engines)

    # -- operations -----------------------------------------------------------

    async def probe(self) -> None:
        """Probe every replica now (lag, replayed position, liveness)."""
        await self._engines.get()
        await run_sync(self._db.probe)

    async def create_all(self, metadata: MetaData) -> None:
        """Create *metadata*'s tables on every primary (replicas get them by replication)."""
        await self._engines.get()
        await run_sync(self._db.create_all, metadata)

    async def drop_all(self, metadata: MetaData) -> None:
        """Drop *metadata*'s tables on every primary."""
        await self._engines.get()
        await run_sync(self._db.drop_all, metadata)

    async def close(self, *, probe_wait_s: float = 5.0) -> None:
        """Remove the listeners this database put on the engines (the engines stay open).

        A background probe still running is given up to *probe_wait_s* to end,
        then cancelled and awaited: none of it runs after this returns.
        """
        await run_sync(self._db.close, probe_wait_s=probe_wait_s)

    async def dispose(self, *, probe_wait_s: float = 5.0) -> None:
        """:meth:`close`, then close every pooled connection of every node's engine.

        The engines stay usable: a later call, on this loop or another, opens
        new connections.
        """
        held = self._engines.pool
        done: list[Engine] = []
        if held is not None and not held.closed:
            held.wait_s = probe_wait_s
            done = held.disposed  # filled as aclose() releases this loop's pools
        await self._engines.aclose()  # this loop's pools (another running loop's: refused)
        await run_sync(self._close_and_dispose, probe_wait_s, done)

    def _close_and_dispose(self, probe_wait_s: float, done: list[Engine]) -> None:
        """:meth:`Database.dispose`, but each engine once: those in *done* were just disposed."""
        self._db.close(probe_wait_s=probe_wait_s)
        for engine in self._db._engines():
            if not any(engine is d for d in done):
                engine.dispose()
