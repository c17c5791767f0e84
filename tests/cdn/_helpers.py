"""Shared helpers for the CDN tests: a versioned origin and an edge built around it."""

from __future__ import annotations

from collections.abc import Callable

from commercekit.cdn import (
    EdgeCache,
    Headers,
    ManualClock,
    MemoryStore,
    MockOrigin,
    Request,
    Response,
)
from commercekit.cdn._message._dates import format_http_date
from commercekit.metrics import InMemoryMetrics


class VersionedOrigin:
    """Serves ``v<N> <path>`` with the given headers; bump ``version`` to change content."""

    def __init__(self, clock: ManualClock, cache_control: str = "max-age=60") -> None:
        self.clock = clock
        self.version = 1
        self.cache_control = cache_control
        self.extra: dict[str, str] = {}
        self.fail: BaseException | None = None
        self.status = 200

    def __call__(self, request: Request) -> Response:
        if self.fail is not None:
            raise self.fail
        etag = f'"v{self.version}"'
        if request.headers.get("if-none-match") == etag:
            return Response(304, Headers({"etag": etag, "cache-control": self.cache_control}))
        path = request.url.split("/", 3)[-1]
        headers = {
            "cache-control": self.cache_control,
            "etag": etag,
            "date": format_http_date(self.clock()),
            "content-type": "text/plain",
            **self.extra,
        }
        return Response(self.status, Headers(headers), f"v{self.version} {path}".encode())


def make_edge(
    cache_control: str = "max-age=60",
    *,
    handler: Callable[[Request], Response] | None = None,
    **kwargs: object,
) -> tuple[EdgeCache, MockOrigin, VersionedOrigin, ManualClock, InMemoryMetrics]:
    clock = ManualClock()
    versioned = VersionedOrigin(clock, cache_control)
    origin = MockOrigin(handler or versioned)
    metrics = InMemoryMetrics()
    store = MemoryStore(10_000_000, clock=clock, metrics=metrics)
    edge = EdgeCache(origin, store, clock=clock, metrics=metrics, **kwargs)  # type: ignore[arg-type]
    return edge, origin, versioned, clock, metrics
