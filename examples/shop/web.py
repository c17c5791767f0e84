"""The app server: Starlette routes for the storefront (HTML) and the same features as JSON.

Signed session cookies (itsdangerous, through Starlette's SessionMiddleware),
a CSRF token on every form, an access-log line and Prometheus metrics per
request (:mod:`shop.observe`), and the commerce services from the
composition root (:mod:`shop.root`).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import secrets
import sys
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path
from typing import Any

from jinja2 import Environment, FileSystemLoader, select_autoescape
from starlette.applications import Starlette
from starlette.concurrency import run_in_threadpool
from starlette.middleware import Middleware
from starlette.middleware.sessions import SessionMiddleware
from starlette.requests import Request
from starlette.responses import FileResponse, HTMLResponse, JSONResponse, RedirectResponse, Response
from starlette.routing import Route

from commercekit.commerce.orders import Order
from commercekit.errors import (
    CheckoutInProgressError,
    CommerceKitError,
    ConflictError,
    DatabaseUnavailableError,
    EmptyCartError,
    InvalidInputError,
    InvalidStateError,
    NotFoundError,
    OutcomeUnknownError,
    OutOfStockError,
    PaymentDeclinedError,
)
from commercekit.payments import Card
from shop.admin import admin_routes
from shop.observe import ObserveMiddleware
from shop.root import Shop, build_shop
from shop.seed import CATEGORIES
from shop.settings import Settings
from shop.store import Checkout3DS, Session, Storefront, decline_text

__all__ = ["create_app"]

TEMPLATES = Path(__file__).parent / "templates"
SAFE = frozenset({"GET", "HEAD", "OPTIONS"})


class Forbidden(Exception):
    """A form without the session's CSRF token."""


def session_of(request: Request) -> Session:
    data = request.session
    if "sid" not in data:  # the id the balancer's stickiness and analytics know the visitor by
        data["sid"] = request.scope.get("state", {}).get("sid") or secrets.token_urlsafe(12)
    if "csrf" not in data:
        data["csrf"] = secrets.token_urlsafe(24)
    return Session(data)


async def checked_form(request: Request) -> dict[str, str]:
    """The form's fields, after checking its CSRF token against the session's."""
    form = await request.form()
    fields = {k: v for k, v in form.items() if isinstance(v, str)}
    expected = session_of(request).data["csrf"]
    if not secrets.compare_digest(fields.get("csrf", ""), expected):
        raise Forbidden("the form is out of date or did not come from this shop")
    return fields


async def json_body(request: Request) -> dict[str, Any]:
    """A JSON API body. Only ``application/json`` is read, which a cross-site form cannot send."""
    if request.headers.get("content-type", "").split(";")[0].strip() != "application/json":
        raise Forbidden("send the body as application/json")
    try:
        body = json.loads(await request.body() or b"{}")
    except (ValueError, RecursionError):  # RecursionError: a few thousand '[' in a row
        raise InvalidInputError("the body is not JSON") from None
    if not isinstance(body, dict):
        raise InvalidInputError("the body is a JSON object")
    return body


def card_from(fields: dict[str, Any]) -> Card:
    number = str(fields.get("card_number", "")).replace(" ", "")
    expiry = str(fields.get("expiry", "")).strip()
    try:
        month, year = (int(x) for x in expiry.split("/"))
    except ValueError:
        raise InvalidInputError("the expiry date is MM/YY, for example 12/30") from None
    if year < 100:
        year += 2000
    return Card(number, month, year, cvv=str(fields.get("cvc", "")) or None)


ADDRESS_FIELDS = ("name", "line1", "city", "postcode", "country")


def address_from(fields: dict[str, Any]) -> dict[str, str]:
    address = {k: str(fields.get(k, "")).strip()[:200] for k in ADDRESS_FIELDS}
    missing = [k for k, v in address.items() if not v]
    if missing:
        raise InvalidInputError(f"the delivery address needs: {', '.join(missing)}")
    return address


