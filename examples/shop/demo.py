"""``python -m shop demo [--once]``: the fleet, a simulated crowd, failures, and a report.

The crowd browses, searches, adds and removes, signs in and checks out with
approved, declined and 3-D Secure cards, through the front balancer. Midway
one app server is SIGKILLed and brought back, and the image origin fails for
a while (the edge keeps serving the images it has). Then a report, with the
checkout funnel that ``commercekit.analytics`` computed from the events the
shop emitted (``shop.insight``).
"""

from __future__ import annotations

import random
import statistics
import sys
import threading
import time
from collections import Counter
from decimal import Decimal
from typing import TextIO

import httpx

from shop.fleet import Fleet
from shop.insight import analytics_lines
from shop.monitor import parse_metrics
from shop.root import build_shop

__all__ = ["run_demo"]

CARDS = [
    ("4242424242424242", 7),
    ("4000000000000002", 1),
    ("4000000000009995", 1),
    ("4000000000003220", 2),
]
ADDRESS = {
    "name": "Demo Customer",
    "line1": "Main St 1",
    "city": "Berlin",
    "postcode": "10115",
    "country": "DE",
    "expiry": "12/30",
    "cvc": "123",
}


class Crowd:
    def __init__(self, fleet: Fleet, seconds: float, users: int) -> None:
        self.fleet, self.seconds, self.users = fleet, seconds, users
        self.lock = threading.Lock()
        self.latencies: list[float] = []
        self.status: Counter[str] = Counter()
        self.failed: Counter[str] = Counter()  # 5xx or transport errors, by method
        self.steps: Counter[str] = Counter()
        self.revenue = Decimal(0)
        self.images: Counter[str] = Counter()
        self.stop = threading.Event()

    def call(self, c: httpx.Client, method: str, url: str, **kw: object) -> httpx.Response | None:
        started = time.perf_counter()
        try:
            r = c.request(method, url, **kw)  # type: ignore[arg-type]
        except httpx.HTTPError as exc:
            with self.lock:
                self.status[type(exc).__name__] += 1
                self.failed[method] += 1
            return None
        with self.lock:
            self.latencies.append(time.perf_counter() - started)
            self.status[str(r.status_code)] += 1
            if r.status_code >= 500:
                self.failed[method] += 1
        return r

    def visitor(self, seed: int) -> None:
        rng = random.Random(seed)
        while not self.stop.is_set():
            with httpx.Client(base_url=self.fleet.url, timeout=30) as c:
                self.session(c, rng)

    def session(self, c: httpx.Client, rng: random.Random) -> None:
        listing = self.call(
            c, "GET", "/api/products", params={"q": rng.choice(["", "tee", "mug", "red"])}
        )
        if listing is None or listing.status_code != 200:
            return
        products = [p for p in listing.json()["products"] if p["available"] > 0]
        if not products:
            return
        p = rng.choice(products)
        r = self.call(c, "GET", f"/api/products/{p['id']}")
        self.count("viewed")
        if r is None or r.status_code != 200:
            return
        for image in p["images"]:
            try:
                got = httpx.get(image, timeout=5)
                with self.lock:
                    self.images[str(got.status_code)] += 1
            except httpx.HTTPError:
                with self.lock:
                    self.images["error"] += 1
        skus = [s for s, n in r.json()["stock"].items() if n > 0]
        if not skus or rng.random() < 0.3:
            return
        sku = rng.choice(skus)
        self.call(c, "POST", "/api/cart/add", json={"sku": sku, "qty": 1})
        self.count("added")
        if rng.random() < 0.15:
            self.call(c, "POST", "/api/cart/remove", json={"sku": sku})
            return
        if rng.random() < 0.2:
            email = f"demo{rng.randrange(50)}@example.com"
            self.call(c, "POST", "/api/signin", json={"email": email, "password": "demo-pass"})
        if rng.random() < 0.3:
            return
        card = rng.choices([n for n, _ in CARDS], weights=[w for _, w in CARDS])[0]
        self.count("checkout")
        r = self.call(c, "POST", "/api/checkout", json={**ADDRESS, "card_number": card})
        if r is not None and r.status_code == 202:
            r = self.call(c, "POST", r.json()["challenge"], json={"outcome": "pass"})
            self.count("3ds")
        if r is not None and r.status_code == 201:
            with self.lock:
                self.revenue += Decimal(r.json()["order"]["total"])
            self.count("ordered")
        elif r is not None and r.status_code == 402:
            self.count("declined")

    def count(self, step: str) -> None:
        with self.lock:
            self.steps[step] += 1


def _metric(text: str, name: str, **labels: str) -> float:
    """The sum of the samples of *name* (a Prometheus text exposition) with these *labels*."""
    return sum(
        value
        for sample, have, value in parse_metrics(text)
        if sample == name and all(have.get(k) == v for k, v in labels.items())
    )


def _health_events(front: str, names: dict[str, str], before: str = "") -> str:
    """Each app server's health changes the front balancer counted since *before*, by name."""
    changes: dict[str, Counter[str]] = {}
    for text, sign in ((front, 1), (before, -1)):
        for sample, labels, value in parse_metrics(text):
            if sample == "commercekit_balancer_health_transitions_total":
                node = labels.get("node", "?")
                counts = changes.setdefault(names.get(node, node), Counter())
                counts[labels.get("to", "?")] += sign * int(value)
    changes = {name: +counts for name, counts in changes.items() if +counts}
    parts = [
        f"{name} " + ", ".join(f"{to} {n}" for to, n in sorted(counts.items()))
        for name, counts in sorted(changes.items())
    ]
    return "; ".join(parts) or "none"


