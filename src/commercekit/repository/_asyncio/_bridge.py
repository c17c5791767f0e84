"""How the asyncio twins run the one copy of the repository's logic: SQLAlchemy's greenlet bridge.

SQLAlchemy's own ``AsyncSession`` is a thin shell: each awaitable method runs
the sync ``Session`` method in a greenlet (``greenlet_spawn``), and the async
driver's awaits inside it (psycopg async, asyncmy, aiosqlite) hand control back
to the event loop (``await_``). The twins do the same one level up: an
``await db.repository(Item).get(k)`` runs the sync :class:`ReadRepository`
code (routing, token checks, fail-over, retries, error mapping) in one
greenlet, on the ``sync_engine`` of the async engines. So no rule is written
twice, and no code is generated. What the sync code does that is not a
database call gets its asyncio form here: a sleep that yields to the loop (the
injected async sleep, awaited), and background work as a task on the loop
instead of a thread, cancelled and awaited when the database closes.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable
from typing import Any, TypeVar

from sqlalchemy.util import await_, greenlet_spawn

from commercekit.repository._runtime._background import Background
from commercekit.typing import AsyncSleep

__all__ = ["BackgroundTask", "await_", "greenlet_sleep", "run_sync", "spawn_task"]

R = TypeVar("R")

_log = logging.getLogger("commercekit.repository")


async def run_sync(fn: Callable[..., R], *args: Any, **kwargs: Any) -> R:
    """Run the sync *fn* in a greenlet whose driver calls await on this event loop."""
    return await greenlet_spawn(fn, *args, **kwargs)


def greenlet_sleep(sleep: AsyncSleep) -> Callable[[float], None]:
    """The sync face of the async *sleep*: awaited on the loop from code in :func:`run_sync`."""

    def sleep_in_greenlet(seconds: float) -> None:
        await_(sleep(seconds))

    return sleep_in_greenlet


class BackgroundTask:
    """A probe started as a task: the :class:`Background` of an asyncio database."""

    __slots__ = ("_done", "task")

    def __init__(self, task: asyncio.Task[None], done: Callable[[], None]) -> None:
        self.task = task
        self._done: Callable[[], None] | None = done  # the spawn's *done*, run once

    def join(self, timeout_s: float) -> None:
        # Called inside run_sync (AsyncDatabase runs Database.close in a greenlet): the loop
        # waits. A task of another loop (one that ended) is not this loop's to await.
        if not self.task.done() and self.task.get_loop() is asyncio.get_running_loop():
            await_(_join(self.task, timeout_s))

    def finished(self, _task: object = None) -> None:
        """The task ended (its done callback), or never will: give back what it holds, once."""
        done, self._done = self._done, None
        if done is not None:
            _tasks.discard(self.task)
            done()

    def abandon_if_lost(self) -> None:
        """Run *done* now if the task's loop was closed with the task pending.

        A loop closed by hand (without cancelling its tasks) never runs or ends
        them: the probe lock the task holds would never be given back, and no
        probe would run again on a later loop.
        """
        if not self.task.done() and self.task.get_loop().is_closed():
            self.finished()


async def _join(task: asyncio.Task[None], timeout_s: float) -> None:
    """Await *task* up to *timeout_s*; then cancel it and await its end."""
    done, _ = await asyncio.wait({task}, timeout=timeout_s)
    if not done:
        task.cancel()
        _log.warning("a background probe did not end within %g s: cancelled", timeout_s)
        # Its body ends at the cancellation (the probe's sync code catches only
        # Exception): awaited, so nothing of it runs, or is left pending, after close.
        await asyncio.wait({task})


_tasks: set[asyncio.Task[None]] = set()
"""Background tasks in flight (the loop keeps only weak references to tasks)."""


def spawn_task(fn: Callable[[], None], name: str, done: Callable[[], None]) -> Background:
    """Start the sync *fn* as a task on the running loop (a probe, in the background).

    *done* runs when the task is done, also when it was cancelled before *fn*
    started (a coroutine cancelled before its first step runs none of its body).
    """

    async def body() -> None:
        with contextlib.suppress(asyncio.CancelledError):
            await greenlet_spawn(fn)

    task = asyncio.get_running_loop().create_task(body(), name=name)
    handle = BackgroundTask(task, done)
    _tasks.add(task)
    task.add_done_callback(handle.finished)
    return handle
