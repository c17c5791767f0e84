"""Expose commercekit's metrics to Prometheus, and fan out to an in-memory copy.

Starts a /metrics endpoint on a free loopback port, scrapes it once, stops it.
Run: python examples/metrics_prometheus.py
"""

from __future__ import annotations

import urllib.request

from prometheus_client import start_http_server

from commercekit.metrics import CompositeMetrics, InMemoryMetrics, PrometheusMetrics

prometheus = PrometheusMetrics()
local = InMemoryMetrics()
metrics = CompositeMetrics(prometheus, local)  # every measurement goes to both

orders = metrics.counter(
    "commercekit_example_orders_total", description="Orders placed.", tags={"channel": "web"}
)
payment = metrics.histogram(
    "commercekit_example_payment_duration_seconds", description="Time to take a payment."
)
for seconds in (0.12, 0.35, 0.08, 1.9):
    orders.inc()
    payment.record(seconds)

server, thread = start_http_server(0, addr="127.0.0.1", registry=prometheus.registry)
try:
    url = f"http://127.0.0.1:{server.server_port}/metrics"
    with urllib.request.urlopen(url, timeout=5) as response:
        scraped = response.read().decode()
finally:
    server.shutdown()
    server.server_close()
    thread.join(5)

print("scraped from", url)
for line in scraped.splitlines():
    if line.startswith("commercekit_example_") and ('le="0.5"' in line or "_total" in line):
        print(" ", line)
print("same figures in memory:", local.value("commercekit_example_orders_total", channel="web"))
