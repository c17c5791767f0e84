"""``python -m commercekit.analytics``: run a consumer, or print a report as JSON.

    python -m commercekit.analytics consume --log 'redis://127.0.0.1:6379/0?stream=shop' \\
        --db sqlite:///analytics.db --consumer analytics-1 --metrics-port 9464 \\
        --funnel 'checkout=Product Viewed>Product Added>Checkout Started>Order Completed@86400'
    python -m commercekit.analytics report --db sqlite:///analytics.db revenue
"""

from __future__ import annotations

import argparse
import json
import signal
import sys
import threading
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from commercekit.errors import CommerceKitError, ConfigurationError, InvalidInputError
from commercekit.metrics import Metrics
from commercekit.repository import Database, Node, ReplicatedTopology, engine_from_url

from ._logs._open import open_log
from ._pipeline._consumer import AnalyticsConsumer
from ._reports._dashboard import dashboard_from_catalogue
from ._reports._reports import Reports
from ._store._funnel import FunnelSpec
from ._store._store import AnalyticsStore

__all__ = ["main", "parse_funnel"]


def parse_funnel(text: str) -> FunnelSpec:
    """``name=Step A>Step B>Step C@window_s`` (the window defaults to one day)."""
    name, sep, rest = text.partition("=")
    if not sep:
        raise InvalidInputError(f"a funnel is name=Step A>Step B@window_s, got {text!r}")
    steps, _, window = rest.rpartition("@") if "@" in rest else (rest, "", "86400")
    try:
        window_s = int(window)
    except ValueError as exc:
        raise InvalidInputError(f"a funnel window is whole seconds, got {window!r}") from exc
    return FunnelSpec(
        name.strip(), tuple(s.strip() for s in steps.split(">") if s.strip()), window_s
    )


def _store(args: argparse.Namespace) -> AnalyticsStore:
    engine = engine_from_url(args.db)
    db = Database(ReplicatedTopology(Node("analytics", engine)))
    store = AnalyticsStore(db, funnels=[parse_funnel(f) for f in args.funnel])
    store.create()
    return store


def _report(reports: Reports, kind: str, arg: str | None) -> Any:
    if kind == "funnel":
        if arg is None:
            raise InvalidInputError("report funnel needs the funnel's name")
        return reports.funnel(arg).to_json()
    if kind == "revenue":
        return [r.to_json() for r in reports.revenue()]
    if kind == "products":
        return [p.to_json() for p in reports.top_products(arg or "bought")]
    if kind == "abandonment":
        return reports.cart_abandonment().to_json()
    if kind == "searches":
        return [s.to_json() for s in reports.no_result_searches()]
    if kind == "cohorts":
        return [c.to_json() for c in reports.cohorts()]
    if kind == "also-bought":
        if arg is None:
            raise InvalidInputError("report also-bought needs a product id")
        return [r.to_json() for r in reports.also_bought(arg)]
    if kind == "dead-letters":
        return reports.dead_letters()
    raise InvalidInputError(f"unknown report {kind!r}")


def _metrics_server(port: int | None, addr: str) -> tuple[Metrics | None, Any]:
    """PrometheusMetrics served at http://addr:port/metrics (the shipped alerts read them)."""
    if port is None:
        return None, None
    from commercekit._extras import require
    from commercekit.metrics import PrometheusMetrics

    prometheus_client = require(
        "prometheus_client", extra="prometheus", feature="consume --metrics-port"
    )

    metrics = PrometheusMetrics()
    try:
        server, _thread = prometheus_client.start_http_server(
            port, addr=addr, registry=metrics.registry
        )
    except OSError as exc:
        raise ConfigurationError(
            f"cannot serve the metrics port {port} on {addr}: {exc.strerror or exc}; "
            "pick a free --metrics-port"
        ) from exc
    return metrics, server


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line; returns the exit code."""
    parser = argparse.ArgumentParser(prog="python -m commercekit.analytics")
    sub = parser.add_subparsers(dest="command", required=True)
    consume = sub.add_parser("consume", help="apply an event log to the aggregates")
    report = sub.add_parser("report", help="print a report as JSON")
    for p in (consume, report):  # the dashboard needs no database
        p.add_argument("--db", required=True, help="SQLAlchemy URL of the aggregate store")
        p.add_argument("--funnel", action="append", default=[], help="name=Step A>Step B@window_s")
    consume.add_argument("--log", required=True, help="event log URL (redis://, nats://, jsonl://)")
    consume.add_argument(
        "--consumer", help="this consumer's name in its group (stable across restarts)"
    )
    consume.add_argument("--batch", type=int, default=1000)
    consume.add_argument("--idle-exit-s", type=float, default=None)
    consume.add_argument(
        "--metrics-port",
        type=int,
        help="serve the consumer's metrics at /metrics on this port ([prometheus] extra)",
    )
    consume.add_argument("--metrics-addr", default="127.0.0.1", help="the metrics address")
    report.add_argument(
        "kind",
        choices=[
            "funnel",
            "revenue",
            "products",
            "abandonment",
            "searches",
            "cohorts",
            "also-bought",
            "dead-letters",
        ],
    )
    report.add_argument("arg", nargs="?")
    dash = sub.add_parser("dashboard", help="print a Grafana dashboard made from docs/metrics.md")
    dash.add_argument("catalogue", help="the metrics catalogue (docs/metrics.md)")
    args = parser.parse_args(argv)
    try:
        if args.command == "dashboard":
            text = Path(args.catalogue).read_text(encoding="utf-8")
            json.dump(dashboard_from_catalogue(text), sys.stdout, indent=1)
            sys.stdout.write("\n")
            return 0
        store = _store(args)
        if args.command == "report":
            json.dump(_report(Reports(store), args.kind, args.arg), sys.stdout, indent=2)
            sys.stdout.write("\n")
            return 0
        log = open_log(args.log, consumer=args.consumer)
        try:
            # started once the log opened, stopped however the run ends: a bad --batch
            # or a log that fails must not leave the port served
            metrics, server = _metrics_server(args.metrics_port, args.metrics_addr)
            try:
                stop = threading.Event()
                signal.signal(signal.SIGTERM, lambda *_: stop.set())
                consumer = AnalyticsConsumer(
                    log,
                    store,
                    batch_size=args.batch,
                    metrics=metrics,
                    name=args.consumer or "default",
                )
                applied = consumer.run(stop=stop, idle_exit_s=args.idle_exit_s)
            finally:
                if server is not None:
                    server.shutdown()
                    server.server_close()
        finally:
            log.close()
        print(json.dumps({"applied": applied}))
        return 0
    except CommerceKitError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
