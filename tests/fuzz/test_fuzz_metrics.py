"""Fuzzing metrics and events: measurements, metric names and tags, events and their channel.

Values come from the code being measured, names and tags and event attributes
often from requests: every recording backend answers or raises a
``commercekit.errors`` error, the same for the same value, and a refused
measurement leaves the series as it was. An event channel delivers every event
it accepted, whatever else was emitted.
"""

from __future__ import annotations

import functools
import json
import math
import os
from collections.abc import Callable, Sequence
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.metrics.export import InMemoryMetricReader
from prometheus_client import CollectorRegistry

from commercekit.errors import CommerceKitError
from commercekit.metrics import (
    Event,
    EventChannel,
    InMemoryMetrics,
    Metrics,
    OpenTelemetryMetrics,
    PrometheusMetrics,
)
from tests.fuzz.hostile import hostile_text, json_value, not_a_string, only_ours

_FUZZ = settings(
    deadline=None,
    max_examples=int(os.environ.get("COMMERCEKIT_FUZZ_EXAMPLES", "40")),
    suppress_health_check=[HealthCheck.too_slow],
)

#: Calls take microseconds to milliseconds; the bound catches a quadratic or
#: hanging path, with room for a loaded machine (2 cores shared by many jobs).
BOUND_S = 3.0


def ours(call: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
    """``only_ours`` with this suite's time bound."""
    return only_ours(call, *args, bound_s=BOUND_S, **kwargs)


number = st.one_of(
    st.floats(allow_nan=True, allow_infinity=True),
    st.integers(),
    st.integers(10**400, 10**401),
    st.decimals(allow_nan=True),
    st.booleans(),
    not_a_string,
    hostile_text,
)
BACKENDS: list[Callable[[], Metrics]] = [
    InMemoryMetrics,
    lambda: PrometheusMetrics(CollectorRegistry()),
    lambda: OpenTelemetryMetrics(MeterProvider(metric_readers=[InMemoryMetricReader()])),
]


SHARED = [make() for make in BACKENDS]  # one of each: an OpenTelemetry meter is slow to make


def kinds(call: Callable[[], object]) -> str | None:
    try:
        call()
    except CommerceKitError as exc:
        return type(exc).__name__
    return None


@_FUZZ
@given(value=number)
def test_measurements_agree_across_backends(value: object) -> None:
    answers = []
    for metrics in SHARED:
        counter = metrics.counter("fuzz_total", description="f")
        gauge = metrics.gauge("fuzz_level", description="f")
        histogram = metrics.histogram("fuzz_seconds", description="f")
        answers.append(
            tuple(
                ours(kinds, call)
                for call in (
                    functools.partial(counter.inc, value),  # type: ignore[arg-type]
                    functools.partial(gauge.add, value),  # type: ignore[arg-type]
                    functools.partial(gauge.set, value),  # type: ignore[arg-type]
                    functools.partial(histogram.record, value),  # type: ignore[arg-type]
                )
            )
        )
    assert answers[0] == answers[1] == answers[2], answers
    memory = InMemoryMetrics()
    counter = memory.counter("fuzz_total", description="f")
    counter.inc(2)
    ours(kinds, lambda: counter.inc(value))  # type: ignore[arg-type]
    total = memory.value("fuzz_total")
    assert math.isfinite(total)


@_FUZZ
@given(
    name=st.one_of(hostile_text, st.from_regex(r"[a-z_:][a-z0-9_:]{0,30}", fullmatch=True)),
    tags=st.one_of(
        st.none(), st.dictionaries(hostile_text, st.one_of(hostile_text, not_a_string), max_size=3)
    ),
    unit=st.one_of(hostile_text, st.sampled_from(["1", "seconds", "bytes"])),
)
def test_metric_names_and_tags(name: str, tags: dict[str, object] | None, unit: str) -> None:
    fresh = [InMemoryMetrics(), PrometheusMetrics(CollectorRegistry()), SHARED[2]]
    for metrics in fresh:
        for factory in (metrics.counter, metrics.gauge, metrics.histogram):
            ours(factory, name, description="f", unit=unit, tags=tags)  # type: ignore[arg-type]
        if isinstance(metrics, PrometheusMetrics):
            ours(metrics.exposition)


@_FUZZ
@given(
    name=st.one_of(
        hostile_text, not_a_string, st.from_regex(r"[a-z]{1,8}(\.[a-z_]{1,8}){0,2}", fullmatch=True)
    ),
    attributes=st.one_of(json_value, st.dictionaries(hostile_text, json_value, max_size=4)),
    at_s=st.one_of(st.floats(), st.integers(), not_a_string),
)
def test_events_and_emit(name: object, attributes: object, at_s: object) -> None:
    event = ours(Event, name, attributes, at_s)  # type: ignore[arg-type]
    memory = InMemoryMetrics()
    ours(memory.emit, attributes)
    assert memory.events == []
    if event is not None:
        json.dumps({"name": event.name, **event.attributes, "at_s": event.at_s})
        memory.emit(event)
        assert memory.events == [event]


@settings(deadline=None, max_examples=15, suppress_health_check=[HealthCheck.too_slow])
@given(
    batch=st.lists(
        st.one_of(
            st.builds(
                Event,
                st.from_regex(r"[a-z]{1,8}\.[a-z]{1,8}", fullmatch=True),
                st.dictionaries(
                    st.from_regex(r"[a-z]{1,6}", fullmatch=True),
                    st.one_of(
                        st.text(max_size=10), st.integers(-(2**63), 2**63 - 1), st.booleans()
                    ),
                    max_size=3,
                ),
            ),
            json_value,
        ),
        max_size=40,
    )
)
def test_a_channel_delivers_every_event_it_accepted(batch: list[object]) -> None:
    delivered: list[str] = []

    def serializing(events: Sequence[Event]) -> None:
        delivered.extend(json.dumps({"name": e.name, **e.attributes}) for e in events)

    accepted = 0
    with EventChannel(serializing, batch_size=7, flush_interval_s=0.001) as channel:
        for item in batch:
            if ours(channel.emit, item) is None and isinstance(item, Event):
                accepted += 1
        assert channel.flush(5.0)
    assert len(delivered) == accepted
