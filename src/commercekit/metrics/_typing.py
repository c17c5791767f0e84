"""The seams of the metrics hook: instruments, backends and event sinks.

Every part of commercekit reports through a :class:`Metrics` it is handed
(``NullMetrics`` when nobody hands one). Instruments are created once, when the
component is built, with a name, a unit, a description and a fixed tag set; the
hot path is then a single method call on the instrument.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from contextlib import AbstractContextManager
from typing import TYPE_CHECKING, Protocol, TypeVar

if TYPE_CHECKING:
    from ._event import Event

__all__ = [
    "Counter",
    "EventSink",
    "Gauge",
    "Histogram",
    "Metrics",
    "Tags",
    "Timer",
]

Tags = Mapping[str, str]
"""A fixed set of label names and values, bound to an instrument when it is created."""

_F = TypeVar("_F", bound=Callable[..., object])


class Timer(AbstractContextManager["Timer"], Protocol):
    """Times a block (``with hist.time():``) or every call of a function (``@hist.time()``).

    The elapsed time is recorded in seconds, whether the block returns or raises.
    """

    def __call__(self, func: _F, /) -> _F:
        """Wrap *func* so that each call is timed."""
        ...


class Counter(Protocol):
    """A monotonic count: requests served, bytes sent, errors seen."""

    def inc(self, amount: float = 1, /) -> None:
        """Add *amount* (never negative) to the count."""
        ...


class Gauge(Protocol):
    """A value that goes up and down: requests in flight, entries in a cache."""

    def add(self, delta: float, /) -> None:
        """Move the value by *delta*, which may be negative."""
        ...

    def set(self, value: float, /) -> None:
        """Set the value outright."""
        ...


class Histogram(Protocol):
    """A distribution of observed values: latencies, sizes."""

    def record(self, value: float, /) -> None:
        """Record one observation."""
        ...

    def time(self) -> Timer:
        """Return a timer that records elapsed seconds into this histogram."""
        ...


class Metrics(Protocol):
    """A metrics backend: a factory of pre-bound instruments plus a business-event channel.

    Creating the same instrument twice (same name and tags) returns one series;
    the same name with another kind, unit, description or set of tag names
    raises :class:`~commercekit.errors.ConfigurationError`.
    """

    def counter(
        self, name: str, *, description: str, unit: str = "1", tags: Tags | None = None
    ) -> Counter:
        """Create (or find) the counter series *name* with *tags*."""
        ...

    def gauge(
        self, name: str, *, description: str, unit: str = "1", tags: Tags | None = None
    ) -> Gauge:
        """Create (or find) the up-down gauge series *name* with *tags*."""
        ...

    def histogram(
        self, name: str, *, description: str, unit: str = "seconds", tags: Tags | None = None
    ) -> Histogram:
        """Create (or find) the histogram series *name* with *tags*."""
        ...

    def emit(self, event: Event, /) -> None:
        """Hand a business event on. Never blocks and never raises."""
        ...


class EventSink(Protocol):
    """Where an :class:`~commercekit.metrics.EventChannel` delivers batches of events."""

    def __call__(self, events: Sequence[Event], /) -> None:
        """Take a batch of events, oldest first. May block, may raise: the channel copes."""
        ...
