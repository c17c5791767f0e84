"""The admin at ``/admin``: a login, business and operations charts as SVG, orders and stock.

Reports come from the analytics store the consumer fills
(:class:`commercekit.analytics.Reports`); order actions go through the
orders service (fulfil, cancel, refund) and restocking through inventory.
"""

from __future__ import annotations

import secrets
import uuid
from typing import Any

import httpx
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import RedirectResponse, Response
from starlette.routing import Route

from commercekit.commerce.orders import Order
from commercekit.errors import CommerceKitError, InvalidInputError
from shop.charts import bar_chart

__all__ = ["admin_routes"]


class Admin:
    def __init__(self, app: Any) -> None:
        self.app = app  # shop.web.App: pages, sessions, CSRF
        self.shop = app.shop

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
        data = await run_in_threadpool(self._gather)
        return self.app.page(request, "admin.html", **data)

    def _gather(self) -> dict[str, Any]:
        charts: dict[str, str] = {}
        facts: dict[str, Any] = {}
        try:
            r = self.shop.reports
            revenue = r.revenue()[-14:]
            charts["revenue"] = bar_chart(
                "Revenue per day (" + (revenue[0].gross.currency.code if revenue else "-") + ")",
                [d.day[5:] for d in revenue],
                [float(d.net.amount) for d in revenue],
            )
            funnel = r.funnel("checkout")
            charts["funnel"] = bar_chart(
                "Checkout funnel (customers)",
                [s.split()[-1] for s in funnel.steps],
                [float(c) for c in funnel.total.counts],
                colour="#239b56",
            )
            top = r.top_products("bought", limit=8)
            charts["top"] = bar_chart(
                "Top products (units bought)",
                [p.product for p in top],
                [float(p.count) for p in top],
                colour="#7d3c98",
            )
            facts["abandonment"] = r.cart_abandonment()
        except CommerceKitError as exc:
            facts["analytics_error"] = type(exc).__name__
        items = self.shop.catalog.items()
        low = sorted(items, key=lambda i: i.available)[:8]
        charts["stock"] = bar_chart(
            "Lowest stock (units available)",
            [i.id for i in low],
            [float(i.available) for i in low],
            colour="#d68910",
        )
        ops = self._operations()
        if ops:
            names = list(ops)
            charts["ops"] = bar_chart(
                "Requests per app server (front balancer)",
                names,
                [ops[n] for n in names],
                colour="#566573",
            )
        orders = [self.shop.commerce.orders.get(oid) for oid, _, _ in self._recent()]
        return {
            "charts": charts,
            "facts": facts,
            "orders": orders,
            "low": [(i.id, [v.sku for v in i.product.variants], i.available) for i in low],
        }

    def _recent(self) -> list[tuple[str, str, float]]:
        import sqlalchemy as sa

        from shop.root import order_owners

        with self.shop.db.unit_of_work(read_only=True) as uow:
            rows = uow.session.execute(
                sa.select(order_owners.c.order_id, order_owners.c.number, order_owners.c.placed_at)
                .order_by(order_owners.c.placed_at.desc())
                .limit(20)
            ).all()
        return [(r[0], r[1], r[2]) for r in rows]

    def _operations(self) -> dict[str, float]:
        """Requests per backend from the front balancer's own ``/metrics`` (SHOP_FRONT_URL)."""
        front = self.shop.settings.front_url
        if not front:
            return {}
        try:
            text = httpx.get(front + "/metrics", timeout=1.0).text
        except httpx.HTTPError:
            return {}
        out: dict[str, float] = {}
        for line in text.splitlines():
            if line.startswith("shop_front_requests_total{"):
                labels, _, value = line.rpartition(" ")
                backend = labels.split('backend="', 1)[1].split('"', 1)[0]
                out[backend] = out.get(backend, 0.0) + float(value)
        return out

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
                return orders.refund(oid, order.captured - order.refunded, key=f"admin-{oid}")
            raise InvalidInputError(f"no order action {action!r}")

        await run_in_threadpool(work)
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


def admin_routes(app: Any) -> list[Route]:
    admin = Admin(app)
    return [
        Route("/admin", admin.dashboard),
        Route("/admin/login", admin.login, methods=["GET", "POST"]),
        Route("/admin/orders/{oid}/{action}", admin.order_action, methods=["POST"]),
        Route("/admin/restock", admin.restock, methods=["POST"]),
    ]
