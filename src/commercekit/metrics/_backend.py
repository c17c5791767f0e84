"""The instrument factories that every recording backend shares."""

from __future__ import annotations

from typing import cast

from . import _self
from ._event import Event, EventChannel, check_event
from ._series import Kind, MetricSpec, SeriesTable, TagItems
from ._typing import Counter, Gauge, Histogram, Tags

__all__ = ["RecordingBackend"]


class RecordingBackend:
    """Keeps a backend's series in a :class:`SeriesTable`; subclasses say how to make one.

    ``_make`` returns, for each spec's kind, an object with that kind's
    instrument methods; the table calls it once per series.
    """

    def __init__(self, *, max_series_per_metric: int, events: EventChannel | None) -> None:
        self._table: SeriesTable[object] = SeriesTable(
            self._make, max_series_per_metric=max_series_per_metric, on_overflow=self._overflowed
        )
        self._events = events

    def _make(self, spec: MetricSpec, tags: TagItems) -> object:
        raise NotImplementedError

    def counter(
        self, name: str, *, description: str, unit: str = "1", tags: Tags | None = None
    ) -> Counter:
        """Create (or find) the counter series *name* with *tags*."""
        return cast("Counter", self._table.get(Kind.COUNTER, name, unit, description, tags))

    def gauge(
        self, name: str, *, description: str, unit: str = "1", tags: Tags | None = None
    ) -> Gauge:
        """Create (or find) the up-down gauge series *name* with *tags*."""
        return cast("Gauge", self._table.get(Kind.GAUGE, name, unit, description, tags))

    def histogram(
        self, name: str, *, description: str, unit: str = "seconds", tags: Tags | None = None
    ) -> Histogram:
        """Create (or find) the histogram series *name* with *tags*."""
        return cast("Histogram", self._table.get(Kind.HISTOGRAM, name, unit, description, tags))

    def emit(self, event: Event, /) -> None:
        """Hand *event* to this backend's event channel, if it has one.

        Raises:
            UnsupportedTypeError: *event* is not an :class:`Event`.
        """
        check_event(event)
        if self._events is not None:
            self._events.emit(event)

    def _overflowed(self, name: str) -> None:
        _self.series_overflow(self, name).inc()
