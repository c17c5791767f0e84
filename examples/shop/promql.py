"""The admin's live operations figures read from Prometheus (``SHOP_PROMETHEUS_URL``).

With a Prometheus scraping the fleet with the jobs of docs/deploy.md
(``shop-app``, ``shop-front``, ``shop-edge``), the admin asks it with PromQL
(``/api/v1/query``, instant queries, all at once) instead of scraping every
process itself: rates over the last :data:`WINDOW_S` seconds, the counters'
totals for what counts since start. A Prometheus that is down, slow (over
:data:`TIMEOUT_S` for all the queries together) or answers an error gives
figures that say so (``OpsFigures.unavailable``), never an exception.
"""

from __future__ import annotations

import asyncio
import math
from typing import Any

import httpx

from shop.monitor import OpsFigures, ServerFigures
from shop.settings import redact_url

__all__ = ["QUERIES", "TIMEOUT_S", "WINDOW_S", "PrometheusMonitor"]

TIMEOUT_S = 2.0
"""The longest the dashboard waits for Prometheus (every query, together)."""

WINDOW_S = 60
"""The rates' window, in seconds (``rate(...[60s])``)."""

_APP = 'job="shop-app",route!~"/healthz|/metrics"'  # the shop's traffic, not the monitoring's
_W = f"[{WINDOW_S}s]"
QUERIES: dict[str, str] = {
    "names": 'group by (instance, server) (shop_http_requests_total{job="shop-app"})',
    "rps": f"sum by (server) (rate(shop_http_requests_total{{{_APP}}}{_W}))",
    "requests": f"sum by (server) (increase(shop_http_requests_total{{{_APP}}}{_W}))",
    "errors": f'sum by (server) (rate(shop_http_requests_total{{{_APP},status=~"5.."}}{_W}))',
    "p50": "histogram_quantile(0.5, sum by (server, le) "
    f"(rate(shop_http_request_duration_seconds_bucket{{{_APP}}}{_W})))",
    "p99": "histogram_quantile(0.99, sum by (server, le) "
    f"(rate(shop_http_request_duration_seconds_bucket{{{_APP}}}{_W})))",
    "up": 'up{job="shop-app"}',
    "ejections": 'sum by (node) (commercekit_balancer_ejections_total{job="shop-front"})',
    "went_down": "sum by (node) (commercekit_balancer_health_transitions_total"
    '{job="shop-front",to=~"down|ejected"})',
    "statements": 'sum by (role, node) (commercekit_repository_statements_total{job="shop-app"})',
    "lag": 'max by (node) (commercekit_repository_replica_lag_seconds{job="shop-app"})',
}
_CDN = {
    "hits": 'commercekit_cdn_hits_total{job="shop-edge"}',
    "stale": 'commercekit_cdn_stale_served_total{job="shop-edge"}',
    "misses": 'commercekit_cdn_misses_total{job="shop-edge"}',
    "origin ok": 'commercekit_cdn_origin_requests_total{job="shop-edge",result="ok"}',
    "origin error": 'commercekit_cdn_origin_requests_total{job="shop-edge",result="error"}',
}
for _key, _series in _CDN.items():
    QUERIES[f"cdn window {_key}"] = f"sum(increase({_series}{_W}))"
    QUERIES[f"cdn total {_key}"] = f"sum({_series})"

Vector = list[tuple[dict[str, str], float]]


class PrometheusUnavailable(Exception):
    """Prometheus did not answer a query, or answered an error (said on the dashboard)."""


def _vector(body: Any) -> Vector:
    """The (labels, value) of an instant query's answer; NaN values (no traffic) left out."""
    if not isinstance(body, dict) or body.get("status") != "success":
        error = body.get("error", "no answer") if isinstance(body, dict) else "not JSON"
        raise PrometheusUnavailable(f"the query failed: {str(error)[:200]}")
    out: Vector = []
    for row in body["data"]["result"]:
        value = float(row["value"][1])
        if not math.isnan(value):
            out.append((dict(row["metric"]), value))
    return out


