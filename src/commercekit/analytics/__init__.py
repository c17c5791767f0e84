"""Customer behaviour counted exactly once through a real event log.

Events with identity (:class:`AnalyticsEvent`, Segment's e-commerce names)
are written to the repository's transactional outbox, relayed at least once
to an :class:`EventLog` (Redis Streams, NATS JetStream, a JSON-lines file or
a SQL table), and applied by an :class:`AnalyticsConsumer` to aggregates in
SQL that de-duplicate by event id in the same transaction: funnels, revenue
per currency, top products, cart abandonment, searches with no result,
weekly cohorts and item-to-item recommendations. See ``docs/analytics.md``.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from ._events._event import ECOMMERCE_EVENTS, IDENTITY_EVENTS, AnalyticsEvent
from ._events._ga4 import GA4_EVENT_NAMES, GA4Client, ga4_event, ga4_payload
from ._events._segment import (
    LineItem,
    alias,
    checkout_started,
    ecommerce_event,
    from_metrics_event,
    identify,
    order_completed,
    order_refunded,
    product_added,
    product_removed,
    product_viewed,
    products_searched,
)
from ._logs._jsonl import JsonLinesLog
from ._logs._log import Delivery, EventLog, LogRecord
from ._logs._open import open_log
from ._logs._sql_table import SqlEventLog
from ._pipeline._consumer import AnalyticsConsumer
from ._pipeline._relay import LogSink, OutboxRelay, record
from ._reports._dashboard import dashboard_file, dashboard_from_catalogue, rules_file
from ._reports._reports import (
    CartAbandonment,
    Cohort,
    FunnelDay,
    FunnelReport,
    ProductCount,
    ProductRevenue,
    Recommendation,
    Reports,
    RevenueDay,
    SearchCount,
)
from ._store._funnel import FunnelSpec
from ._store._store import AnalyticsStore, ApplyResult

if TYPE_CHECKING:
    from ._logs._nats import JetStreamLog
    from ._logs._redis import RedisStreamsLog

__all__ = [
    "ECOMMERCE_EVENTS",
    "GA4_EVENT_NAMES",
    "IDENTITY_EVENTS",
    "AnalyticsConsumer",
    "AnalyticsEvent",
    "AnalyticsStore",
    "ApplyResult",
    "CartAbandonment",
    "Cohort",
    "Delivery",
    "EventLog",
    "FunnelDay",
    "FunnelReport",
    "FunnelSpec",
    "GA4Client",
    "JetStreamLog",
    "JsonLinesLog",
    "LineItem",
    "LogRecord",
    "LogSink",
    "OutboxRelay",
    "ProductCount",
    "ProductRevenue",
    "Recommendation",
    "RedisStreamsLog",
    "Reports",
    "RevenueDay",
    "SearchCount",
    "SqlEventLog",
    "alias",
    "checkout_started",
    "dashboard_file",
    "dashboard_from_catalogue",
    "ecommerce_event",
    "from_metrics_event",
    "ga4_event",
    "ga4_payload",
    "identify",
    "open_log",
    "order_completed",
    "order_refunded",
    "product_added",
    "product_removed",
    "product_viewed",
    "products_searched",
    "record",
    "rules_file",
]

_OPTIONAL = {"RedisStreamsLog": "._logs._redis", "JetStreamLog": "._logs._nats"}


def __getattr__(name: str) -> Any:
    # The Redis and NATS engines import their client library (an extra) on first use.
    if name not in _OPTIONAL:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    import importlib

    return getattr(importlib.import_module(_OPTIONAL[name], __name__), name)
