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


Spawn = Callable[[Callable[[], None], str], Background]
"""Start ``fn`` in the background under a name: a thread (sync), a task (asyncio)."""


class _Thread:
    __slots__ = ("_thread",)

    def __init__(self, thread: threading.Thread) -> None:
        self._thread = thread

    def join(self, timeout_s: float) -> None:
        self._thread.join(timeout_s)


def spawn_thread(fn: Callable[[], None], name: str) -> Background:
    """Run *fn* on a short-lived daemon thread (how a :class:`Database` probes)."""
    thread = threading.Thread(target=fn, name=name, daemon=True)
    thread.start()
    return _Thread(thread)
