"""Background work of a database (replica probes): a thread (sync) or a task (asyncio)."""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from typing import Protocol

__all__ = ["Background", "Spawn", "spawn_thread"]

_log = logging.getLogger("commercekit.repository")


class Background(Protocol):
    """Work started in the background (a probe): something that can be waited for."""

    def join(self, timeout_s: float) -> None:
        """Wait up to *timeout_s* for the work to end, then stop it where it can be stopped.

        A task is cancelled and waited for, so none of it runs after this
        returns; a thread cannot be stopped, and is logged as still running.
        """
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
        if self._thread.is_alive():
            _log.warning(
                "a background probe did not end within %g s: it goes on in its thread", timeout_s
            )


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
