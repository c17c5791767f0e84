"""The Prometheus and OpenTelemetry exporters, checked through their real clients."""

from __future__ import annotations

import urllib.request
from collections.abc import Iterator

import pytest
from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.metrics.export import InMemoryMetricReader
from prometheus_client import CollectorRegistry, start_http_server
from prometheus_client.parser import text_string_to_metric_families

from commercekit.metrics import OpenTelemetryMetrics, PrometheusMetrics


@pytest.fixture
def scraped() -> Iterator[tuple[PrometheusMetrics, str]]:
    metrics = PrometheusMetrics(CollectorRegistry())
    server, thread = start_http_server(0, addr="127.0.0.1", registry=metrics.registry)
    try:
        yield metrics, f"http://127.0.0.1:{server.server_port}/metrics"
    finally:
        server.shutdown()
        server.server_close()
        thread.join(5)


def test_prometheus_endpoint_serves_every_kind(scraped: tuple[PrometheusMetrics, str]) -> None:
    metrics, url = scraped
    metrics.counter("commercekit_test_picks_total", description="Picks.", tags={"node": "a"}).inc(3)
    metrics.gauge("commercekit_test_in_flight", description="In flight.").set(7)
    metrics.histogram("commercekit_test_latency_seconds", description="Latency.").record(0.02)
    with urllib.request.urlopen(url, timeout=5) as response:  # loopback only
        text = response.read().decode()
    families = {f.name: f for f in text_string_to_metric_families(text)}
    picks = families["commercekit_test_picks"]
    assert picks.type == "counter"
    assert [(s.labels, s.value) for s in picks.samples if s.name.endswith("_total")] == [
        ({"node": "a"}, 3.0)
    ]
    assert families["commercekit_test_in_flight"].samples[0].value == 7
    latency = families["commercekit_test_latency_seconds"]
    buckets = {s.labels["le"]: s.value for s in latency.samples if s.name.endswith("_bucket")}
    assert (buckets["0.01"], buckets["0.025"], buckets["+Inf"]) == (0, 1, 1)
    assert "Picks." in text


def test_prometheus_exposition_and_bucket_choice() -> None:
    metrics = PrometheusMetrics(buckets={"commercekit_test_items": [1, 10]})
    metrics.histogram("commercekit_test_size_bytes", description="Size.", unit="bytes").record(5e6)
    metrics.histogram("commercekit_test_items", description="Items.", unit="items").record(3)
    body, content_type = metrics.exposition()
    text = body.decode()
    assert content_type.startswith("text/plain")
    assert 'commercekit_test_size_bytes_bucket{le="1.6777216e+07"} 1.0' in text
    assert 'commercekit_test_items_bucket{le="10.0"} 1.0' in text
    assert 'commercekit_test_items_bucket{le="1.0"} 0.0' in text


def test_two_backends_do_not_share_a_registry_unless_told() -> None:
    for _ in range(2):  # a shared global registry would raise "Duplicated timeseries"
        PrometheusMetrics().counter("commercekit_test_total", description="x").inc()


def test_opentelemetry_sends_ucum_units_and_advisory_buckets() -> None:
    reader = InMemoryMetricReader()
    metrics = OpenTelemetryMetrics(MeterProvider(metric_readers=[reader]))
    metrics.histogram("commercekit_test_latency_seconds", description="Latency.").record(0.02)
    metrics.counter("commercekit_test_bytes_total", description="Bytes.", unit="bytes").inc(9)
    metrics.gauge("commercekit_test_items", description="Items.", unit="items").set(4)
    data = reader.get_metrics_data()
    assert data is not None
    [scope] = data.resource_metrics[0].scope_metrics
    assert scope.scope.name == "commercekit"
    by_name = {m.name: m for m in scope.metrics}
    assert by_name["commercekit_test_latency_seconds"].unit == "s"
    assert by_name["commercekit_test_bytes_total"].unit == "By"
    assert by_name["commercekit_test_items"].unit == "{items}"
    [point] = by_name["commercekit_test_latency_seconds"].data.data_points
    assert point.explicit_bounds[:3] == (0.0005, 0.001, 0.0025)
