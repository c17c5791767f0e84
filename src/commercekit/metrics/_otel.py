"""``OpenTelemetryMetrics``: commercekit's instruments on an OpenTelemetry ``Meter``.

Only ``opentelemetry-api`` is needed: measurements go to whatever
``MeterProvider`` the application configured (the SDK with an OTLP exporter,
a Prometheus reader, ...), or to the API's no-op provider if it set none.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Mapping, Sequence

from opentelemetry import metrics as otel

from commercekit import __version__
from commercekit.typing import MonotonicClock

from ._backend import RecordingBackend
from ._event import EventChannel
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
from ._timer import RecordingTimer
from ._typing import Timer
from ._units import default_buckets, ucum

__all__ = ["OpenTelemetryMetrics"]

_Attributes = Mapping[str, str] | None


class _OtelCounter:
    __slots__ = ("_add", "_attributes")

    def __init__(self, instrument: otel.Counter, attributes: _Attributes) -> None:
        self._add = instrument.add
        self._attributes = attributes

    def inc(self, amount: float = 1, /) -> None:
        if not isinstance(amount, REAL) or not 0 <= amount <= MAX_VALUE:
            raise bad_increment(amount)
        self._add(amount, self._attributes)


class _OtelGauge:
    """An UpDownCounter; ``set`` adds the difference from the value it tracks."""

    __slots__ = ("_add", "_attributes", "_lock", "_value")

    def __init__(self, instrument: otel.UpDownCounter, attributes: _Attributes) -> None:
        self._add = instrument.add
        self._attributes = attributes
        self._lock = threading.Lock()
        self._value: float = 0

    def add(self, delta: float, /) -> None:
        if not isinstance(delta, REAL) or not -MAX_VALUE <= delta <= MAX_VALUE:
            raise bad_value("gauge", delta)
        with self._lock:
            self._value += delta
            self._add(delta, self._attributes)

    def set(self, value: float, /) -> None:
        if not isinstance(value, REAL) or not -MAX_VALUE <= value <= MAX_VALUE:
            raise bad_value("gauge", value)
        with self._lock:
            delta, self._value = value - self._value, value
            self._add(delta, self._attributes)


class _OtelHistogram:
    __slots__ = ("_attributes", "_clock", "_record")

    def __init__(
        self, instrument: otel.Histogram, attributes: _Attributes, clock: MonotonicClock
    ) -> None:
        self._record = instrument.record
        self._attributes = attributes
        self._clock = clock

    def record(self, value: float, /) -> None:
        if not isinstance(value, REAL) or not -MAX_VALUE <= value <= MAX_VALUE:
            raise bad_value("histogram", value)
        self._record(value, self._attributes)

    def time(self) -> Timer:
        return RecordingTimer(self.record, self._clock)


_OtelSeries = _OtelCounter | _OtelGauge | _OtelHistogram
_Instrument = otel.Counter | otel.UpDownCounter | otel.Histogram


class OpenTelemetryMetrics(RecordingBackend):
    """A metrics backend that records through an OpenTelemetry meter named ``commercekit``.

    *meter_provider* defaults to the global one. Units are sent in UCUM
    ("seconds" as "s", "bytes" as "By"); histograms advise the same bucket
    bounds as the Prometheus backend. Up-down gauges are UpDownCounters.
    Business events go to *events* when given, and are dropped otherwise.
    """

    def __init__(
        self,
        meter_provider: otel.MeterProvider | None = None,
        *,
        buckets: Mapping[str, Sequence[float]] | None = None,
        max_series_per_metric: int = DEFAULT_MAX_SERIES_PER_METRIC,
        events: EventChannel | None = None,
        clock: MonotonicClock = time.perf_counter,
    ) -> None:
        self.meter = otel.get_meter("commercekit", __version__, meter_provider=meter_provider)
        self._buckets = dict(buckets or {})
        self._clock = clock
        self._instruments: dict[str, _Instrument] = {}
        super().__init__(max_series_per_metric=max_series_per_metric, events=events)

    def _make(self, spec: MetricSpec, tags: TagItems) -> _OtelSeries:
        instrument = self._instruments.get(spec.name)
        if instrument is None:
            instrument = self._instruments[spec.name] = self._instrument(spec)
        # None, not {}, for untagged series: the SDK cleans any attributes it is given.
        attributes = dict(tags) if tags else None
        if isinstance(instrument, otel.Counter):
            return _OtelCounter(instrument, attributes)
        if isinstance(instrument, otel.UpDownCounter):
            return _OtelGauge(instrument, attributes)
        return _OtelHistogram(instrument, attributes, self._clock)

    def _instrument(self, spec: MetricSpec) -> _Instrument:
        unit = ucum(spec.unit)
        if spec.kind is Kind.COUNTER:
            return self.meter.create_counter(spec.name, unit, spec.description)
        if spec.kind is Kind.GAUGE:
            return self.meter.create_up_down_counter(spec.name, unit, spec.description)
        return self.meter.create_histogram(
            spec.name,
            unit,
            spec.description,
            explicit_bucket_boundaries_advisory=default_buckets(
                spec.name, spec.unit, self._buckets
            ),
        )

    def __repr__(self) -> str:
        return f"OpenTelemetryMetrics(metrics={len(self._instruments)})"