class PrometheusMonitor:
    """The operations figures from the Prometheus at *url* (``OpsFigures``, as ``FleetMonitor``).

    *transport* (tests) replaces httpx's network transport.
    """

    def __init__(
        self,
        url: str,
        replicas: int,
        *,
        timeout_s: float = TIMEOUT_S,
        transport: httpx.AsyncBaseTransport | None = None,
    ) -> None:
        self.url = url.rstrip("/")
        self._replicas = replicas
        self._timeout_s = timeout_s
        self._transport = transport

    async def figures(self) -> OpsFigures:
        """Every query at once, within the timeout; figures saying why when Prometheus fails."""
        try:
            async with asyncio.timeout(self._timeout_s):
                answers = await self._ask()
        except (TimeoutError, httpx.TimeoutException):
            return self._unavailable(f"did not answer within {self._timeout_s:g} s")
        except httpx.HTTPError as exc:
            return self._unavailable(f"could not be reached ({type(exc).__name__})")
        except PrometheusUnavailable as exc:
            return self._unavailable(str(exc))
        except (ValueError, KeyError, IndexError, TypeError):
            return self._unavailable("answered something that is not a query result")
        return self._figures(answers)

    async def _ask(self) -> dict[str, Vector]:
        async with httpx.AsyncClient(
            base_url=self.url, timeout=self._timeout_s, transport=self._transport
        ) as client:

            async def one(promql: str) -> Vector:
                r = await client.get("/api/v1/query", params={"query": promql})
                if r.status_code >= 500:  # 4xx carries Prometheus's error in the body
                    raise PrometheusUnavailable(f"answered HTTP {r.status_code}")
                return _vector(r.json())

            keys = list(QUERIES)
            found = await asyncio.gather(*(one(QUERIES[k]) for k in keys))
        return dict(zip(keys, found, strict=True))

    def _unavailable(self, why: str) -> OpsFigures:
        return OpsFigures(
            window_s=float(WINDOW_S),
            servers=[],
            balancer={},
            cdn=dict.fromkeys(_CDN, 0.0),
            statements={},
            replica_lag_ms={},
            replicas=self._replicas,
            source="prometheus",
            unavailable=f"Prometheus at {redact_url(self.url)} {why}",
        )

    def _figures(self, a: dict[str, Vector]) -> OpsFigures:
        def by(key: str, label: str) -> dict[str, float]:
            return {labels.get(label, "?"): value for labels, value in a[key]}

        names = {
            labels["instance"]: labels["server"]
            for labels, _ in a["names"]
            if "instance" in labels and "server" in labels
        }
        rps, errors = by("rps", "server"), by("errors", "server")
        requests = by("requests", "server")
        p50, p99 = by("p50", "server"), by("p99", "server")
        servers = [
            ServerFigures(
                name=server,
                rps=rps.get(server, 0.0),
                p50_ms=None if server not in p50 else p50[server] * 1000,
                p99_ms=None if server not in p99 else p99[server] * 1000,
                error_rate=errors.get(server, 0.0) / rps[server] if rps.get(server) else 0.0,
                requests=requests.get(server, 0.0),
            )
            for server in sorted(set(names.values()) | set(rps))
        ]
        ejections, went_down = by("ejections", "node"), by("went_down", "node")
        balancer = {
            names.get(instance, instance): {
                "in service": value,
                "ejections": ejections.get(instance, 0.0),
                "went down": went_down.get(instance, 0.0),
            }
            for instance, value in sorted(by("up", "instance").items())
        }
        window = {k: sum(v for _, v in a[f"cdn window {k}"]) for k in _CDN}
        total = {k: sum(v for _, v in a[f"cdn total {k}"]) for k in _CDN}
        cdn = window if any(window.values()) else total  # an idle edge: since it started
        statements: dict[str, float] = {}
        for labels, value in a["statements"]:
            role, node = labels.get("role", "?"), labels.get("node", "?")
            key = node if node == role else f"{role}: {node}"
            statements[key] = statements.get(key, 0.0) + value
        lag = {node: value * 1000 for node, value in by("lag", "node").items()}
        return OpsFigures(
            window_s=float(WINDOW_S),
            servers=servers,
            balancer=balancer,
            cdn=cdn,
            statements=dict(sorted(statements.items())),
            replica_lag_ms=dict(sorted(lag.items())),
            replicas=self._replicas,
            source="prometheus",
        )
