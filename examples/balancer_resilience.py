"""Bounded loads for a hot key, outlier ejection, and slow start, on one balancer.

Time comes from a clock this script moves by hand, as tests do, so it runs
instantly. Run it as it is: ``python examples/balancer_resilience.py``.
"""

from __future__ import annotations

from collections import Counter

from commercekit.balancer import MaglevBalancer, OutlierDetection, SlowStart
from commercekit.metrics import InMemoryMetrics


class Clock:
    now = 0.0

    def __call__(self) -> float:
        return self.now


clock = Clock()
metrics = InMemoryMetrics()
api = MaglevBalancer(
    [f"api-{i}" for i in range(4)],
    name="api",
    metrics=metrics,
    clock=clock,
    balance_factor=1.25,  # no node holds more than ceil(1.25 x mean) leases
    outlier_detection=OutlierDetection(consecutive_failures=3, base_ejection_s=30),
    slow_start=SlowStart(window_s=60, initial_share=0.0),
)

# 1. A flash sale: one product page is requested 100 times at once.
leases = [api.acquire("product-123") for _ in range(100)]
print("hot key, leases per node:", dict(Counter(lease.node for lease in leases)))
for lease in leases:
    lease.release()

# 2. A node starts failing requests: three in a row eject it for 30 s.
victim = api.pick("product-123")
for _ in range(3):
    with api.acquire("product-123") as lease:
        if lease.node == victim:
            lease.report_failure()
print(f"{victim} after 3 failures: {api.health(victim).value}")
print("product-123 now goes to", api.pick("product-123"))
clock.now += 30  # the ejection ends; the node warms up again (slow start) ...
print(f"30 s later {victim} is {api.health(victim).value}, share {api.status(victim).share:.0%}")
clock.now += 60  # ... and after the window has all its keys back
print(f"60 s on, product-123 goes to {api.pick('product-123')} again")

# 3. A new node joins and takes its share over 60 s, key by key.
api.add("api-new")
keys = [f"customer-{i}" for i in range(5000)]
for seconds in (0, 30, 60):
    clock.now += 30 if seconds else 0
    share = sum(api.pick(k) == "api-new" for k in keys) / len(keys)
    print(f"api-new after {seconds:>2} s: {share:.1%} of keys")

print(
    "ejections:",
    metrics.value("commercekit_balancer_ejections_total", balancer="api", node=victim),
    "| picks counted:",
    metrics.value("commercekit_balancer_picks_total", balancer="api"),
)
