"""``CompositeMetrics``: one set of instruments that records into several backends."""

from __future__ import annotations

import time

from commercekit.errors import ConfigurationError
from commercekit.typing import MonotonicClock

from ._event import Event, check_event
from ._timer import RecordingTimer
from ._typing import Counter, Gauge, Histogram, Metrics, Tags, Timer

__all__ = ["CompositeMetrics"]


class _FanOutCounter:
    __slots__ = ("_children",)

    def __init__(self, children: tuple[Counter, ...]) -> None:
        self._children = children

    def inc(self, amount: float = 1, /) -> None:
        for child in self._children:
            child.inc(amount)


class _FanOutGauge:
    __slots__ = ("_children",)

    def __init__(self, children: tuple[Gauge, ...]) -> None:
        self._children = children

    def add(self, delta: float, /) -> None:
        for child in self._children:
            child.add(delta)

    def set(self, value: float, /) -> None:
        for child in self._children:
            child.set(value)


class _FanOutHistogram:
    __slots__ = ("_children", "_clock")

    def __init__(self, children: tuple[Histogram, ...], clock: MonotonicClock) -> None:
        self._children = children
        self._clock = clock

    def record(self, value: float, /) -> None:
        for child in self._children:
            child.record(value)

    def time(self) -> Timer:
        # One clock reading for all backends, so they agree on the duration.
        return RecordingTimer(self.record, self._clock)


class CompositeMetrics:
    """Record every measurement and event into each of *backends*, in order.

    For example Prometheus for scraping plus ``InMemoryMetrics`` for a status
    page. An instrument is created in every backend when it is created here.
    """

    def __init__(self, *backends: Metrics, clock: MonotonicClock = time.perf_counter) -> None:
        if not backends:
            raise ConfigurationError("CompositeMetrics needs at least one backend")
        self.backends = backends
        self._clock = clock

    def counter(
        self, name: str, *, description: str, unit: str = "1", tags: Tags | None = None
    ) -> Counter:
        """Create (or find) the counter in every backend."""
        return _FanOutCounter(
            tuple(
                b.counter(name, description=description, unit=unit, tags=tags)
                for b in self.backends
            )
        )

    def gauge(
        self, name: str, *, description: str, unit: str = "1", tags: Tags | None = None
    ) -> Gauge:
        """Create (or find) the gauge in every backend."""
        return _FanOutGauge(
            tuple(
                b.gauge(name, description=description, unit=unit, tags=tags) for b in self.backends
            )
        )

    def histogram(
        self, name: str, *, description: str, unit: str = "seconds", tags: Tags | None = None
    ) -> Histogram:
        """Create (or find) the histogram in every backend."""
        return _FanOutHistogram(
            tuple(
                b.histogram(name, description=description, unit=unit, tags=tags)
                for b in self.backends
            ),
            self._clock,
        )

    def emit(self, event: Event, /) -> None:
        """Hand *event* to every backend; a backend that raises does not stop the others.

        Raises:
            UnsupportedTypeError: *event* is not an :class:`Event`.
        """
        check_event(event)
        for backend in self.backends:
            try:
                backend.emit(event)
            except Exception:  # noqa: S112 - emit must never raise, whatever a backend does
                continue

    def __repr__(self) -> str:
        return f"CompositeMetrics({', '.join(map(repr, self.backends))})"
