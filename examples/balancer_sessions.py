"""Sticky sessions over a web fleet, and what moves when a server goes down.

Run it as it is: ``python examples/balancer_sessions.py``.
"""

from __future__ import annotations

from collections import Counter

from commercekit.balancer import KetamaBalancer, MaglevBalancer

servers = [f"10.0.0.{i}:8080" for i in range(1, 9)]
web = MaglevBalancer(servers, name="web")  # the default placement: a Maglev table
sessions = [f"session-{i}" for i in range(10_000)]

before = {s: web.pick(s) for s in sessions}
print("sessions per server:", sorted(Counter(before.values()).values()))

# 10.0.0.3 fails its health checks (or is drained): only its sessions move.
web.mark_down("10.0.0.3:8080")
during = {s: web.pick(s) for s in sessions}
moved = [s for s in sessions if during[s] != before[s]]
assert all(before[s] == "10.0.0.3:8080" for s in moved)
print(f"10.0.0.3 down: {len(moved)} sessions moved, all of them its own,")
print("  spread over", len(Counter(during[s] for s in moved)), "other servers")

# It recovers: exactly those sessions come back.
web.mark_up("10.0.0.3:8080")
assert {s: web.pick(s) for s in sessions} == before
print("10.0.0.3 up again: every session is back where it was")

# Replica sets: three distinct servers per key, in preference order.
print("replicas for customer-42:", web.pick_n("customer-42", 3))

# Moving from memcached clients, twemproxy or uhashring: the ketama ring places
# every key on the same node they do, for the same names and weights.
cache = KetamaBalancer(["cache-a:11211", "cache-b:11211", "cache-c:11211"], name="cache")
print("ketama: /img/logo.png ->", cache.pick("/img/logo.png"))
