"""Instruments created once, recorded with one call, read back with quantiles.

Run: python examples/metrics_basics.py
"""

from __future__ import annotations

import random

from commercekit.metrics import Event, InMemoryMetrics

metrics = InMemoryMetrics()

# Create instruments once, when the component is built: name, unit, description, tags.
served = {
    route: metrics.counter(
        "commercekit_example_requests_total",
        description="Requests served, by route.",
        tags={"route": route},
    )
    for route in ("/", "/cart", "/checkout")
}
latency = metrics.histogram(
    "commercekit_example_request_duration_seconds", description="Time to serve a request."
)
in_flight = metrics.gauge("commercekit_example_in_flight", description="Requests being served.")

# The hot path: one method call per measurement.
rng = random.Random(42)
for _ in range(10_000):
    route = rng.choice(("/", "/", "/cart", "/checkout"))
    in_flight.add(1)
    served[route].inc()
    latency.record(rng.lognormvariate(-3.5, 0.8))  # seconds
    in_flight.add(-1)


@latency.time()
def render_page() -> str:
    return "<html>...</html>"


render_page()
metrics.emit(Event("checkout.completed", {"order_id": "o-1001", "amount_minor": 4999}))

snapshot = metrics.snapshot()
print("requests by route:")
for tags, count in sorted(snapshot.series("commercekit_example_requests_total").items()):
    print(f"  {dict(tags)['route']:<10} {count:>6.0f}")
dist = snapshot.distribution("commercekit_example_request_duration_seconds")
print(f"latency over {dist.count} requests:")
for q in (0.5, 0.9, 0.99, 0.999):
    print(f"  p{q * 100:g}: {dist.quantile(q) * 1000:7.2f} ms")
print("in flight now:", snapshot.value("commercekit_example_in_flight"))
print("events:", [e.name for e in snapshot.events])
