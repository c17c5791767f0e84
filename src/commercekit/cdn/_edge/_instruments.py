"""The instruments an ``EdgeCache`` reports through, created once when it is built."""

from __future__ import annotations

from commercekit.cdn._purge._selector import PurgeKind
from commercekit.metrics import Counter, Histogram, Metrics

__all__ = ["EdgeInstruments"]


class EdgeInstruments:
    """Every counter and histogram of one edge, bound to its ``edge`` tag."""

    __slots__ = (
        "coalesced",
        "hits",
        "misses",
        "origin_bytes",
        "origin_errors",
        "origin_latency",
        "origin_requests",
        "passes",
        "purges",
        "revalidated",
        "served_bytes",
        "stale_if_error",
        "stale_while_revalidate",
        "store_errors",
    )

    def __init__(self, metrics: Metrics, edge: str) -> None:
        tags = {"edge": edge}
        c = metrics.counter
        self.hits: Counter = c(
            "commercekit_cdn_hits_total",
            description="Requests answered from a fresh stored response.",
            tags=tags,
        )
        self.misses: Counter = c(
            "commercekit_cdn_misses_total",
            description="Cacheable requests with nothing usable stored (the origin was asked).",
            tags=tags,
        )
        self.passes: Counter = c(
            "commercekit_cdn_passes_total",
            description="Requests sent straight to the origin (unsafe methods, no-store, private).",
            tags=tags,
        )
        self.revalidated: Counter = c(
            "commercekit_cdn_revalidated_total",
            description="Stale responses the origin confirmed with 304 Not Modified.",
            tags=tags,
        )
        self.stale_while_revalidate: Counter = c(
            "commercekit_cdn_stale_served_total",
            description="Stale responses served (stale-while-revalidate or stale-if-error).",
            tags={**tags, "reason": "while_revalidate"},
        )
        self.stale_if_error: Counter = c(
            "commercekit_cdn_stale_served_total",
            description="Stale responses served (stale-while-revalidate or stale-if-error).",
            tags={**tags, "reason": "if_error"},
        )
        self.coalesced: Counter = c(
            "commercekit_cdn_coalesced_waiters_total",
            description="Requests that waited for another request's origin fetch, not their own.",
            tags=tags,
        )
        self.origin_requests: Counter = c(
            "commercekit_cdn_origin_requests_total",
            description="Requests sent to the origin, by result.",
            tags={**tags, "result": "ok"},
        )
        self.origin_errors: Counter = c(
            "commercekit_cdn_origin_requests_total",
            description="Requests sent to the origin, by result.",
            tags={**tags, "result": "error"},
        )
        self.origin_latency: Histogram = metrics.histogram(
            "commercekit_cdn_origin_latency_seconds",
            description="Time from sending a request to the origin to having its headers "
            "(and the whole body, when it is small enough not to stream).",
            tags=tags,
        )
        self.served_bytes: Counter = c(
            "commercekit_cdn_served_bytes_total",
            description="Body bytes sent to clients.",
            unit="bytes",
            tags=tags,
        )
        self.origin_bytes: Counter = c(
            "commercekit_cdn_origin_bytes_total",
            description="Body bytes received from the origin.",
            unit="bytes",
            tags=tags,
        )
        self.store_errors: Counter = c(
            "commercekit_cdn_store_errors_total",
            description="Store reads or writes that failed (the request went on without it).",
            tags=tags,
        )
        self.purges: dict[tuple[PurgeKind, bool], Counter] = {
            (kind, soft): c(
                "commercekit_cdn_purges_total",
                description="Purge requests by kind (url, tag, prefix, all) and mode (soft, hard).",
                tags={**tags, "kind": kind.value, "mode": "soft" if soft else "hard"},
            )
            for kind in PurgeKind
            for soft in (False, True)
        }
