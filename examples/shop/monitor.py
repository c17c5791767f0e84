"""The admin's live operations figures, read from every process's Prometheus ``/metrics``.

The admin's app server scrapes the front balancer (``SHOP_FRONT_URL``), every
app server the front lists in its ``/healthz``, and the image edge's admin
port (``SHOP_EDGE_ADMIN_URL``); with no front it reads its own metrics. Rates
are taken between this scrape and the one before it (an earlier view of the
dashboard, at most five minutes old), or since each process started when
there is none. In production, point Prometheus at the same endpoints
(docs/deploy.md) and set ``SHOP_PROMETHEUS_URL``: the admin asks it instead
(:mod:`shop.promql`); this keeps the embedded shop free of it.
"""

from __future__ import annotations

import asyncio
import math
import time
from collections import deque
from collections.abc import Callable, Iterable
from dataclasses import asdict, dataclass, field
from typing import Any

import httpx
from prometheus_client.parser import text_string_to_metric_families

from shop.settings import Settings

__all__ = ["FleetMonitor", "OpsFigures", "ServerFigures", "parse_metrics", "quantile"]

Sample = tuple[str, dict[str, str], float]
MONITORING_ROUTES = frozenset({"/healthz", "/metrics"})  # not the shop's traffic
WINDOW_S = 300.0  # the oldest earlier scrape a rate is taken against


def parse_metrics(text: str) -> list[Sample]:
    """Every sample of a Prometheus text exposition as (name, labels, value)."""
    return [
        (s.name, dict(s.labels), float(s.value))
        for family in text_string_to_metric_families(text)
        for s in family.samples
    ]


def quantile(q: float, buckets: dict[float, float]) -> float | None:
    """The *q* quantile from cumulative histogram buckets ``{upper bound: count}``.

    Linear inside the bucket, as PromQL's ``histogram_quantile`` does; None when empty.
    """
    bounds = sorted(buckets)
    if not bounds or buckets[bounds[-1]] <= 0:
        return None
    rank = q * buckets[bounds[-1]]
    lower, below = 0.0, 0.0
    for bound in bounds:
        count = buckets[bound]
        if count >= rank:
            if math.isinf(bound):
                return lower
            inside = count - below
            return lower + (bound - lower) * ((rank - below) / inside if inside else 1.0)
        lower, below = bound, count
    return lower


@dataclass(frozen=True)
class Scrape:
    """The samples of each process at one moment (a process that did not answer is absent)."""

    at: float
    targets: dict[str, list[Sample]]
    backends: dict[str, str] = field(default_factory=dict)  # front: address -> health


@dataclass(frozen=True)
class ServerFigures:
    """One app server over the window: request rate, latency quantiles, 5xx share."""

    name: str
    rps: float
    p50_ms: float | None
    p99_ms: float | None
    error_rate: float
    requests: float


@dataclass(frozen=True)
class OpsFigures:
    """What the operations charts draw."""

    window_s: float | None  # None: since each process started
    servers: list[ServerFigures]
    balancer: dict[str, dict[str, float]]  # server -> in_service, ejections, went_down
    cdn: dict[str, float]  # hits, stale, misses, origin_ok, origin_error
    statements: dict[str, float]  # "<role> <node>" -> statements in the window
    replica_lag_ms: dict[str, float]  # replica node -> lag at its last probe
    replicas: int  # replicas configured (0: the topology has none)
    source: str = "scrape"  # "scrape": each process's /metrics; "prometheus": PromQL
    unavailable: str | None = None  # why there are no figures (Prometheus down or slow)


def _sum(samples: Iterable[Sample], name: str, where: Callable[[dict[str, str]], bool]) -> float:
    return sum(v for n, labels, v in samples if n == name and where(labels))


class FleetMonitor:
    """Scrapes the fleet's ``/metrics`` and turns two scrapes into the operations figures."""

    def __init__(self, settings: Settings, own: Callable[[], bytes], replicas: int) -> None:
        self.settings = settings
        self._own = own
        self._replicas = replicas
        self.history: deque[Scrape] = deque(maxlen=32)

    async def scrape(self) -> Scrape:
        """One scrape of every process (1 s each at most, concurrently)."""
        front = self.settings.front_url
        edge = self.settings.edge_admin_url
        texts: dict[str, str] = {}
        backends: dict[str, str] = {}
        async with httpx.AsyncClient(timeout=1.0) as client:

            async def get(name: str, url: str) -> None:
                try:
                    r = await client.get(url)
                except httpx.HTTPError:
                    return
                if r.status_code == 200:
                    texts[name] = r.text

            if front:
                try:
                    backends = (await client.get(front + "/healthz")).json()["backends"]
                except (httpx.HTTPError, ValueError, KeyError):
                    backends = {}
            jobs = [get(f"app {a}", f"http://{a}/metrics") for a in backends]
            if front:
                jobs.append(get("front", front + "/metrics"))
            if edge:
                jobs.append(get("edge", edge + "/metrics"))
            await asyncio.gather(*jobs)
        if not backends:  # one app server, no front: this process is the fleet
            texts["app self"] = self._own().decode()
        return Scrape(time.time(), {k: parse_metrics(v) for k, v in texts.items()}, dict(backends))

    async def figures(self) -> OpsFigures:
        """Scrape now and compare with the previous scrape (kept for the next view)."""
        now = await self.scrape()
        base = next((s for s in reversed(self.history) if 1.0 <= now.at - s.at <= WINDOW_S), None)
        self.history.append(now)
        return ops_figures(now, base, self._replicas)


