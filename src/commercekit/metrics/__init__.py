"""The hook every part of commercekit reports through, and business events.

Components take a ``metrics`` argument (a :class:`Metrics`) and create their
instruments once; :class:`NullMetrics` is the default everywhere.
``PrometheusMetrics`` needs the ``[prometheus]`` extra and
``OpenTelemetryMetrics`` the ``[otel]`` extra; both are imported on first use.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from ._composite import CompositeMetrics
from ._event import AttributeValue, Event, EventChannel
from ._memory import HistogramSnapshot, InMemoryMetrics, MetricsSnapshot
from ._null import NullMetrics
from ._series import DEFAULT_MAX_SERIES_PER_METRIC, OVERFLOW_TAG_VALUE
from ._sketch import QuantileSketch
from ._tracing import (
    TRACING_AVAILABLE,
    SpanHandle,
    TraceContext,
    current_span,
    current_traceparent,
    format_traceparent,
    parse_traceparent,
    refresh_tracing,
    routed_request_span,
    span,
    traced,
)
from ._typing import Counter, EventSink, Gauge, Histogram, Metrics, Tags, Timer

if TYPE_CHECKING:
    from ._otel import OpenTelemetryMetrics
    from ._prometheus import PrometheusMetrics

__all__ = [
    "DEFAULT_MAX_SERIES_PER_METRIC",
    "OVERFLOW_TAG_VALUE",
    "TRACING_AVAILABLE",
    "AttributeValue",
    "CompositeMetrics",
    "Counter",
    "Event",
    "EventChannel",
    "EventSink",
    "Gauge",
    "Histogram",
    "HistogramSnapshot",
    "InMemoryMetrics",
    "Metrics",
    "MetricsSnapshot",
    "NullMetrics",
    "OpenTelemetryMetrics",
    "PrometheusMetrics",
    "QuantileSketch",
    "SpanHandle",
    "Tags",
    "Timer",
    "TraceContext",
    "current_span",
    "current_traceparent",
    "format_traceparent",
    "parse_traceparent",
    "refresh_tracing",
    "routed_request_span",
    "span",
    "traced",
]

_OPTIONAL = {
    "PrometheusMetrics": ("._prometheus", "prometheus"),
    "OpenTelemetryMetrics": ("._otel", "otel"),
}


def __getattr__(name: str) -> Any:
    # The exporters import their third-party library, which is an optional extra.
    if name not in _OPTIONAL:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    module_name, extra = _OPTIONAL[name]
    import importlib

    from commercekit._extras import missing_extra

    try:
        module = importlib.import_module(module_name, __name__)
    except ImportError as exc:
        raise missing_extra(name, extra, exc) from exc
    return getattr(module, name)
