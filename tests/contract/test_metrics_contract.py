"""The contract every recording metrics backend keeps, read back through each one's own API.

InMemoryMetrics is read through its snapshot, PrometheusMetrics through its
registry, OpenTelemetryMetrics through the SDK's InMemoryMetricReader, and
CompositeMetrics through each of its children, so a backend that drops,
doubles or mislabels a measurement fails here.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import pytest
from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.metrics.export import InMemoryMetricReader
from prometheus_client import CollectorRegistry

from commercekit.errors import ConfigurationError, InvalidInputError
from commercekit.metrics import (
    OVERFLOW_TAG_VALUE,
    CompositeMetrics,
    Event,
    InMemoryMetrics,
    Metrics,
    NullMetrics,
    OpenTelemetryMetrics,
    PrometheusMetrics,
)

Tags = dict[str, str]


class FakeClock:
    """A clock that moves only when told to."""

    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


@dataclass
class Backend:
    """A backend under test, with readers that go through the backend's own API."""

    metrics: Metrics
    value: Callable[[str, Tags], float | None]
    count: Callable[[str, Tags], int | None]
    total: Callable[[str, Tags], float | None]
    clock: FakeClock


def _in_memory(limit: int, clock: FakeClock) -> Backend:
    metrics = InMemoryMetrics(max_series_per_metric=limit, clock=clock)

    def value(name: str, tags: Tags) -> float | None:
        snap = metrics.snapshot()
        key = (name, tuple(sorted(tags.items())))
        return snap.counters.get(key, snap.gauges.get(key))

    def dist(name: str, tags: Tags) -> Any:
        return metrics.snapshot().histograms.get((name, tuple(sorted(tags.items()))))

    def count(name: str, tags: Tags) -> int | None:
        d = dist(name, tags)
        return None if d is None else d.count

    def total(name: str, tags: Tags) -> float | None:
        d = dist(name, tags)
        return None if d is None else d.sum

    return Backend(metrics, value, count, total, clock)


def _prometheus(limit: int, clock: FakeClock) -> Backend:
    registry = CollectorRegistry()
    metrics = PrometheusMetrics(registry, max_series_per_metric=limit, clock=clock)

    def value(name: str, tags: Tags) -> float | None:
        return registry.get_sample_value(name, tags)

    def count(name: str, tags: Tags) -> int | None:
        found = registry.get_sample_value(f"{name}_count", tags)
        return None if found is None else int(found)

    def total(name: str, tags: Tags) -> float | None:
        return registry.get_sample_value(f"{name}_sum", tags)

    return Backend(metrics, value, count, total, clock)


def _otel(limit: int, clock: FakeClock) -> Backend:
    reader = InMemoryMetricReader()
    provider = MeterProvider(metric_readers=[reader])
    metrics = OpenTelemetryMetrics(provider, max_series_per_metric=limit, clock=clock)

    def point(name: str, tags: Tags) -> Any:
        data = reader.get_metrics_data()
        for resource in data.resource_metrics if data else ():
            for scope in resource.scope_metrics:
                for metric in scope.metrics:
                    if metric.name != name:
                        continue
                    for p in metric.data.data_points:
                        if dict(p.attributes or {}) == tags:
                            return p
        return None

    def value(name: str, tags: Tags) -> float | None:
        p = point(name, tags)
        return None if p is None else p.value

    def count(name: str, tags: Tags) -> int | None:
        p = point(name, tags)
        return None if p is None else p.count

    def total(name: str, tags: Tags) -> float | None:
        p = point(name, tags)
        return None if p is None else p.sum

    return Backend(metrics, value, count, total, clock)


def _composite(limit: int, clock: FakeClock) -> Backend:
    # Read through the second child, so a fan-out that stops at the first fails.
    first, second = _in_memory(limit, clock), _prometheus(limit, clock)
    return Backend(
        CompositeMetrics(first.metrics, second.metrics, clock=clock),
        lambda n, t: second.value(n, t) if first.value(n, t) == second.value(n, t) else -1.0,
        second.count,
        second.total,
        clock,
    )


FACTORIES = {
    "in-memory": _in_memory,
    "prometheus": _prometheus,
    "opentelemetry": _otel,
    "composite": _composite,
}


@pytest.fixture(params=sorted(FACTORIES))
def make_backend(request: pytest.FixtureRequest) -> Callable[..., Backend]:
    factory = FACTORIES[request.param]
    return lambda limit=2000: factory(limit, FakeClock())


@pytest.fixture
def backend(make_backend: Callable[..., Backend]) -> Backend:
    return make_backend()


def test_counter_counts_every_increment(backend: Backend) -> None:
    c = backend.metrics.counter("ck_test_requests_total", description="Requests.")
    c.inc()
    c.inc(41)
    assert backend.value("ck_test_requests_total", {}) == 42


def test_counter_refuses_negative_increment(backend: Backend) -> None:
    c = backend.metrics.counter("ck_test_requests_total", description="Requests.")
    with pytest.raises(InvalidInputError, match="only goes up"):
        c.inc(-1)