def _analytics(fleet: Fleet) -> list[str]:
    """The analytics' order count and checkout funnel (``shop.insight``), read as an app does."""
    shop = build_shop(fleet.settings)
    try:
        return analytics_lines(shop)
    finally:
        shop.close()


def run_demo(
    fleet: Fleet, *, seconds: float = 45.0, users: int = 6, out: TextIO | None = None
) -> str:
    """Drive the crowd and the failures; return the report."""
    stream = out or sys.stdout
    crowd = Crowd(fleet, seconds, users)
    threads = [threading.Thread(target=crowd.visitor, args=(i,), daemon=True) for i in range(users)]
    events: list[str] = []
    # The front's health changes so far (the app servers coming up with it) are not the demo's.
    front_before = httpx.get(fleet.url + "/metrics", timeout=5).text
    started = time.monotonic()
    for t in threads:
        t.start()
    flag = fleet.settings.data_dir / "origin-down"
    plan = [
        (0.30, "kill app-2"),
        (0.45, "origin down"),
        (0.55, "restart app-2"),
        (0.75, "origin up"),
    ]
    while (elapsed := time.monotonic() - started) < seconds:
        while plan and elapsed >= plan[0][0] * seconds:
            _, what = plan.pop(0)
            events.append(f"{elapsed:5.1f}s {what}")
            if what == "kill app-2":
                fleet.kill("app-2")
            elif what == "restart app-2":
                fleet.spawn("app-2")
            elif what == "origin down":
                flag.touch()
            else:
                flag.unlink(missing_ok=True)
        done = int(30 * elapsed / seconds)
        stream.write(
            f"\r[{'#' * done}{'.' * (30 - done)}] {elapsed:4.0f}/{seconds:.0f}s "
            f"{len(crowd.latencies)} requests, {crowd.steps['ordered']} orders"
        )
        stream.flush()
        time.sleep(0.5)
    crowd.stop.set()
    for t in threads:
        t.join(timeout=60)
    flag.unlink(missing_ok=True)
    stream.write("\n")
    for name in fleet.app_names():  # the report shows the fleet recovered
        fleet.wait_healthy(name, 60)
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        states = httpx.get(fleet.url + "/healthz", timeout=5).json()["backends"].values()
        if set(states) == {"up"}:
            break
        time.sleep(0.5)
    front = httpx.get(fleet.url + "/metrics", timeout=5).text
    health = httpx.get(fleet.url + "/healthz", timeout=5).json()
    edge = httpx.get(f"http://127.0.0.1:{fleet.edge_admin}/metrics", timeout=5).text
    hits = _metric(edge, "commercekit_cdn_hits_total")
    stale = _metric(edge, "commercekit_cdn_stale_served_total")
    misses = _metric(edge, "commercekit_cdn_misses_total")
    looked_up = hits + stale + misses
    ratio = f"{(hits + stale) / looked_up:.0%}" if looked_up else "-"
    names = {f"127.0.0.1:{fleet.procs[n].port}": n for n in fleet.app_names()}
    lat = sorted(crowd.latencies) or [0.0]
    p99 = lat[min(len(lat) - 1, int(len(lat) * 0.99))]
    errors = sum(n for k, n in crowd.status.items() if k[:1] not in "234")
    served = sum(crowd.images.values()) or 1
    report = [
        "== demo report ==",
        f"requests      {len(crowd.latencies)} (p50 {statistics.median(lat) * 1000:.0f} ms, "
        f"p99 {p99 * 1000:.0f} ms), statuses {dict(crowd.status)}",
        f"errors        {errors} (5xx or transport errors seen by clients): "
        f"{crowd.failed['GET']} GET, {crowd.failed['POST']} POST (a POST cut by the kill "
        "is a 502, never resent: it may have run)",
        f"failovers     {_metric(front, 'shop_front_retries_total'):.0f} retried elsewhere, "
        f"{_metric(front, 'shop_front_upstream_failures_total'):.0f} upstream failures",
        f"orders        {crowd.steps['ordered']}, revenue {crowd.revenue} EUR, "
        f"{crowd.steps['declined']} declined, {crowd.steps['3ds']} through 3-D Secure",
        *_analytics(fleet),
        f"crowd steps   viewed {crowd.steps['viewed']} -> added {crowd.steps['added']} -> "
        f"checkout {crowd.steps['checkout']} -> ordered {crowd.steps['ordered']} "
        "(the crowd's own counts of its requests, not customers)",
        f"images        {dict(crowd.images)} through the edge "
        f"({100 * crowd.images['200'] / served:.0f} % answered; the origin was down a while)",
        f"hit ratio     {ratio} at the edge ({hits:.0f} hits, {stale:.0f} stale, "
        f"{misses:.0f} misses; origin fetches "
        f"{_metric(edge, 'commercekit_cdn_origin_requests_total', result='ok'):.0f} ok, "
        f"{_metric(edge, 'commercekit_cdn_origin_requests_total', result='error'):.0f} failed)",
        "health events " + _health_events(front, names, front_before),
        "health now    "
        + ", ".join(f"{names.get(a, a)} {state}" for a, state in health["backends"].items()),
        "failures      " + "; ".join(events),
    ]
    return "\n".join(report)