def order_json(order: Order) -> dict[str, Any]:
    return {
        "id": order.id,
        "number": order.number,
        "status": order.status.value,
        "payment_status": order.payment_status.value,
        "fulfilment_status": order.fulfilment_status.value,
        "total": str(order.total.amount),
        "currency": order.total.currency.code,
        "lines": [{"sku": x.sku, "qty": x.qty, "gross": str(x.gross.amount)} for x in order.lines],
    }


class App:
    """The routes, bound to one storefront."""

    def __init__(self, shop: Shop) -> None:
        self.shop = shop
        self.store = Storefront(shop)
        self.jinja = Environment(
            loader=FileSystemLoader(TEMPLATES), autoescape=select_autoescape(["html"])
        )

    def page(self, request: Request, name: str, status: int = 200, **ctx: Any) -> HTMLResponse:
        s = session_of(request)
        html = self.jinja.get_template(name).render(
            request=request,
            csrf=s.data["csrf"],
            signed_in=s.data.get("email"),
            cart_count=s.data.get("cart_count", 0),
            categories=list(CATEGORIES),
            server=self.shop.settings.server_name,
            **ctx,
        )
        return HTMLResponse(html, status_code=status)

    def error_page(self, request: Request, exc: Exception) -> Response:
        status, text = status_for(exc)
        if request.url.path.startswith("/api/"):
            return JSONResponse({"error": type(exc).__name__, "message": text}, status)
        return self.page(request, "error.html", status, message=text)

    # -- storefront pages ------------------------------------------------------------------

    async def home(self, request: Request) -> Response:
        s, q = session_of(request), request.query_params
        items, next_after = await self.store.search(
            s,
            query=q.get("q", "")[:100],
            category=q.get("category", ""),
            in_stock=q.get("in_stock") == "1",
            max_price=q.get("max_price", ""),
            after=q.get("after", "")[:100] or None,
        )
        if request.url.path.startswith("/api/"):
            return JSONResponse(
                {"products": [listing_json(i) for i in items], "next_after": next_after}
            )
        params = {k: v for k, v in q.items() if k != "after"}
        return self.page(
            request,
            "list.html",
            items=items,
            next_after=next_after,
            first=not q.get("after"),
            q=q,
            params=params,
        )

    async def product(self, request: Request) -> Response:
        s = session_of(request)
        listing, stock = await self.store.product(s, request.path_params["pid"])
        if request.url.path.startswith("/api/"):
            return JSONResponse({**listing_json(listing), "stock": stock})

        def picks() -> list[Any]:
            also = self.shop.also_bought(listing.id)
            catalog = self.shop.commerce.catalog
            products = []
            for pid in also:
                with contextlib.suppress(NotFoundError):
                    products.append(catalog.product(pid))
            return self.shop.catalog.listings([p for p in products if p.active])

        also = await run_in_threadpool(picks)
        return self.page(request, "product.html", item=listing, stock=stock, also=also)

    async def cart(self, request: Request) -> Response:
        s = session_of(request)
        view = await self.store.cart(s)
        s.data["cart_count"] = view.count
        if request.url.path.startswith("/api/"):
            return JSONResponse(view.to_json())
        return self.page(request, "cart.html", cart=view, message=request.query_params.get("m"))

    async def cart_post(self, request: Request) -> Response:
        s = session_of(request)
        api = request.url.path.startswith("/api/")
        fields = await json_body(request) if api else await checked_form(request)
        action = request.path_params.get("action") or str(fields.get("action", "add"))
        sku = str(fields.get("sku", ""))
        try:
            qty = int(fields.get("qty", 1))
        except (TypeError, ValueError):
            raise InvalidInputError("qty is a whole number") from None
        if action == "add":
            view = await self.store.add(s, sku, qty)
        elif action == "set":
            view = await self.store.set_quantity(s, sku, qty)
        elif action == "remove":
            view = await self.store.remove(s, sku)
        else:
            raise NotFoundError(f"no cart action {action!r}")
        s.data["cart_count"] = view.count
        if api:
            return JSONResponse(view.to_json())
        return RedirectResponse("/cart", 303)

    async def signin(self, request: Request) -> Response:
        if request.method == "GET":
            return self.page(request, "signin.html", message=None)
        s = session_of(request)
        api = request.url.path.startswith("/api/")
        fields = await json_body(request) if api else await checked_form(request)
        try:
            created = await self.store.sign_in(
                s, str(fields.get("email", "")), str(fields.get("password", ""))
            )
        except (InvalidInputError, ConflictError) as exc:
            if api:
                raise
            return self.page(request, "signin.html", 400, message=str(exc))
        s.data["csrf"] = secrets.token_urlsafe(24)  # a new token for the new identity
        view = await self.store.cart(s)
        s.data["cart_count"] = view.count
        if api:
            return JSONResponse(
                {"customer_id": s.customer_id, "created": created, "cart": view.to_json()}
            )
        return RedirectResponse("/cart?m=signed-in", 303)

    async def signout(self, request: Request) -> Response:
        if not request.url.path.startswith("/api/"):
            await checked_form(request)
        request.session.clear()
        return RedirectResponse("/", 303)

    async def checkout_page(self, request: Request) -> Response:
        s = session_of(request)
        view = await self.store.cart(s)
        if not view.lines:
            return RedirectResponse("/cart", 303)
        return self.page(
            request, "checkout.html", cart=view, error=None, address=s.data.get("address", {})
        )

    async def checkout_post(self, request: Request) -> Response:
        s = session_of(request)
        api = request.url.path.startswith("/api/")
        fields = await json_body(request) if api else await checked_form(request)
        try:
            address = address_from(fields)
            result = await self.store.checkout(s, card_from(fields), address)
        except (PaymentDeclinedError, InvalidInputError, OutOfStockError) as exc:
            if api:
                raise
            view = await self.store.cart(s)
            text = decline_text(exc) if isinstance(exc, PaymentDeclinedError) else str(exc)
            if isinstance(exc, OutOfStockError):
                text = f"Sorry, {exc.sku} sold out while you were shopping; change the cart."
            return self.page(
                request,
                "checkout.html",
                402 if isinstance(exc, PaymentDeclinedError) else 409,
                cart=view,
                error=text,
                address={k: str(fields.get(k, "")) for k in ADDRESS_FIELDS},
            )
        if isinstance(result, Checkout3DS):
            url = f"/checkout/3ds/{result.checkout_id}"
            if api:
                body = {"status": "action_required", "checkout_id": result.checkout_id}
                return JSONResponse({**body, "challenge": "/api" + url}, 202)
            return RedirectResponse(url, 303)
        return self.placed(request, result.order, api)

    def placed(self, request: Request, order: Order | None, api: bool) -> Response:
        s = session_of(request)
        s.data["cart_count"] = 0
        if order is None:
            raise CheckoutInProgressError("the checkout is still running; reload in a moment")
        if api:
            return JSONResponse({"status": "completed", "order": order_json(order)}, 201)
        return RedirectResponse(f"/orders/{order.id}?placed=1", 303)

    async def threeds(self, request: Request) -> Response:
        s = session_of(request)
        cid = request.path_params["cid"]
        api = request.url.path.startswith("/api/")
        if request.method == "GET":
            if cid not in s.data.get("3ds", {}):
                raise NotFoundError("no 3-D Secure challenge is waiting for this checkout")
            return self.page(request, "threeds.html", checkout_id=cid)
        fields = await json_body(request) if api else await checked_form(request)
        passed = str(fields.get("outcome", "")) == "pass"
        try:
            result = await self.store.complete_3ds(s, cid, passed)
        except PaymentDeclinedError as exc:
            if api:
                raise
            view = await self.store.cart(s)
            return self.page(
                request,
                "checkout.html",
                402,
                cart=view,
                error=decline_text(exc),
                address=s.data.get("address", {}),
            )
        return self.placed(request, result.order, api)

    async def order(self, request: Request) -> Response:
        s = session_of(request)
        order = await self.store.order(s, request.path_params["oid"])
        if request.url.path.startswith("/api/"):
            return JSONResponse(order_json(order))
        return self.page(
            request, "order.html", order=order, placed=request.query_params.get("placed") == "1"
        )

    async def orders(self, request: Request) -> Response:
        s = session_of(request)
        rows = await self.store.history(s)
        if request.url.path.startswith("/api/"):
            return JSONResponse({"orders": [order_json(o) for o in rows]})
        return self.page(request, "orders.html", orders=rows)

    # -- operations ------------------------------------------------------------------------

    async def healthz(self, request: Request) -> Response:
        try:
            await run_in_threadpool(self.shop.commerce.catalog.list_products, limit=1)
        except DatabaseUnavailableError:
            raise  # retry_reads runs the check again; a node lost under it is not a verdict
        except CommerceKitError as exc:
            return JSONResponse({"status": "unhealthy", "reason": type(exc).__name__}, 503)
        return JSONResponse({"status": "ok", "server": self.shop.settings.server_name})

    async def metrics(self, request: Request) -> Response:
        body, ctype = self.shop.metrics.exposition()
        return Response(body, media_type=ctype.split(";")[0])

    async def asset(self, request: Request) -> Response:
        """The image origin: fingerprinted URLs only, cached for ever (the edge keeps them)."""
        name = self.shop.manifest.name_for(request.url.path)
        if name is None:
            return Response(status_code=404, headers={"cache-control": "max-age=5"})
        return FileResponse(
            self.shop.settings.image_dir / name,
            headers={"cache-control": "public, max-age=31536000, immutable"},
        )


