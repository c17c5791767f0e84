"""The pools of SQLAlchemy engines, owned by the event loop of their first use.

An ``AsyncEngine``'s pool holds connections bound to one event loop (asyncmy's
and psycopg's sockets are registered with it, aiosqlite answers through its
futures), and SQLAlchemy says such a pool must not be shared across loops.
:func:`engine_pools` holds them as the HTTP clients' pools are held, by a
:class:`~commercekit._loop.LoopPool`: what it holds is :class:`LoopEngines`,
each engine's pool as one loop uses it. The first call on a loop takes the
engines' pools for it; as that loop shuts down (or ``aclose()``) they are
disposed, on the loop, which gives each engine a fresh pool; a later loop uses
those. Pools a loop left open (a loop closed by hand, or stopped for now) are
never shared: the next loop's engines get fresh ones.

``AsyncDatabase`` (every node's engine, and its replica probes ended before
the pools close) and ``AsyncSqlAlchemyIdempotencyStore.from_url`` (its own
engine) both hold their engines' pools so.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING

from commercekit._loop import LoopPool

if TYPE_CHECKING:
    from sqlalchemy import Engine
    from sqlalchemy.pool import Pool

__all__ = ["LoopEngines", "engine_pools"]


class LoopEngines:
    """The pool of each engine as one event loop uses it.

    *ending* runs first when they are released, given :attr:`wait_s` (how long
    it may wait for work of the loop still running: ``AsyncDatabase`` ends
    its probes there). :attr:`disposed` lists the engines whose pool
    :meth:`release` disposed (each has a fresh one since).
    """

    __slots__ = ("_ending", "closed", "disposed", "pools", "wait_s")

    def __init__(
        self, pools: list[tuple[Engine, Pool]], ending: Callable[[float], None] | None = None
    ) -> None:
        self.pools = pools
        self.closed = False
        self.wait_s = 5.0
        self.disposed: list[Engine] = []
        self._ending = ending

    def release(self) -> None:
        """Run *ending*, then close this loop's pools (in a greenlet, on the loop).

        An engine still holding the pool is disposed (``Engine.dispose``), which
        gives it a fresh pool for the next loop; a pool the engine no longer
        holds is closed alone.
        """
        self.closed = True
        if self._ending is not None:
            self._ending(self.wait_s)
        for engine, pool in self.pools:
            if engine.pool is pool:
                engine.dispose()
                self.disposed.append(engine)
            else:
                pool.dispose()


def engine_pools(
    owner: str,
    engines: Callable[[], Sequence[Engine]],
    *,
    how_to_close: str,
    taking: Callable[[], None] | None = None,
    ending: Callable[[float], None] | None = None,
) -> LoopPool[LoopEngines]:
    """A :class:`LoopPool` of the pools of *engines* (sync engines, an ``AsyncEngine``'s own).

    *owner* and *how_to_close* name the client and how its user closes it,
    in errors and warnings; *taking* runs as a loop takes the pools, before
    they are taken; *ending* as :class:`LoopEngines` says.
    """
    last: list[LoopEngines] = []

    def take() -> LoopEngines:
        if last and not last[0].closed:
            # Its loop is gone without closing them (closed by hand), or stopped for now
            # and will close them if it runs again: this loop must not share them.
            for engine, pool in last[0].pools:
                if engine.pool is pool:
                    engine.pool = pool.recreate()
        if taking is not None:
            taking()
        held = LoopEngines([(engine, engine.pool) for engine in engines()], ending)
        last[:] = [held]
        return held

    return LoopPool(owner, take, _release, _released, how_to_close=how_to_close)


async def _release(held: LoopEngines) -> None:
    from sqlalchemy.util import greenlet_spawn

    await greenlet_spawn(held.release)


def _released(held: LoopEngines) -> bool:
    return held.closed
