"""Background work of a database (replica probes): a thread (sync) or a task (asyncio)."""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import Protocol

__all__ = ["Background", "Spawn", "spawn_thread"]


class Background(Protocol):
    """Work started in the background (a probe): something that can be waited for."""

    def join(self, timeout_s: float) -> None:
        """Wait up to *timeout_s* for the work to end."""
        ...


Spawn = Callable[[Callable[[], None], str, Callable[[], None]], Background]
"""Start ``fn`` in the background under a name: a thread (sync), a task (asyncio).

The third argument, ``done``, runs exactly once after ``fn`` ended, or when ``fn``
will never run (a task cancelled before it started): what ``fn`` holds is given
back there. When the spawn itself raises, ``done`` does not run.
"""


class _Thread:
    __slots__ = ("_thread",)

    def __init__(self, thread: threading.Thread) -> None:
        self._thread = thread

    def join(self, timeout_s: float) -> None:
        self._thread.join(timeout_s)


def spawn_thread(fn: Callable[[], None], name: str, done: Callable[[], None]) -> Background:
    """Run *fn*, then *done*, on a short-lived daemon thread (how a :class:`Database` probes)."""

    def run() -> None:
        try:
            fn()
        finally:
            done()

    thread = threading.Thread(target=run, name=name, daemon=True)
    thread.start()
    return _Thread(thread)
