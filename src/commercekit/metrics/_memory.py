"""``InMemoryMetrics``: a complete backend kept in process, for tests, demos and reports.

Counters and histograms record into per-thread cells (see ``_shards``), so
recording takes no lock; histograms keep a :class:`QuantileSketch`. Reading
(``value``, ``distribution``, ``snapshot``) folds the cells together.
"""

from __future__ import annotations

import threading
import time
from collections import deque
from collections.abc import Iterable, Mapping

import attrs

from commercekit.errors import NotFoundError
from commercekit.typing import MonotonicClock

from . import _self
from ._backend import RecordingBackend
from ._event import Event, check_event
from ._series import (
    DEFAULT_MAX_SERIES_PER_METRIC,
    MAX_VALUE,
    REAL,
    Kind,
    MetricSpec,
    TagItems,
    bad_increment,
    bad_value,
)
from ._shards import Shards
from ._sketch import QuantileSketch
from ._timer import RecordingTimer
from ._typing import Timer

__all__ = ["HistogramSnapshot", "InMemoryMetrics", "MetricsSnapshot"]


class _Counter:
    __slots__ = ("_local", "_shards")

    def __init__(self) -> None:
        self._shards: Shards[list[float]] = Shards(lambda: [0], _add_cell)
        self._local = self._shards.local

    def inc(self, amount: float = 1, /) -> None:
        if not isinstance(amount, REAL) or not 0 <= amount <= MAX_VALUE:
            raise bad_increment(amount)
        try:
            self._local.cell[0] += amount
        except AttributeError:
            self._shards.cell()[0] += amount

    def value(self) -> float:
        return sum(cell[0] for cell in self._shards.collect(list.copy))


def _add_cell(into: list[float], cell: list[float]) -> None:
    into[0] += cell[0]


class _Gauge:
    __slots__ = ("_lock", "_value")

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._value: float = 0

    def add(self, delta: float, /) -> None:
        if not isinstance(delta, REAL) or not -MAX_VALUE <= delta <= MAX_VALUE:
            raise bad_value("gauge", delta)
        with self._lock:
            self._value += delta

    def set(self, value: float, /) -> None:
        if not isinstance(value, REAL) or not -MAX_VALUE <= value <= MAX_VALUE:
            raise bad_value("gauge", value)
        self._value = value

    def value(self) -> float:
        return self._value


class _Histogram:
    __slots__ = ("_clock", "_local", "_shards")

    def __init__(self, relative_accuracy: float, clock: MonotonicClock) -> None:
        self._shards: Shards[QuantileSketch] = Shards(
            lambda: QuantileSketch(relative_accuracy), QuantileSketch.merge
        )
        self._local = self._shards.local
        self._clock = clock

    def record(self, value: float, /) -> None:
        if not isinstance(value, REAL) or not -MAX_VALUE <= value <= MAX_VALUE:
            raise bad_value("histogram", value)
        try:
            sketch: QuantileSketch = self._local.cell
        except AttributeError:
            sketch = self._shards.cell()
        sketch.add(value)

    def time(self) -> Timer:
        return RecordingTimer(self.record, self._clock)

    def sketch(self) -> QuantileSketch:
        cells = self._shards.collect(QuantileSketch.copy)
        merged = cells[0]
        for cell in cells[1:]:
            merged.merge(cell)
        return merged


@attrs.frozen
class HistogramSnapshot:
    """A histogram series at one moment: count, sum, extremes and quantiles."""

    sketch: QuantileSketch = attrs.field(repr=False)

    @property
    def count(self) -> int:
        """How many values were recorded."""
        return self.sketch.count

    @property
    def sum(self) -> float:
        """The sum of the recorded values."""
        return self.sketch.sum

    @property
    def min(self) -> float:
        """The smallest recorded value."""
        return self.sketch.min

    @property
    def max(self) -> float:
        """The largest recorded value."""
        return self.sketch.max

    def quantile(self, q: float) -> float:
        """The *q* quantile (0 to 1), within the sketch's relative accuracy."""
        return self.sketch.quantile(q)


def _key(name: str, tags: Mapping[str, str]) -> tuple[str, TagItems]:
    return (name, tuple(sorted(tags.items())))


def _describe(keys: Iterable[tuple[str, TagItems]]) -> str:
    return ", ".join(f"{name}{dict(items)}" for name, items in keys) or "none"