def test_tagged_series_are_kept_apart(backend: Backend) -> None:
    get = backend.metrics.counter(
        "ck_test_hits_total", description="Hits.", tags={"route": "/cart", "method": "GET"}
    )
    post = backend.metrics.counter(
        "ck_test_hits_total", description="Hits.", tags={"route": "/cart", "method": "POST"}
    )
    get.inc(3)
    post.inc(5)
    assert backend.value("ck_test_hits_total", {"route": "/cart", "method": "GET"}) == 3
    assert backend.value("ck_test_hits_total", {"route": "/cart", "method": "POST"}) == 5


def test_creating_a_series_twice_shares_it(backend: Backend) -> None:
    tags = {"node": "a"}
    backend.metrics.counter("ck_test_picks_total", description="Picks.", tags=tags).inc(2)
    backend.metrics.counter("ck_test_picks_total", description="Picks.", tags=dict(tags)).inc(3)
    assert backend.value("ck_test_picks_total", tags) == 5


def test_gauge_goes_up_down_and_is_set(backend: Backend) -> None:
    g = backend.metrics.gauge("ck_test_in_flight", description="In flight.")
    g.add(5)
    g.add(-2)
    assert backend.value("ck_test_in_flight", {}) == 3
    g.set(10)
    g.add(1)
    assert backend.value("ck_test_in_flight", {}) == 11


def test_histogram_records_count_and_sum(backend: Backend) -> None:
    h = backend.metrics.histogram("ck_test_size_bytes", description="Sizes.", unit="bytes")
    for size in (100, 2_000, 30_000):
        h.record(size)
    assert backend.count("ck_test_size_bytes", {}) == 3
    assert backend.total("ck_test_size_bytes", {}) == 32_100


def test_timer_records_elapsed_seconds_as_block_and_decorator(backend: Backend) -> None:
    h = backend.metrics.histogram("ck_test_latency_seconds", description="Latency.")
    clock = backend.clock
    with h.time():
        clock.now += 0.25

    @h.time()
    def work(step: float) -> str:
        clock.now += step
        return "done"

    assert work(0.5) == "done"
    assert work.__name__ == "work"

    def fail() -> None:
        with h.time():
            clock.now += 1.0
            raise RuntimeError("the block failed")

    with pytest.raises(RuntimeError):
        fail()
    assert backend.count("ck_test_latency_seconds", {}) == 3
    assert backend.total("ck_test_latency_seconds", {}) == pytest.approx(1.75)


@pytest.mark.parametrize(
    ("first", "second", "what"),
    [
        ({"kind": "counter"}, {"kind": "gauge"}, "kind"),
        ({"description": "One."}, {"description": "Two."}, "description"),
        ({"unit": "seconds"}, {"unit": "bytes"}, "unit"),
        ({"tags": {"a": "1"}}, {"tags": {"b": "1"}}, "tag_names"),
    ],
)
def test_one_name_keeps_one_definition(
    backend: Backend, first: dict[str, Any], second: dict[str, Any], what: str
) -> None:
    def create(spec: dict[str, Any]) -> object:
        spec = {"kind": "counter", "description": "One.", "unit": "1", "tags": None} | spec
        factory = getattr(backend.metrics, spec.pop("kind"))
        return factory("ck_test_thing_total", **spec)

    create(first)
    with pytest.raises(ConfigurationError, match=what):
        create(second)


@pytest.mark.parametrize(
    ("name", "tags", "message"),
    [
        ("ck test total", None, "metric name"),
        ("9ck_total", None, "metric name"),
        ("ck_total", {"bad-name": "x"}, "tag name"),
        ("ck_total", {"__reserved": "x"}, "tag name"),
        ("ck_total", {"node": 3}, "must be str"),
    ],
)
def test_bad_names_and_tags_are_refused(
    backend: Backend, name: str, tags: Any, message: str
) -> None:
    with pytest.raises(ConfigurationError, match=message):
        backend.metrics.counter(name, description="Bad.", tags=tags)


def test_series_past_the_limit_share_the_overflow_series(
    make_backend: Callable[..., Backend],
) -> None:
    backend = make_backend(limit=3)
    for node in range(10):
        backend.metrics.counter(
            "ck_test_node_picks_total", description="Picks.", tags={"node": f"n{node}"}
        ).inc(node + 1)
    kept = [backend.value("ck_test_node_picks_total", {"node": f"n{i}"}) for i in range(10)]
    assert kept[:3] == [1, 2, 3]
    assert kept[3:] == [None] * 7
    overflow = backend.value("ck_test_node_picks_total", {"node": OVERFLOW_TAG_VALUE})
    assert overflow == sum(range(4, 11))  # totals are kept
    dropped = backend.value(
        "commercekit_metrics_series_overflow_total", {"metric": "ck_test_node_picks_total"}
    )
    assert dropped == 7


def test_emit_never_raises(backend: Backend) -> None:
    for _ in range(3):
        backend.metrics.emit(Event("cart.item_added", {"sku": "TEE-M", "qty": 1}))


def test_null_metrics_accepts_the_same_calls() -> None:
    null = NullMetrics()
    null.counter("ck_test_total", description="x", tags={"a": "b"}).inc()
    null.gauge("ck_test_gauge", description="x").add(1)
    null.gauge("ck_test_gauge", description="x").set(1)
    h = null.histogram("ck_test_seconds", description="x")
    h.record(1.0)
    with h.time():
        pass

    def f() -> int:
        return 1

    assert h.time()(f) is f
    null.emit(Event("x.y"))
