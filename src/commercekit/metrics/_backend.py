"""The instrument factories that every recording backend shares."""

from __future__ import annotations

from typing import Any, cast

from . import _self
from ._event import Event, EventChannel, check_event
from ._series import Kind, MetricSpec, SeriesTable, TagItems
from ._typing import Counter, Gauge, Histogram, Tags

__all__ = ["RecordingBackend"]

_Known = dict[tuple[str, str, str, tuple[tuple[Any, Any], ...]], Any]
"""Series already found, by (name, unit, description, tags in the caller's order)."""


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
        # The lock-free fast path of counter(), gauge() and histogram(): a call seen
        # before (same name, unit, description and tags, in the same order) is one dict
        # lookup. Only series that are their tag set's own go in (never the overflow, so
        # that each fold still counts), so these hold at most the table's series, times
        # the orders their tags were given in.
        self._known: dict[Kind, _Known] = {kind: {} for kind in Kind}
        self._counters = self._known[Kind.COUNTER]
        self._gauges = self._known[Kind.GAUGE]
        self._histograms = self._known[Kind.HISTOGRAM]

    def _make(self, spec: MetricSpec, tags: TagItems) -> object:
        raise NotImplementedError

    def counter(
        self, name: str, *, description: str, unit: str = "1", tags: Tags | None = None
    ) -> Counter:
        """Create (or find) the counter series *name* with *tags*."""
        try:
            found: Counter = self._counters[
                name, unit, description, tuple(tags.items()) if tags else ()
            ]
        except (KeyError, TypeError, AttributeError):  # new, or unhashable: the checked path
            return cast("Counter", self._find(Kind.COUNTER, name, unit, description, tags))
        return found

    def gauge(
        self, name: str, *, description: str, unit: str = "1", tags: Tags | None = None
    ) -> Gauge:
        """Create (or find) the up-down gauge series *name* with *tags*."""
        try:
            found: Gauge = self._gauges[
                name, unit, description, tuple(tags.items()) if tags else ()
            ]
        except (KeyError, TypeError, AttributeError):
            return cast("Gauge", self._find(Kind.GAUGE, name, unit, description, tags))
        return found

    def histogram(
        self, name: str, *, description: str, unit: str = "seconds", tags: Tags | None = None
    ) -> Histogram:
        """Create (or find) the histogram series *name* with *tags*."""
        try:
            found: Histogram = self._histograms[
                name, unit, description, tuple(tags.items()) if tags else ()
            ]
        except (KeyError, TypeError, AttributeError):
            return cast("Histogram", self._find(Kind.HISTOGRAM, name, unit, description, tags))
        return found

    def _find(self, kind: Kind, name: str, unit: str, description: str, tags: Tags | None) -> Any:
        """The checked path: validate, create or find, and remember a tag set's own series."""
        series, own = self._table.find(kind, name, unit, description, tags)
        if own:
            # Validated by find(): name, unit, description and every tag are str.
            key = (name, unit, description, tuple(tags.items()) if tags else ())
            self._known[kind][key] = series
        return series

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
