"""Every backend refuses the same bad values with the same typed error, and keeps what it had.

NaN and infinities would poison a counter for ever (``inf + 1`` is ``inf``)
and make the backends disagree (the in-memory sketch refused NaN, Prometheus
and OpenTelemetry took it), so all of them refuse a value that is not a
finite real number, and a counter increment below zero. ``NullMetrics`` is
the exception by design: it checks nothing, so a disabled hook costs one empty
call (the test below shows it stays inert).
"""

from __future__ import annotations

import math
import sys
import threading
import time
from collections.abc import Callable, Sequence
from decimal import Decimal

import pytest
from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.metrics.export import InMemoryMetricReader
from prometheus_client import CollectorRegistry

from commercekit.errors import InvalidInputError, NotFoundError, UnsupportedTypeError
from commercekit.metrics import (
    CompositeMetrics,
    Event,
    EventChannel,
    InMemoryMetrics,
    Metrics,
    NullMetrics,
    OpenTelemetryMetrics,
    PrometheusMetrics,
)

BAD_NUMBERS = [math.nan, math.inf, -math.inf, "1", None, Decimal("NaN"), Decimal("1"), b"1", [1]]


def backends() -> list[Callable[[], Metrics]]:
    return [
        InMemoryMetrics,
        lambda: PrometheusMetrics(CollectorRegistry()),
        lambda: OpenTelemetryMetrics(MeterProvider(metric_readers=[InMemoryMetricReader()])),
        lambda: CompositeMetrics(InMemoryMetrics(), PrometheusMetrics(CollectorRegistry())),
    ]


NAMES = ["memory", "prometheus", "otel", "composite"]


@pytest.mark.parametrize("make", backends(), ids=NAMES)
@pytest.mark.parametrize("bad", BAD_NUMBERS, ids=repr)
def test_every_backend_refuses_non_finite_and_non_numbers(
    make: Callable[[], Metrics], bad: object
) -> None:
    metrics = make()
    counter = metrics.counter("t_total", description="t")
    gauge = metrics.gauge("t_level", description="t")
    histogram = metrics.histogram("t_seconds", description="t")
    for call in (counter.inc, gauge.add, gauge.set, histogram.record):
        with pytest.raises((InvalidInputError, UnsupportedTypeError)):
            call(bad)  # type: ignore[arg-type]
    with pytest.raises(InvalidInputError):
        counter.inc(-1)


def test_null_metrics_stay_inert() -> None:
    metrics = NullMetrics()
    metrics.counter("t_total", description="t").inc(math.nan)
    metrics.histogram("t_seconds", description="t").record(math.inf)
    metrics.emit(None)  # type: ignore[arg-type]


def test_refused_values_leave_the_series_as_they_were() -> None:
    metrics = InMemoryMetrics()
    counter = metrics.counter("t_total", description="t")
    histogram = metrics.histogram("t_seconds", description="t")
    counter.inc(2)
    histogram.record(0.5)
    for bad in (math.nan, math.inf):
        with pytest.raises(InvalidInputError):
            counter.inc(bad)
        with pytest.raises(InvalidInputError):
            histogram.record(bad)
    counter.inc()
    assert metrics.value("t_total") == 3
    assert metrics.distribution("t_seconds").count == 1


def test_a_missing_series_is_not_found() -> None:
    metrics = InMemoryMetrics()
    metrics.counter("t_total", description="t").inc()
    with pytest.raises(NotFoundError, match="t_total"):
        metrics.value("nope_total")
    with pytest.raises(NotFoundError):
        metrics.value("t_total", shop="x")
    with pytest.raises(NotFoundError):
        metrics.distribution("t_seconds")


@pytest.mark.parametrize("bad", [None, "checkout.completed", {"name": "x"}, 5, b"x"], ids=repr)
def test_emit_refuses_what_is_not_an_event(bad: object) -> None:
    for metrics in (InMemoryMetrics(), PrometheusMetrics(CollectorRegistry())):
        with pytest.raises(UnsupportedTypeError):
            metrics.emit(bad)  # type: ignore[arg-type]
    with EventChannel(lambda events: None) as channel, pytest.raises(UnsupportedTypeError):
        channel.emit(bad)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("args", "kwargs"),
    [
        ((5,), {}),
        ((None,), {}),
        (("a\ud800",), {}),
        (("a.b",), {"attributes": 5}),
        (("a.b",), {"attributes": {5: "x"}}),
        (("a.b",), {"attributes": {"k\ud800": "x"}}),
        (("a.b",), {"attributes": {"k": "x\udfff"}}),
        (("a.b",), {"attributes": {"k": 10**5000}}),
        (("a.b",), {"attributes": {"k": 2**64}}),
        (("a.b",), {"at_s": math.nan}),
        (("a.b",), {"at_s": "now"}),
        (("a.b",), {"at_s": math.inf}),
    ],
)
def test_events_refuse_hostile_fields(args: tuple[object, ...], kwargs: dict[str, object]) -> None:
    with pytest.raises((InvalidInputError, UnsupportedTypeError)):
        Event(*args, **kwargs)  # type: ignore[arg-type]


def test_one_event_a_sink_cannot_take_costs_only_itself() -> None:
    import json

    delivered: list[str] = []
    lock = threading.Lock()

    def serializing(events: Sequence[Event]) -> None:
        lines = [json.dumps({"name": e.name, **e.attributes}) for e in events]
        if any("poison" in line for line in lines):
            raise ValueError("the sink cannot take one of these")
        with lock:
            delivered.extend(lines)

    metrics = InMemoryMetrics()
    with EventChannel(serializing, batch_size=64, flush_interval_s=0.01, metrics=metrics) as ch:
        for i in range(200):
            ch.emit(Event("cart.item_added", {"i": i, "bad": "poison" if i == 37 else "ok"}))
        assert ch.flush(5.0)
    assert len(delivered) == 199


def test_a_sink_raising_system_exit_does_not_stop_delivery() -> None:
    seen: list[int] = []

    def sink(events: Sequence[Event]) -> None:
        for event in events:
            if event.attributes["i"] == 3:
                sys.exit(1)
        seen.extend(int(event.attributes["i"]) for event in events)

    with EventChannel(sink, batch_size=1, flush_interval_s=0.01) as channel:
        for i in range(10):
            channel.emit(Event("order.placed", {"i": i}))
            time.sleep(0.002)
        assert channel.flush(5.0)
    assert seen == [i for i in range(10) if i != 3]
