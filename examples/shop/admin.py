"""The admin at ``/admin``: a login, business and operations charts as SVG, orders and stock.

Reports come from the analytics store the consumer fills
(:class:`commercekit.analytics.Reports`); order actions go through the
orders service (fulfil, cancel, refund) and restocking through inventory.
"""

from __future__ import annotations

import secrets
import uuid
from typing import TYPE_CHECKING, Any

from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import JSONResponse, RedirectResponse, Response
from starlette.routing import Route

from commercekit.analytics import Reports
from commercekit.commerce.orders import Order
from commercekit.errors import CommerceKitError, InvalidInputError
from shop.charts import bar_chart, grouped_chart
from shop.monitor import FleetMonitor, OpsFigures, describe
from shop.promql import PrometheusMonitor

if TYPE_CHECKING:  # shop.web imports this module
    from shop.web import App

__all__ = ["admin_routes", "business_charts", "operations_charts"]


def business_charts(r: Reports, facts: dict[str, Any]) -> dict[str, str]:
    """Revenue per day and currency, the funnel, top products, abandoned carts, cohorts.

    Top products are by product: the orders' events name each line's product
    in ``product_id`` (and the variant in ``sku``), so variants add up to one bar.
    """
    charts: dict[str, str] = {}
    revenue = r.revenue()
    days = sorted({d.day for d in revenue})[-14:]
    per = {(d.day, d.net.currency.code): float(d.net.amount) for d in revenue}
    currencies = sorted({c for _, c in per})
    charts["revenue"] = grouped_chart(
        "Revenue per day and currency (net)",
        [d[5:] for d in days],
        {c: [per.get((d, c), 0.0) for d in days] for c in currencies},
    )
    funnel = r.funnel("checkout")
    charts["funnel"] = bar_chart(
        "Checkout funnel (customers)",
        [s.split()[-1] for s in funnel.steps],
        [float(c) for c in funnel.total.counts],
        colour="#239b56",
    )
    top = [(p.product, p.count) for p in r.top_products("bought", limit=8)]
    charts["top"] = bar_chart(
        "Top products (units bought)",
        [product for product, _ in top],
        [float(n) for _, n in top],
        colour="#7d3c98",
    )
    abandoned = r.cart_abandonment()
    facts["abandonment"] = abandoned
    charts["abandoned"] = bar_chart(
        f"Abandoned carts ({abandoned.rate:.0%} of customers who added)",
        ["added to a cart", "ordered", "abandoned"] if abandoned.carts else [],
        [
            float(abandoned.carts),
            float(abandoned.carts - abandoned.abandoned),
            float(abandoned.abandoned),
        ]
        if abandoned.carts
        else [],
        colour="#c0392b",
    )
    cohorts = r.cohorts(weeks=4)[-6:]
    charts["cohorts"] = grouped_chart(
        "Cohort retention (share of first-week buyers buying in week k)",
        [c.week for c in cohorts],
        {f"week {k}": [c.retention[k] * 100 for c in cohorts] for k in range(4)},
        unit="%",
    )
    return charts


def operations_charts(ops: OpsFigures) -> dict[str, str]:
    """Per app server rate, latency and errors; balancer; CDN; statements; replica lag.

    Figures Prometheus could not give (``ops.unavailable``) draw every chart
    empty, saying why.
    """
    when = "since start" if ops.window_s is None else f"last {ops.window_s:.0f} s"
    if ops.source == "prometheus":
        when += ", Prometheus"
    why = ops.unavailable
    names = [s.name for s in ops.servers]
    charts = {
        "ops-rps": bar_chart(
            f"Requests/s per app server ({when})",
            names,
            [s.rps for s in ops.servers],
            colour="#566573",
            empty=why or "no data yet",
        ),
        "ops-latency": grouped_chart(
            f"Latency per app server, ms ({when})",
            names,
            {
                "p50": [s.p50_ms or 0.0 for s in ops.servers],
                "p99": [s.p99_ms or 0.0 for s in ops.servers],
            },
            unit=" ms",
            empty=why or "no data yet",
        ),
        "ops-errors": bar_chart(
            f"Error rate per app server, % 5xx ({when})",
            names,
            [s.error_rate * 100 for s in ops.servers],
            unit="%",
            colour="#c0392b",
            empty=why or "no data yet",
        ),
    }
    nodes = list(ops.balancer)
    keys = ("in service", "ejections", "went down")
    charts["balancer"] = grouped_chart(
        "Front balancer: health and ejections per app server",
        nodes,
        {k: [ops.balancer[n][k] for n in nodes] for k in keys},
        empty=why or "no front balancer (one app server)",
    )
    cdn = ops.cdn
    served = cdn["hits"] + cdn["stale"] + cdn["misses"]
    ratio = f"{(cdn['hits'] + cdn['stale']) / served:.0%}" if served else "-"
    charts["cdn"] = bar_chart(
        f"Image edge: hit ratio {ratio}, origin fetches",
        list(cdn) if served or cdn["origin ok"] or cdn["origin error"] else [],
        list(cdn.values()) if served or cdn["origin ok"] or cdn["origin error"] else [],
        colour="#148f77",
        empty=why or "no data yet",
    )
    charts["db-statements"] = bar_chart(
        "SQL statements by node (primary / replica, since start)",
        list(ops.statements),
        list(ops.statements.values()),
        colour="#2e86c1",
        empty=why or "no data yet",
    )
    charts["db-lag"] = grouped_chart(
        "Replica lag, ms (last probe)",
        list(ops.replica_lag_ms),
        {"lag": list(ops.replica_lag_ms.values())},
        unit=" ms",
        empty=why or ("this topology has no replicas" if not ops.replicas else "no probe yet"),
    )
    return charts