def listing_json(i: Any) -> dict[str, Any]:
    return {
        "id": i.id,
        "name": i.product.name,
        "category": i.category,
        "price": str(i.price.amount),
        "currency": i.price.currency.code,
        "available": i.available,
        "images": list(i.images),
        "variants": [v.sku for v in i.product.variants if v.active],
    }


def status_for(exc: Exception) -> tuple[int, str]:
    if isinstance(exc, Forbidden):
        return 403, str(exc)
    if isinstance(exc, PaymentDeclinedError):
        return 402, decline_text(exc)
    if isinstance(exc, EmptyCartError):
        return 400, str(exc)
    if isinstance(exc, NotFoundError):
        return 404, str(exc)
    if isinstance(exc, InvalidInputError):
        return 400, str(exc)
    if isinstance(exc, ConflictError):
        return 409, str(exc)
    if isinstance(exc, InvalidStateError):  # a status change the order refuses, and the like
        return 409, str(exc)
    if isinstance(exc, CheckoutInProgressError):
        return 409, str(exc)
    if isinstance(exc, OutcomeUnknownError):  # it may have happened: never say "try again"
        return 500, "we could not confirm that it went through; check before repeating it"
    # Only a server's trouble is a 503: the front balancer counts 502/503/504 as failures.
    return 503, "the shop is busy; please try again"


