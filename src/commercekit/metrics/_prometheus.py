"""``PrometheusMetrics``: commercekit's instruments as ``prometheus_client`` metrics.

Each commercekit series is a labelled child of one ``prometheus_client``
metric, and its hot-path method calls the child's method directly, so recording
costs what ``prometheus_client`` costs plus one call. Expose the registry the
usual way (``prometheus_client.start_http_server(port, registry=...)``, or
:meth:`PrometheusMetrics.exposition` from a web framework's route).
"""

from __future__ import annotations

import time
from collections.abc import Mapping, Sequence
from typing import Protocol

import prometheus_client
from prometheus_client import CollectorRegistry
from prometheus_client.metrics import MetricWrapperBase

from commercekit.errors import ConfigurationError
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
from ._units import default_buckets

__all__ = ["PrometheusMetrics"]


class _Value(Protocol):
    def __call__(self, value: float, /) -> None: ...


class _PromCounter:
    __slots__ = ("_inc",)

    def __init__(self, child: prometheus_client.Counter) -> None:
        self._inc: _Value = child.inc

    def inc(self, amount: float = 1, /) -> None:
        if not isinstance(amount, REAL) or not 0 <= amount <= MAX_VALUE:
            raise bad_increment(amount)
        self._inc(amount)


class _PromGauge:
    __slots__ = ("_inc", "_set")

    def __init__(self, child: prometheus_client.Gauge) -> None:
        self._inc: _Value = child.inc
        self._set: _Value = child.set

    def add(self, delta: float, /) -> None:
        if not isinstance(delta, REAL) or not -MAX_VALUE <= delta <= MAX_VALUE:
            raise bad_value("gauge", delta)
        self._inc(delta)

    def set(self, value: float, /) -> None:
        if not isinstance(value, REAL) or not -MAX_VALUE <= value <= MAX_VALUE:
            raise bad_value("gauge", value)
        self._set(value)


class _PromHistogram:
    __slots__ = ("_clock", "_observe")

    def __init__(self, child: prometheus_client.Histogram, clock: MonotonicClock) -> None:
        self._observe: _Value = child.observe
        self._clock = clock

    def record(self, value: float, /) -> None:
        if not isinstance(value, REAL) or not -MAX_VALUE <= value <= MAX_VALUE:
            raise bad_value("histogram", value)
        self._observe(value)

    def time(self) -> Timer:
        return RecordingTimer(self.record, self._clock)


_PromSeries = _PromCounter | _PromGauge | _PromHistogram


class PrometheusMetrics(RecordingBackend):
    """A metrics backend that records into a ``prometheus_client`` registry.

    *registry* defaults to a new ``CollectorRegistry`` of this backend's own
    (pass ``prometheus_client.REGISTRY`` to share the process-wide one).
    Histogram buckets follow the unit (seconds: 0.5 ms to 60 s; bytes: 1 KiB
    to 1 GiB) unless *buckets* names the metric. Business events go to
    *events* when given, and are dropped otherwise.
    """

    def __init__(
        self,
        registry: CollectorRegistry | None = None,
        *,
        buckets: Mapping[str, Sequence[float]] | None = None,
        max_series_per_metric: int = DEFAULT_MAX_SERIES_PER_METRIC,
        events: EventChannel | None = None,
        clock: MonotonicClock = time.perf_counter,
    ) -> None:
        self.registry = registry if registry is not None else CollectorRegistry()
        self._buckets = dict(buckets or {})
        self._clock = clock
        self._parents: dict[str, MetricWrapperBase] = {}
        super().__init__(max_series_per_metric=max_series_per_metric, events=events)

    def exposition(self) -> tuple[bytes, str]:
        """The registry in the text exposition format, and its Content-Type."""
        return prometheus_client.generate_latest(
            self.registry
        ), prometheus_client.CONTENT_TYPE_LATEST

    def _make(self, spec: MetricSpec, tags: TagItems) -> _PromSeries:
        parent = self._parents.get(spec.name)
        if parent is None:
            parent = self._parents[spec.name] = self._parent(spec)
        child = parent.labels(*(value for _, value in tags)) if tags else parent
        if isinstance(child, prometheus_client.Counter):
            return _PromCounter(child)
        if isinstance(child, prometheus_client.Gauge):
            return _PromGauge(child)
        if isinstance(child, prometheus_client.Histogram):
            return _PromHistogram(child, self._clock)
        raise ConfigurationError(  # pragma: no cover - _parent makes one of the three
            f"metric {spec.name!r} maps to a {type(child).__name__}, not a {spec.kind.value}"
        )

    def _parent(self, spec: MetricSpec) -> MetricWrapperBase:
        name, doc, labels, registry = spec.name, spec.description, spec.tag_names, self.registry
        if spec.kind is Kind.COUNTER:
            return prometheus_client.Counter(name, doc, labels, registry=registry)
        if spec.kind is Kind.GAUGE:
            return prometheus_client.Gauge(name, doc, labels, registry=registry)
        buckets = default_buckets(spec.name, spec.unit, self._buckets)
        return prometheus_client.Histogram(name, doc, labels, registry=registry, buckets=buckets)

    def __repr__(self) -> str:
        return f"PrometheusMetrics(metrics={len(self._parents)})"
