"""What the event-loop tests of every pooled client share: another running loop, a late call.

A client whose pool belongs to one event loop (``RedisStore.from_url``, the
SQL idempotency store's own engine, the payment transports, the CDN's HTTP
clients) is checked the same ways: called while another loop still runs it
(a ``ConfigurationError``), and called from an async generator's ``finally``
as ``asyncio.run()`` finalizes it (refused before anything is sent, nothing
left open or warned about).
"""

from __future__ import annotations

import asyncio
import contextlib
import gc
import threading
import warnings
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from typing import Generic, TypeVar

O = TypeVar("O")  # noqa: E741 - the client under test


@contextlib.contextmanager
def another_loop_holds(
    first: Callable[[], Awaitable[object]],
    *,
    last: Callable[[], Awaitable[object]] | None = None,
) -> Iterator[None]:
    """Run *first* on an event loop of another thread, and keep that loop running for the block.

    *last* runs on that loop as the block ends, before the loop does.
    """
    started, stop = threading.Event(), threading.Event()

    async def hold() -> None:
        await first()
        started.set()
        while not stop.is_set():
            await asyncio.sleep(0.01)
        if last is not None:
            await last()

    thread = threading.Thread(target=asyncio.run, args=(hold(),))
    thread.start()
    try:
        assert started.wait(10), "the other loop's first call did not end in 10 s"
        yield
    finally:
        stop.set()
        thread.join(10)


class LateCall(Generic[O]):
    """What a call made as ``asyncio.run()`` finalized async generators came to.

    *outcome* is the call's result or the exception it raised; *warnings*
    the texts of the warnings seen from the run to the client's collection.
    """

    def __init__(self) -> None:
        self.outcomes: list[object] = []
        self.caught: list[warnings.WarningMessage] = []

    @property
    def warnings(self) -> list[str]:
        """The texts of every warning seen."""
        return [str(w.message) for w in self.caught]

    @property
    def resource_warnings(self) -> list[str]:
        """The texts of the ``ResourceWarning`` s seen (sockets, pools left open)."""
        return [str(w.message) for w in self.caught if issubclass(w.category, ResourceWarning)]

    @property
    def outcome(self) -> object:
        [outcome] = self.outcomes
        return outcome


def call_as_the_loop_finalizes(
    owner: Callable[[], O],
    late: Callable[[O], Awaitable[object]],
    *,
    first: Callable[[O], Awaitable[object]] | None = None,
    after_run: Callable[[O], None] | None = None,
) -> LateCall[O]:
    """Make a client with *owner*; in ``asyncio.run()``, *first* (if any), then leave an async
    generator open whose ``finally`` calls *late*: ``asyncio.run()`` finalizes it as it ends.

    *after_run* looks at the client once the run is over, before it is dropped
    and collected (nothing of it must be left open then, nor warned about).
    """
    seen: LateCall[O] = LateCall()
    held: list[AsyncIterator[int]] = []
    clients = [owner()]

    async def stream() -> AsyncIterator[int]:
        client = clients[0]
        try:
            yield 1
        finally:
            try:
                seen.outcomes.append(await late(client))
            except Exception as exc:  # the test looks at what it was
                seen.outcomes.append(exc)

    async def main() -> None:
        if first is not None:
            await first(clients[0])
        generator = stream()
        await generator.__anext__()
        held.append(generator)  # left open: asyncio.run() finalizes it

    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        asyncio.run(main())
        if after_run is not None:
            after_run(clients[0])
        held.clear()
        clients.clear()
        for _ in range(3):
            gc.collect()
    seen.caught = list(caught)
    return seen