def _app_name(samples: list[Sample], fallback: str) -> str:
    for name, labels, _ in samples:
        if name == "shop_http_requests_total" and "server" in labels:
            return labels["server"]
    return fallback


def _started(samples: list[Sample]) -> float | None:
    for name, _, value in samples:
        if name == "shop_process_start_time_seconds":
            return value
    return None


def _traffic(labels: dict[str, str]) -> bool:
    return labels.get("route") not in MONITORING_ROUTES


def _buckets(samples: list[Sample]) -> dict[float, float]:
    out: dict[float, float] = {}
    for name, labels, value in samples:
        if name == "shop_http_request_duration_seconds_bucket" and _traffic(labels):
            bound = float(labels["le"])
            out[bound] = out.get(bound, 0.0) + value
    return out


def _server(
    name: str, now: list[Sample], base: list[Sample] | None, window: float | None
) -> ServerFigures:
    def total(samples: list[Sample], errors: bool = False) -> float:
        return _sum(
            samples,
            "shop_http_requests_total",
            lambda labels: _traffic(labels) and (not errors or labels["status"] >= "500"),
        )

    requests, errors, buckets = total(now), total(now, True), _buckets(now)
    if base is not None:
        requests -= total(base)
        errors -= total(base, True)
        before = _buckets(base)
        delta = {b: c - before.get(b, 0.0) for b, c in buckets.items()}
        if delta.get(math.inf, 0.0) > 0:  # else idle in the window: latency since start
            buckets = delta
    p50, p99 = quantile(0.5, buckets), quantile(0.99, buckets)
    return ServerFigures(
        name=name,
        rps=requests / window if window else 0.0,
        p50_ms=None if p50 is None else p50 * 1000,
        p99_ms=None if p99 is None else p99 * 1000,
        error_rate=errors / requests if requests > 0 else 0.0,
        requests=requests,
    )


def _delta(
    now: list[Sample], base: list[Sample] | None, metric: str, **want: str
) -> tuple[float, float]:
    """(in the window, since start) of the counters *metric* whose labels match *want*."""

    def count(samples: list[Sample]) -> float:
        return _sum(
            samples, metric, lambda labels: all(labels.get(k) == v for k, v in want.items())
        )

    total = count(now)
    return (total - count(base) if base is not None else total), total


def ops_figures(now: Scrape, base: Scrape | None, replicas: int) -> OpsFigures:
    """The operations figures between *base* (or each process's start) and *now*."""
    servers: list[ServerFigures] = []
    names: dict[str, str] = {}  # address -> server name
    apps = {k: v for k, v in now.targets.items() if k.startswith("app ")}
    for target, samples in sorted(apps.items()):
        address = target.split(" ", 1)[1]
        names[address] = name = _app_name(samples, address)
        before = None if base is None else base.targets.get(target)
        started = _started(samples)
        if before is not None and base is not None:
            window: float | None = now.at - base.at
        else:
            before, window = None, (now.at - started) if started else None
        servers.append(_server(name, samples, before, window))

    front = now.targets.get("front", [])
    balancer: dict[str, dict[str, float]] = {}
    for address, health in now.backends.items():
        transitions = "commercekit_balancer_health_transitions_total"
        balancer[names.get(address, address)] = {
            "in service": 1.0 if health == "up" else 0.0,
            "ejections": _delta(front, None, "commercekit_balancer_ejections_total", node=address)[
                1
            ],
            "went down": _delta(front, None, transitions, node=address, to="down")[1]
            + _delta(front, None, transitions, node=address, to="ejected")[1],
        }

    edge_now = now.targets.get("edge", [])
    edge_base = None if base is None else base.targets.get("edge")
    wanted = {
        "hits": ("commercekit_cdn_hits_total", {}),
        "stale": ("commercekit_cdn_stale_served_total", {}),
        "misses": ("commercekit_cdn_misses_total", {}),
        "origin ok": ("commercekit_cdn_origin_requests_total", {"result": "ok"}),
        "origin error": ("commercekit_cdn_origin_requests_total", {"result": "error"}),
    }
    pairs = {k: _delta(edge_now, edge_base, m, **w) for k, (m, w) in wanted.items()}
    in_window = any(w for w, _ in pairs.values())  # an idle edge: since it started
    cdn = {k: (w if in_window else total) for k, (w, total) in pairs.items()}

    statements: dict[str, float] = {}
    lag: dict[str, float] = {}
    for samples in apps.values():
        for name, labels, value in samples:
            if name == "commercekit_repository_statements_total":
                role, node = labels.get("role", "?"), labels.get("node", "?")
                key = node if node == role else f"{role}: {node}"
                statements[key] = statements.get(key, 0.0) + value
            elif name == "commercekit_repository_replica_lag_seconds":
                node = labels.get("node", "?")
                lag[node] = max(lag.get(node, 0.0), value * 1000)
    return OpsFigures(
        window_s=None if base is None else now.at - base.at,
        servers=servers,
        balancer=balancer,
        cdn=cdn,
        statements=dict(sorted(statements.items())),
        replica_lag_ms=dict(sorted(lag.items())),
        replicas=replicas,
    )


def describe(figures: OpsFigures) -> dict[str, Any]:
    """A JSON-friendly summary (the admin's ``/admin/ops.json``)."""
    return {
        "window_s": figures.window_s,
        "servers": [asdict(s) for s in figures.servers],
        "balancer": figures.balancer,
        "cdn": figures.cdn,
        "statements": figures.statements,
        "replica_lag_ms": figures.replica_lag_ms,
        "replicas": figures.replicas,
        "source": figures.source,
        "unavailable": figures.unavailable,
    }