Endpoint = Callable[[Request], Awaitable[Response]]


def retry_reads(endpoint: Endpoint, attempts: int = 3) -> Endpoint:
    """Run a GET or HEAD again when a database node was lost under it.

    A replica stopped during a read fails that read with
    :class:`DatabaseUnavailableError` (nothing was written), and the repository
    takes the replica out of rotation; the same read then runs elsewhere. Only
    safe methods are repeated: a POST's writes may have happened.
    """

    async def run(request: Request) -> Response:
        for attempt in range(attempts):
            try:
                return await endpoint(request)
            except DatabaseUnavailableError:
                if request.method not in SAFE or attempt + 1 == attempts:
                    raise
                await asyncio.sleep(0.05 * (attempt + 1))
        raise AssertionError("unreachable")

    return run


def _routes(app: App) -> list[Route]:
    return [
        Route("/", app.home),
        Route("/products/{pid}", app.product),
        Route("/cart", app.cart),
        Route("/cart/{action}", app.cart_post, methods=["POST"]),
        Route("/signin", app.signin, methods=["GET", "POST"]),
        Route("/signout", app.signout, methods=["POST"]),
        Route("/checkout", app.checkout_page),
        Route("/checkout", app.checkout_post, methods=["POST"]),
        Route("/checkout/3ds/{cid}", app.threeds, methods=["GET", "POST"]),
        Route("/orders", app.orders),
        Route("/orders/{oid}", app.order),
        Route("/api/products", app.home),
        Route("/api/products/{pid}", app.product),
        Route("/api/cart", app.cart),
        Route("/api/cart/{action}", app.cart_post, methods=["POST"]),
        Route("/api/signin", app.signin, methods=["POST"]),
        Route("/api/checkout", app.checkout_post, methods=["POST"]),
        Route("/api/checkout/3ds/{cid}", app.threeds, methods=["POST"]),
        Route("/api/orders", app.orders),
        Route("/api/orders/{oid}", app.order),
        Route("/healthz", app.healthz),
        Route("/metrics", app.metrics),
        Route("/assets/{path:path}", app.asset),
        *admin_routes(app),
    ]


