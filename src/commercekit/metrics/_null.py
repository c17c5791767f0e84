"""The default backend: every instrument does nothing, at the cost of an empty method call."""

from __future__ import annotations

from collections.abc import Callable
from types import TracebackType
from typing import Any, TypeVar

from ._event import Event
from ._typing import Counter, Gauge, Histogram, Tags, Timer

__all__ = ["NullMetrics"]

_F = TypeVar("_F", bound=Callable[..., Any])


class _NullTimer:
    __slots__ = ()

    def __enter__(self) -> _NullTimer:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        return None

    def __call__(self, func: _F, /) -> _F:
        return func


class _NullInstrument:
    """One object serves as every disabled counter, gauge and histogram."""

    __slots__ = ()

    def inc(self, amount: float = 1, /) -> None:
        pass

    def add(self, delta: float, /) -> None:
        pass

    def set(self, value: float, /) -> None:
        pass

    def record(self, value: float, /) -> None:
        pass

    def time(self) -> Timer:
        return _NULL_TIMER


_NULL_TIMER = _NullTimer()
_NULL_INSTRUMENT = _NullInstrument()


class NullMetrics:
    """A backend that records nothing: the default of every commercekit component.

    It validates nothing either, so a disabled hook costs no more than a call
    to an empty method on the hot path and nothing at construction.
    """

    __slots__ = ()

    def counter(
        self, name: str, *, description: str, unit: str = "1", tags: Tags | None = None
    ) -> Counter:
        """Return the shared no-op instrument."""
        return _NULL_INSTRUMENT

    def gauge(
        self, name: str, *, description: str, unit: str = "1", tags: Tags | None = None
    ) -> Gauge:
        """Return the shared no-op instrument."""
        return _NULL_INSTRUMENT

    def histogram(
        self, name: str, *, description: str, unit: str = "seconds", tags: Tags | None = None
    ) -> Histogram:
        """Return the shared no-op instrument."""
        return _NULL_INSTRUMENT

    def emit(self, event: Event, /) -> None:
        """Drop *event*."""

    def __repr__(self) -> str:
        return "NullMetrics()"
