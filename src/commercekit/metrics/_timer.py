"""A timer that is both a context manager and a decorator, safe to share across threads."""

from __future__ import annotations

import functools
import time
from collections.abc import Callable
from types import TracebackType
from typing import Any, TypeVar, cast

from commercekit.typing import MonotonicClock

__all__ = ["Clock", "RecordingTimer"]

Clock = MonotonicClock
"""A timer's clock, a :data:`commercekit.typing.MonotonicClock` (``time.perf_counter``)."""

_F = TypeVar("_F", bound=Callable[..., Any])


class RecordingTimer:
    """Record the seconds a ``with`` block or each call of a decorated function takes.

    As a context manager it is for one block at a time; as a decorator it keeps
    no state between calls, so the wrapped function may run in many threads.
    """

    __slots__ = ("_clock", "_record", "_start")

    def __init__(
        self, record: Callable[[float], None], clock: MonotonicClock = time.perf_counter
    ) -> None:
        self._record = record
        self._clock = clock
        self._start = 0.0

    def __enter__(self) -> RecordingTimer:
        self._start = self._clock()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self._record(self._clock() - self._start)

    def __call__(self, func: _F, /) -> _F:
        """Wrap *func* so that each call records its duration."""
        record, clock = self._record, self._clock

        @functools.wraps(func)
        def timed(*args: Any, **kwargs: Any) -> Any:
            start = clock()
            try:
                return func(*args, **kwargs)
            finally:
                record(clock() - start)

        return cast("_F", timed)
