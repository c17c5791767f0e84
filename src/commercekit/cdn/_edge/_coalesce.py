"""Request coalescing: one flight per key, every waiter gets its result or its error at once.

The first caller for a key starts the work as a task; later callers await the
same future. When the work ends, every waiter wakes in the same loop
iteration with the same result, or the same exception (never one failing
fetch after another, as a lock-per-key would give). ``forget`` detaches the
flights in progress, so that requests after a purge start a fresh fetch.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import Generic, TypeVar

__all__ = ["Coalescer"]

T = TypeVar("T")


class Coalescer(Generic[T]):
    """Runs at most one ``work()`` per key at a time and shares its outcome with every waiter."""

    __slots__ = ("_flights", "_on_wait")

    def __init__(self, on_wait: Callable[[], None] | None = None) -> None:
        self._flights: dict[str, asyncio.Future[T]] = {}
        self._on_wait = on_wait

    def in_flight(self, key: str) -> bool:
        """Say whether work for *key* is running."""
        return key in self._flights

    def __len__(self) -> int:
        return len(self._flights)

    async def run(self, key: str, work: Callable[[], Awaitable[T]]) -> T:
        """Return the result of the flight for *key*, starting ``work()`` if none is running.

        A cancelled waiter does not cancel the flight; the others still get it.
        """
        flight = self._flights.get(key)
        if flight is None:
            flight = self.start(key, work)
        elif self._on_wait is not None:
            self._on_wait()
        return await asyncio.shield(flight)

    def start(self, key: str, work: Callable[[], Awaitable[T]]) -> asyncio.Future[T]:
        """Start a flight for *key* (or return the running one) without waiting for it."""
        flight = self._flights.get(key)
        if flight is not None:
            return flight
        task: asyncio.Task[T] = asyncio.ensure_future(_call(work))
        self._flights[key] = task
        task.add_done_callback(lambda t: self._done(key, t))
        return task

    def _done(self, key: str, task: asyncio.Future[T]) -> None:
        if self._flights.get(key) is task:
            del self._flights[key]
        if not task.cancelled():
            task.exception()  # mark retrieved: a flight nobody awaits must not warn

    def forget(self, which: Callable[[str], bool] | None = None) -> None:
        """Detach the flights whose key *which* picks (all by default).

        They finish for their waiters; new callers start afresh.
        """
        if which is None:
            self._flights.clear()
            return
        for key in [k for k in self._flights if which(k)]:
            del self._flights[key]


async def _call(work: Callable[[], Awaitable[T]]) -> T:
    return await work()
