"""The pools of an :class:`AsyncDatabase`'s engines, owned by the event loop of their first use.

An ``AsyncEngine``'s pool holds connections bound to one event loop (asyncmy's
and psycopg's sockets are registered with it, aiosqlite answers through its
futures), and SQLAlchemy says such a pool must not be shared across loops. A
database kept past ``asyncio.run()`` and used under a second one handed the
first loop's connections to the second: asyncmy failed ("attached to a
different loop", then "Event loop is closed") and left sockets unclosed, and
psycopg's and aiosqlite's outlived their loop until the collector closed them.

So the engines' pools are held by :func:`commercekit._loop_engines.engine_pools`
(a :class:`commercekit._loop.LoopPool` of :class:`LoopEngines`, each engine's
pool as one loop uses it), as the SQL idempotency store holds its own
engine's and the HTTP clients theirs. Every call that
reaches the database first asks for the running loop's; the first call on a
loop takes the engines' pools for it; as that loop shuts down (or after the
database is dropped while it runs) its probe tasks are ended and the pools
disposed, on the loop, which gives each engine a fresh pool; a later loop
uses those. A call from another loop while the owner still runs is a
:class:`~commercekit.errors.ConfigurationError`.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from commercekit._loop_engines import LoopEngines, engine_pools

from ._bridge import BackgroundTask

if TYPE_CHECKING:
    from commercekit._loop import LoopPool
    from commercekit.repository._runtime._database import Database

__all__ = ["LoopEngines", "loop_engines"]


def loop_engines(db: Database) -> LoopPool[LoopEngines]:
    """The :class:`LoopPool` of *db*'s engines (holding *db*, not the ``AsyncDatabase``).

    Releasing them ends this loop's probes first (given
    :attr:`LoopEngines.wait_s` before they are cancelled; another loop's are
    left); taking them abandons a probe lost with a loop closed by hand.
    """

    def taking() -> None:
        for group in db._groups.values():
            work = group._probe_work
            if isinstance(work, BackgroundTask):
                work.abandon_if_lost()

    def ending(wait_s: float) -> None:
        for group in db._groups.values():
            group.join_probe(wait_s)

    return engine_pools(
        "AsyncDatabase",
        db._engines,
        how_to_close="'await AsyncDatabase.dispose()'",
        taking=taking,
        ending=ending,
    )