class Admin:
    def __init__(self, app: App) -> None:
        self.app = app  # pages, sessions, CSRF
        self.shop = app.shop
        settings = self.shop.settings
        replicas = len(settings.replica_urls)
        self.monitor: FleetMonitor | PrometheusMonitor
        if settings.prometheus_url:  # ask Prometheus (PromQL) rather than scrape the fleet
            self.monitor = PrometheusMonitor(settings.prometheus_url, replicas)
        else:
            self.monitor = FleetMonitor(
                settings, lambda: self.shop.metrics.exposition()[0], replicas=replicas
            )

    def signed_in(self, request: Request) -> bool:
        return bool(request.session.get("admin"))

    async def login(self, request: Request) -> Response:
        from shop.web import checked_form

        if request.method == "GET":
            return self.app.page(request, "admin_login.html", message=None)
        fields = await checked_form(request)
        if not secrets.compare_digest(
            fields.get("password", "").encode(), self.shop.settings.admin_password.encode()
        ):
            return self.app.page(request, "admin_login.html", 401, message="Wrong password.")
        request.session["admin"] = True
        return RedirectResponse("/admin", 303)

    async def dashboard(self, request: Request) -> Response:
        if not self.signed_in(request):
            return RedirectResponse("/admin/login", 303)
        ops = await self.monitor.figures()
        data = await run_in_threadpool(self._business, request.session.get("admin_token"))
        return self.app.page(
            request,
            "admin.html",
            ops_charts=operations_charts(ops),
            ops_unavailable=ops.unavailable,
            **data,
        )

    async def ops_json(self, request: Request) -> Response:
        """The operations figures as JSON (what the charts draw), for scripts and tests."""
        if not self.signed_in(request):
            return JSONResponse({"error": "sign in at /admin/login"}, 401)
        return JSONResponse(describe(await self.monitor.figures()))

    def _business(self, token: str | None = None) -> dict[str, Any]:
        """The dashboard's figures and everyone's recent orders (``Orders.recent``).

        *token* (the primary's position after the admin's last order action)
        keeps the orders at least that fresh when a replica serves them.
        """
        charts: dict[str, str] = {}
        facts: dict[str, Any] = {}
        try:
            charts.update(business_charts(self.shop.reports, facts))
        except CommerceKitError as exc:
            facts["analytics_error"] = type(exc).__name__
        items = self.shop.catalog.all()
        low = sorted(items, key=lambda i: i.available)[:8]
        charts["stock"] = bar_chart(
            "Lowest stock (units available)",
            [i.id for i in low],
            [float(i.available) for i in low],
            colour="#d68910",
        )
        orders = self.shop.commerce.orders.recent(20, token=token).orders
        return {
            "charts": charts,
            "facts": facts,
            "orders": orders,
            "low": [(i.id, [v.sku for v in i.product.variants], i.available) for i in low],
        }

    async def order_action(self, request: Request) -> Response:
        from shop.web import checked_form

        if not self.signed_in(request):
            return RedirectResponse("/admin/login", 303)
        await checked_form(request)
        oid, action = request.path_params["oid"], request.path_params["action"]
        orders = self.shop.commerce.orders

        def work() -> Order:
            order = orders.get(oid)
            if action == "fulfil":
                left = {x.sku: x.qty - x.fulfilled for x in order.lines if x.qty > x.fulfilled}
                return orders.fulfil(oid, left)
            if action == "cancel":
                return orders.cancel(oid, reason="admin")
            if action == "refund":
                # everything still captured, shipping included
                return orders.refund(oid, key=f"admin-{oid}")
            raise InvalidInputError(f"no order action {action!r}")

        await run_in_threadpool(work)
        # The primary's position after the action: the dashboard's list of recent
        # orders, which a replica may serve, then shows it.
        token = await run_in_threadpool(lambda: self.shop.db.run(lambda uow: None).token)
        request.session["admin_token"] = str(token)
        return RedirectResponse("/admin#orders", 303)

    async def restock(self, request: Request) -> Response:
        from shop.web import checked_form

        if not self.signed_in(request):
            return RedirectResponse("/admin/login", 303)
        fields = await checked_form(request)
        try:
            qty = int(fields.get("qty", ""))
        except ValueError:
            raise InvalidInputError("qty is a whole number") from None
        sku = fields.get("sku", "")
        await run_in_threadpool(
            self.shop.commerce.inventory.adjust, sku, qty, key=f"restock-{uuid.uuid4().hex}"
        )
        self.shop.catalog.invalidate()
        return RedirectResponse("/admin#stock", 303)


def admin_routes(app: App) -> list[Route]:
    admin = Admin(app)
    return [
        Route("/admin", admin.dashboard),
        Route("/admin/ops.json", admin.ops_json),
        Route("/admin/login", admin.login, methods=["GET", "POST"]),
        Route("/admin/orders/{oid}/{action}", admin.order_action, methods=["POST"]),
        Route("/admin/restock", admin.restock, methods=["POST"]),
    ]
