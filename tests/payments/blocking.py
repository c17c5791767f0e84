"""Async objects called from sync tests: each coroutine method runs on an event loop in a thread.

The same contract tests then run against a sync implementation and its async
twin unchanged, and threads in a test (racing workers) may call in at once:
anyio's blocking portal hands each call to the loop and waits for its answer.
"""

from __future__ import annotations

import functools
import inspect
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from anyio.from_thread import BlockingPortal, start_blocking_portal


class Blocking:
    """*target*'s coroutine methods as plain calls through *portal*; the rest as it is."""

    def __init__(self, target: Any, portal: BlockingPortal) -> None:
        self._target = target
        self._portal = portal

    def __getattr__(self, name: str) -> Any:
        value = getattr(self._target, name)
        if not inspect.iscoroutinefunction(value):
            return value
        return lambda *args, **kwargs: self._portal.call(functools.partial(value, **kwargs), *args)

    def __repr__(self) -> str:
        return f"Blocking({self._target!r})"


@contextmanager
def portal() -> Iterator[BlockingPortal]:
    """An event loop in a thread for the block."""
    with start_blocking_portal() as running:
        yield running
