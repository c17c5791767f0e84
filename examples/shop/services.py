"""The fleet's smaller processes: the image origin and the analytics consumer.

Both are Starlette apps on uvicorn, so each has ``/healthz``, ``/metrics`` and
the same access-log line as the app servers.
"""

from __future__ import annotations

import contextlib
import functools
import threading
from collections.abc import AsyncIterator
from typing import TypedDict

from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import FileResponse, JSONResponse, Response
from starlette.routing import Route

from commercekit.analytics import (
    AnalyticsConsumer,
    AnalyticsStore,
    FunnelSpec,
    OutboxRelay,
    open_log,
)
from commercekit.cdn import AssetManifest
from commercekit.commerce import OUTBOX
from commercekit.commerce.catalog import Catalog
from commercekit.errors import CommerceKitError, NotFoundError
from commercekit.metrics import PrometheusMetrics
from commercekit.repository import Database, ReplicatedTopology
from shop.observe import ObserveMiddleware
from shop.settings import Settings

__all__ = ["FUNNEL", "consumer_app", "origin_app"]

FUNNEL = FunnelSpec(
    "checkout",
    ("Product Viewed", "Product Added", "Checkout Started", "Order Completed"),
    window_s=3600,
)


class _ConsumerState(TypedDict):
    """What the consumer's /healthz reports: rounds run, events applied, the last error."""

    rounds: int
    applied: int
    error: str


def _metrics_route(metrics: PrometheusMetrics) -> Route:
    async def handler(_: Request) -> Response:
        body, ctype = metrics.exposition()
        return Response(body, media_type=ctype.split(";")[0])

    return Route("/metrics", handler)


def origin_app(settings: Settings) -> Starlette:
    """The image origin: the seed's files under their fingerprinted URLs, ``immutable``.

    A file named ``origin-down`` in the data folder makes it answer 503 (the
    demo's origin outage; the edge keeps serving what it has).
    """
    metrics = PrometheusMetrics()
    manifest_path = settings.data_dir / "manifest.json"
    fail_flag = settings.data_dir / "origin-down"

    async def asset(request: Request) -> Response:
        if fail_flag.exists():
            return Response("origin unavailable\n", 503)
        manifest = AssetManifest.from_json(manifest_path.read_text())
        name = manifest.name_for(request.url.path)
        if name is None:
            return Response(status_code=404, headers={"cache-control": "max-age=5"})
        return FileResponse(
            settings.image_dir / name,
            headers={"cache-control": "public, max-age=31536000, immutable"},
        )

    async def healthz(_: Request) -> Response:
        up = manifest_path.exists() and not fail_flag.exists()
        return JSONResponse({"status": "ok" if up else "unavailable"}, 200 if up else 503)

    return Starlette(
        routes=[
            Route("/assets/{path:path}", asset),
            Route("/healthz", healthz),
            _metrics_route(metrics),
        ],
        middleware=[
            Middleware(ObserveMiddleware, metrics=metrics, server="origin", assign_sid=False)
        ],
    )


def consumer_app(settings: Settings, *, consumer: str = "analytics-1") -> Starlette:
    """The analytics consumer: relays the outbox to the event log and applies it to SQL.

    *consumer* names it in the event log's group: a second process under
    another name takes over what the first left unacknowledged (Redis Streams).
    """
    metrics = PrometheusMetrics()
    shop_db = Database(
        ReplicatedTopology.from_urls(settings.database_url, list(settings.replica_urls))
    )
    analytics_db = Database(ReplicatedTopology.from_urls(settings.analytics_url))
    catalog = Catalog(shop_db)

    @functools.lru_cache(maxsize=4096)
    def product_of(sku: str) -> str | None:
        """The product of a SKU, for order events written before they named products."""
        try:
            return catalog.variant(sku).product_id
        except NotFoundError:  # not a SKU (a product id already): kept as it is
            return None

    store = AnalyticsStore(analytics_db, funnels=[FUNNEL], product_of=product_of)
    store.create()
    relay = OutboxRelay(shop_db, OUTBOX, open_log(settings.events_url), metrics=metrics)
    applier = AnalyticsConsumer(
        open_log(settings.events_url, consumer=consumer),
        store,
        metrics=metrics,
        poll_timeout_s=0.2,
        name="shop",
    )
    stop = threading.Event()
    state: _ConsumerState = {"rounds": 0, "applied": 0, "error": ""}

    def loop() -> None:
        while not stop.is_set():
            try:
                relay.run_once()
                result = applier.run_once()
                state["rounds"] += 1
                state["applied"] += result.applied
                state["error"] = ""
            except CommerceKitError as exc:  # a database or log away: wait it out
                state["error"] = type(exc).__name__
                stop.wait(0.5)

    @contextlib.asynccontextmanager
    async def lifespan(_: Starlette) -> AsyncIterator[None]:
        worker = threading.Thread(target=loop, name="analytics", daemon=True)
        worker.start()
        try:
            yield
        finally:
            stop.set()
            worker.join(timeout=5)

    async def healthz(_: Request) -> Response:
        ok = not state["error"]
        return JSONResponse({"status": "ok" if ok else "degraded", **state}, 200 if ok else 503)

    return Starlette(
        routes=[Route("/healthz", healthz), _metrics_route(metrics)],
        middleware=[
            Middleware(ObserveMiddleware, metrics=metrics, server="analytics", assign_sid=False)
        ],
        lifespan=lifespan,
    )
