"""The metrics the hook reports about itself, defined once for every backend."""

from __future__ import annotations

from ._typing import Counter, Gauge, Metrics

__all__ = [
    "SERIES_OVERFLOW",
    "event_batches_failed",
    "events_dropped",
    "events_emitted",
    "events_queued",
    "series_overflow",
]

SERIES_OVERFLOW = "commercekit_metrics_series_overflow_total"


def series_overflow(metrics: Metrics, metric: str) -> Counter:
    """New tag sets of *metric* folded into its overflow series past the series limit."""
    return metrics.counter(
        SERIES_OVERFLOW,
        description="New tag sets folded into a metric's overflow series past its limit.",
        tags={"metric": metric},
    )


def events_emitted(metrics: Metrics) -> Counter:
    """Business events accepted by a channel."""
    return metrics.counter(
        "commercekit_metrics_events_emitted_total",
        description="Business events accepted for delivery.",
    )


def events_dropped(metrics: Metrics) -> Counter:
    """Business events dropped because a buffer was full or closed."""
    return metrics.counter(
        "commercekit_metrics_events_dropped_total",
        description="Business events dropped because the buffer was full or closed.",
    )


def event_batches_failed(metrics: Metrics) -> Counter:
    """Batches of events lost because the sink raised."""
    return metrics.counter(
        "commercekit_metrics_event_batches_failed_total",
        description="Batches of events lost because the sink raised.",
    )


def events_queued(metrics: Metrics) -> Gauge:
    """Business events waiting for the sink."""
    return metrics.gauge(
        "commercekit_metrics_events_queued",
        description="Business events waiting for the sink.",
    )