HOUSEKEEPING_S = 60.0
"""How often each app server finishes stalled checkouts and refunds and expires idle carts."""


async def housekeeping(shop: Shop, *, every_s: float, idle_s: float) -> None:
    """Every *every_s*: ``checkout.recover()``, ``orders.recover_refunds()`` and
    ``carts.expire_abandoned(idle_s=)``.

    All are safe from every app server at once; a failure waits for the next round.
    """
    while True:
        await asyncio.sleep(every_s)
        with contextlib.suppress(CommerceKitError):
            await run_in_threadpool(shop.commerce.checkout.recover)
        with contextlib.suppress(CommerceKitError):  # refunds a crash left decided, unpaid
            await run_in_threadpool(shop.commerce.orders.recover_refunds)
        with contextlib.suppress(CommerceKitError):
            await run_in_threadpool(shop.commerce.carts.expire_abandoned, idle_s=idle_s)


def create_app(settings: Settings | None = None, shop: Shop | None = None) -> Starlette:
    """The ASGI app of one app server (``uvicorn --factory shop.web:create_app``)."""
    settings = settings or Settings.from_env()
    the_shop = shop or build_shop(settings)
    app = App(the_shop)

    @contextlib.asynccontextmanager
    async def lifespan(_: Starlette) -> AsyncIterator[None]:
        async def flusher() -> None:
            while True:
                await asyncio.sleep(0.5)
                # The access log is block-buffered (a flush per line would be a write
                # per request): it reaches the file within half a second.
                sys.stdout.flush()
                with contextlib.suppress(CommerceKitError):
                    await run_in_threadpool(the_shop.flush_events)

        task = asyncio.create_task(flusher())
        keeper = asyncio.create_task(
            housekeeping(the_shop, every_s=HOUSEKEEPING_S, idle_s=settings.cart_ttl_s)
        )
        try:
            yield
        finally:
            for t in (task, keeper):
                t.cancel()
                with contextlib.suppress(CommerceKitError, asyncio.CancelledError):
                    await t
            with contextlib.suppress(CommerceKitError):
                await run_in_threadpool(the_shop.flush_events)
            with contextlib.suppress(CommerceKitError):
                await the_shop.aclose()

    routes = [
        Route(r.path, retry_reads(r.endpoint), methods=r.methods, name=r.name) for r in _routes(app)
    ]

    async def on_error(request: Request, exc: Exception) -> Response:
        return app.error_page(request, exc)

    return Starlette(
        routes=routes,
        middleware=[
            Middleware(ObserveMiddleware, metrics=the_shop.metrics, server=settings.server_name),
            Middleware(
                SessionMiddleware,
                secret_key=settings.secret_key,
                session_cookie="shop_session",
                same_site="lax",
                https_only=settings.secure_cookies,
            ),
        ],
        exception_handlers={CommerceKitError: on_error, Forbidden: on_error},
        lifespan=lifespan,
    )
