"""The pools of an :class:`AsyncDatabase`'s engines, owned by the event loop of their first use.

An ``AsyncEngine``'s pool holds connections bound to one event loop (asyncmy's
and psycopg's sockets are registered with it, aiosqlite answers through its
futures), and SQLAlchemy says such a pool must not be shared across loops. A
database kept past ``asyncio.run()`` and used under a second one handed the
first loop's connections to the second: asyncmy failed ("attached to a
different loop", then "Event loop is closed") and left sockets unclosed, and
psycopg's and aiosqlite's outlived their loop until the collector closed them.

So the engines' pools are held as the payment transports and the CDN's HTTP
clients hold theirs, by :class:`commercekit._loop.LoopPool`: what it holds is
:class:`LoopEngines`, each engine's pool as one loop uses it. Every call that
reaches the database first asks for the running loop's; the first call on a
loop takes the engines' pools for it; as that loop shuts down (or after the
database is dropped while it runs) its probe tasks are ended and the pools
disposed, on the loop, which gives each engine a fresh pool; a later loop
uses those. A call from another loop while the owner still runs is a
:class:`~commercekit.errors.ConfigurationError`.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from commercekit._loop import LoopPool

from ._bridge import BackgroundTask, run_sync

if TYPE_CHECKING:
    from sqlalchemy import Engine
    from sqlalchemy.pool import Pool

    from commercekit.repository._runtime._database import Database

__all__ = ["LoopEngines", "loop_engines"]


class LoopEngines:
    """The pool of each engine of a database as one event loop uses it.

    *probe_wait_s* is how long :meth:`release` gives a probe still running to
    end before cancelling it (``AsyncDatabase.dispose`` passes its own).
    """

    __slots__ = ("_db", "closed", "pools", "probe_wait_s")

    def __init__(self, db: Database, pools: list[tuple[Engine, Pool]]) -> None:
        self._db = db
        self.pools = pools
        self.closed = False
        self.probe_wait_s = 5.0

    def release(self) -> None:
        """End this loop's probes and close its pools (in a greenlet, on the loop).

        An engine still holding the pool gets a fresh one (``Engine.dispose``),
        for the next loop.
        """
        self.closed = True
        for group in self._db._groups.values():
            group.join_probe(self.probe_wait_s)  # a task of this loop; another loop's is left
        for engine, pool in self.pools:
            if engine.pool is pool:
                engine.dispose()
            else:
                pool.dispose()


def loop_engines(db: Database) -> LoopPool[LoopEngines]:
    """The :class:`LoopPool` of *db*'s engines (holding *db*, not the ``AsyncDatabase``)."""
    last: list[LoopEngines] = []

    def take() -> LoopEngines:
        if last and not last[0].closed:
            # Its loop is gone without closing them (closed by hand), or stopped for now
            # and will close them if it runs again: this loop must not share them.
            for engine, pool in last[0].pools:
                if engine.pool is pool:
                    engine.pool = pool.recreate()
        for group in db._groups.values():  # a probe lost with a loop closed by hand
            work = group._probe_work
            if isinstance(work, BackgroundTask):
                work.abandon_if_lost()
        held = LoopEngines(db, [(engine, engine.pool) for engine in db._engines()])
        last[:] = [held]
        return held

    return LoopPool(
        "AsyncDatabase",
        take,
        _release,
        _released,
        how_to_close="'await AsyncDatabase.dispose()'",
    )


async def _release(held: LoopEngines) -> None:
    await run_sync(held.release)


def _released(held: LoopEngines) -> bool:
    return held.closed