@attrs.frozen
class MetricsSnapshot:
    """Every series of an :class:`InMemoryMetrics` at one moment, keyed by ``(name, tags)``."""

    counters: Mapping[tuple[str, TagItems], float]
    gauges: Mapping[tuple[str, TagItems], float]
    histograms: Mapping[tuple[str, TagItems], HistogramSnapshot]
    events: tuple[Event, ...]

    def value(self, name: str, /, **tags: str) -> float:
        """The value of counter or gauge *name* with exactly *tags*.

        Raises:
            NotFoundError: no counter or gauge has that name and those tags.
        """
        key = _key(name, tags)
        if key in self.counters:
            return self.counters[key]
        if key in self.gauges:
            return self.gauges[key]
        raise NotFoundError(
            f"no counter or gauge {name}{tags}; recorded: "
            f"{_describe([*self.counters, *self.gauges])}"
        )

    def distribution(self, name: str, /, **tags: str) -> HistogramSnapshot:
        """The histogram *name* with exactly *tags*.

        Raises:
            NotFoundError: no histogram has that name and those tags.
        """
        try:
            return self.histograms[_key(name, tags)]
        except KeyError:
            raise NotFoundError(
                f"no histogram {name}{tags}; recorded: {_describe(self.histograms)}"
            ) from None

    def total(self, name: str, /) -> float:
        """The sum of counter or gauge *name* over all its series (overflow included)."""
        return sum(
            value
            for series in (self.counters, self.gauges)
            for (series_name, _), value in series.items()
            if series_name == name
        )

    def series(self, name: str, /) -> dict[TagItems, float]:
        """Every series of counter or gauge *name*, by its sorted tag pairs."""
        return {
            items: value
            for series in (self.counters, self.gauges)
            for (series_name, items), value in series.items()
            if series_name == name
        }


_Series = _Counter | _Gauge | _Histogram


class InMemoryMetrics(RecordingBackend):
    """A metrics backend that keeps everything in process, with exact quantile sketches.

    For tests, demos and small reports. Histogram quantiles are within
    *relative_accuracy* (0.5 % by default) at every quantile; each metric keeps
    at most *max_series_per_metric* series, and further tag sets share an
    overflow series (counted in ``commercekit_metrics_series_overflow_total``).
    Events are kept, up to *max_events*, the newest last; more are dropped and
    counted in ``commercekit_metrics_events_dropped_total``.

    Test helpers: :meth:`value`, :meth:`distribution`, :meth:`total`,
    :attr:`events`, and :meth:`snapshot` for all of it at once.
    """

    def __init__(
        self,
        *,
        relative_accuracy: float = 0.005,
        max_series_per_metric: int = DEFAULT_MAX_SERIES_PER_METRIC,
        max_events: int = 10_000,
        clock: MonotonicClock = time.perf_counter,
    ) -> None:
        QuantileSketch(relative_accuracy)  # validates the accuracy once, up front
        self._accuracy = relative_accuracy
        self._clock = clock
        super().__init__(max_series_per_metric=max_series_per_metric, events=None)
        self._kept: deque[Event] = deque()
        self._max_events = max_events
        self._events_dropped = _self.events_dropped(self)

    def emit(self, event: Event, /) -> None:
        """Keep *event*; drop and count it once *max_events* are kept."""
        check_event(event)
        if len(self._kept) >= self._max_events:
            self._events_dropped.inc()
        else:
            self._kept.append(event)

    @property
    def events(self) -> list[Event]:
        """The events emitted so far, oldest first."""
        return list(self._kept)

    def value(self, name: str, /, **tags: str) -> float:
        """The current value of counter or gauge *name* with exactly *tags*."""
        return self.snapshot().value(name, **tags)

    def total(self, name: str, /) -> float:
        """The sum of counter or gauge *name* over all its series."""
        return self.snapshot().total(name)

    def distribution(self, name: str, /, **tags: str) -> HistogramSnapshot:
        """The histogram *name* with exactly *tags*: count, sum and quantiles."""
        return self.snapshot().distribution(name, **tags)

    def snapshot(self) -> MetricsSnapshot:
        """Every series and event, read at once."""
        counters: dict[tuple[str, TagItems], float] = {}
        gauges: dict[tuple[str, TagItems], float] = {}
        histograms: dict[tuple[str, TagItems], HistogramSnapshot] = {}
        for key, _spec, series in self._table.items():
            if isinstance(series, _Counter):
                counters[key] = series.value()
            elif isinstance(series, _Gauge):
                gauges[key] = series.value()
            elif isinstance(series, _Histogram):
                histograms[key] = HistogramSnapshot(series.sketch())
        return MetricsSnapshot(counters, gauges, histograms, tuple(self._kept))

    def _make(self, spec: MetricSpec, _tags: TagItems) -> _Series:
        if spec.kind is Kind.COUNTER:
            return _Counter()
        if spec.kind is Kind.GAUGE:
            return _Gauge()
        return _Histogram(self._accuracy, self._clock)

    def __repr__(self) -> str:
        return f"InMemoryMetrics(series={len(self._table.items())}, events={len(self._kept)})"
