"""The shop every framework example serves: checkout, orders, payments, webhooks, metrics, CDN.

:class:`Shop` is the composition root (the one place the parts are wired):
build it once when the app starts, close it when the app stops. The web
frameworks only translate HTTP to its methods and its typed errors to status
codes (:func:`http_status`), so the three examples differ only in what each
framework does differently.

A checkout authorizes the payment at the provider (Stripe's API, here a
loopback imitation) and writes the order in the same request; the payment
idempotency key is the order id, so a retried checkout charges once and
answers the same.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any, Protocol

import anyio
import anyio.from_thread
import anyio.to_thread
import attrs
from sqlalchemy import String
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

from commercekit.cdn import DirectoryOrigin, EdgeCache, MemoryStore
from commercekit.errors import (
    CommerceKitError,
    ConflictError,
    DuplicateError,
    InvalidInputError,
    InvalidStateError,
    NotFoundError,
    OutcomeUnknownError,
    PaymentDeclinedError,
    TransientError,
)
from commercekit.metrics import PrometheusMetrics
from commercekit.money import Money
from commercekit.payments import (
    ActionRequired,
    AiohttpTransport,
    AnyResult,
    AsyncPaymentService,
    AsyncStripeGateway,
    HttpxTransport,
    InMemoryIdempotencyStore,
    Outcome,
    PaymentService,
    ProviderToken,
    StripeGateway,
    StripeSignatureVerifier,
    WebhookEvent,
    WebhookProcessor,
)
from commercekit.repository import (
    AsyncDatabase,
    AsyncUnitOfWork,
    Database,
    Node,
    ReplicatedTopology,
    UnitOfWork,
    Versioned,
    async_engine_from_url,
    sqlite_engine,
)

__all__ = [
    "AsyncShop",
    "CheckoutForm",
    "Order",
    "Shop",
    "ThreadPoolShop",
    "WebShop",
    "error_answer",
    "http_status",
]

API_KEY = "sk_test_frameworks"
WEBHOOK_SECRET = "whsec_frameworks"
POOL = 200  # connections to the provider: as many as checkouts in flight


class Base(DeclarativeBase):
    pass


class Order(Versioned, Base):
    """One order, written when its payment is authorized."""

    __tablename__ = "framework_orders"
    id: Mapped[str] = mapped_column(String(64), primary_key=True)
    amount_minor: Mapped[int]
    currency: Mapped[str] = mapped_column(String(3))
    payment_reference: Mapped[str] = mapped_column(String(64), index=True)
    status: Mapped[str] = mapped_column(String(16))


@attrs.frozen
class CheckoutForm:
    """A checkout request: the order id, its amount, and the provider's payment method token.

    The browser sends a token from the provider's own script (``pm_...``), so
    no card number reaches the shop's servers.
    """

    order_id: str
    amount: Money
    payment_method: ProviderToken

    @classmethod
    def parse(cls, data: object) -> CheckoutForm:
        """Read a JSON object; anything missing or wrong raises :class:`InvalidInputError`."""
        if not isinstance(data, Mapping):
            raise InvalidInputError("a checkout is a JSON object")
        fields = {}
        for name in ("order_id", "amount", "currency", "payment_method"):
            value = data.get(name)
            if not isinstance(value, str) or not value:
                raise InvalidInputError(f"checkout field {name!r} must be a non-empty string")
            fields[name] = value
        try:
            amount = Money.of(fields["amount"], fields["currency"])
        except NotFoundError as exc:  # an unknown currency is bad input here, not a 404
            raise InvalidInputError(str(exc)) from exc
        return cls(fields["order_id"], amount, ProviderToken(fields["payment_method"]))


def http_status(exc: CommerceKitError) -> int:
    """The HTTP status that answers *exc*: the error tree maps onto status codes."""
    if isinstance(exc, InvalidInputError):
        return 400
    if isinstance(exc, NotFoundError):
        return 404
    if isinstance(exc, PaymentDeclinedError):
        return 402
    if isinstance(exc, ConflictError | InvalidStateError):
        return 409
    if isinstance(exc, TransientError):
        return 503  # safe to retry as it is: say when with Retry-After
    if isinstance(exc, OutcomeUnknownError):
        return 502  # it may have happened; the same order id retried is safe
    return 500


def error_answer(exc: CommerceKitError) -> tuple[int, dict[str, str], dict[str, str]]:
    """The status, JSON body and headers that answer *exc* (``Retry-After`` when it has one)."""
    headers = {}
    retry_after = getattr(exc, "retry_after_s", None)
    if isinstance(retry_after, int | float) and retry_after > 0:
        headers["Retry-After"] = str(max(1, round(retry_after)))
    return http_status(exc), {"error": str(exc)}, headers


def answer(form: CheckoutForm, result: AnyResult) -> tuple[int, dict[str, Any]]:
    """The status and JSON body of a checkout's answer."""
    body: dict[str, Any] = {"order_id": form.order_id, "payment": result.reference}
    if isinstance(result, ActionRequired):
        return 202, {**body, "status": "action_required", "client_secret": result.client_secret}
    if result.outcome is not Outcome.APPROVED:
        return 402, {**body, "status": "declined", "decline_code": str(result.decline_code)}
    return 201, {**body, "status": "authorized"}


class Shop:
    """The synchronous shop (Django, WSGI, ``def`` handlers): every call blocks its thread.

    *provider_url* is the payment provider's API (Stripe's, or an imitation);
    *folder* holds the SQLite database and the ``static/`` files the CDN serves.
    Build it once at startup; :meth:`close` it at shutdown.
    """

    def __init__(self, *, provider_url: str, folder: str | os.PathLike[str]) -> None:
        self.folder = Path(folder)
        (self.folder / "static").mkdir(parents=True, exist_ok=True)
        self.metrics = PrometheusMetrics()
        engine = sqlite_engine(self.folder / "shop.db")
        self.database = Database(ReplicatedTopology(Node("primary", engine)), metrics=self.metrics)
        self.database.create_all(Base.metadata)
        self._transport = HttpxTransport(max_connections=POOL)
        gateway = StripeGateway(API_KEY, transport=self._transport, base_url=provider_url)
        self.payments = PaymentService(gateway, InMemoryIdempotencyStore(), metrics=self.metrics)
        self.webhooks = WebhookProcessor(
            StripeSignatureVerifier([WEBHOOK_SECRET]),
            InMemoryIdempotencyStore(),
            self._on_event,
            metrics=self.metrics,
        )

    def checkout(self, form: CheckoutForm) -> tuple[int, dict[str, Any]]:
        """Authorize the payment and write the order: the status and JSON body of the answer."""
        result = self.payments.authorize(
            form.order_id, form.amount, form.payment_method, idempotency_key=form.order_id
        )
        if authorized(result):

            def write(uow: UnitOfWork) -> None:
                uow.repository(Order).add(new_order(form, result.reference))

            # retry=True: a busy database (SQLite's lock, a serialization failure)
            # runs the whole unit of work again instead of failing the checkout.
            with contextlib.suppress(DuplicateError):  # a retried checkout: written already
                self.database.run(write, retry=True)
        return answer(form, result)

    def receive_webhook(self, payload: bytes, signature: str) -> str:
        """Verify and handle one Stripe delivery once; return the outcome's name."""
        return self.webhooks.receive(payload, signature).value

    def _on_event(self, event: WebhookEvent) -> None:
        reference = captured_intent(event)
        if reference is None:
            return

        def capture(uow: UnitOfWork) -> None:
            orders = uow.repository(Order)
            for order in orders.list(payment_reference=reference):
                orders.update(order.id, status="captured")

        self.database.run(capture, retry=True)

    def order(self, order_id: str) -> dict[str, str] | None:
        """The stored order *order_id* as JSON, or None."""
        found = self.database.repository(Order).get(order_id)
        return None if found is None else order_json(found)

    def exposition(self) -> tuple[bytes, str]:
        """The Prometheus text page for ``/metrics`` and its Content-Type."""
        return self.metrics.exposition()

    def make_edge(self) -> EdgeCache:
        """A CDN edge over ``static/`` (one per event loop: ASGI lifespan, or WsgiProxy's)."""
        return make_edge(self.folder, self.metrics)

    def close(self) -> None:
        """Close the provider connections and the database."""
        self._transport.close()
        self.database.close()


class WebShop(Protocol):
    """What the ``async def`` handlers of the ASGI examples call; the app's lifespan
    awaits :meth:`start` before the first request and :meth:`aclose` after the last."""

    async def start(self) -> None: ...
    async def checkout(self, form: CheckoutForm) -> tuple[int, dict[str, Any]]: ...
    async def receive_webhook(self, payload: bytes, signature: str) -> str: ...
    async def order(self, order_id: str) -> dict[str, str] | None: ...
    def exposition(self) -> tuple[bytes, str]: ...
    def make_edge(self) -> EdgeCache: ...
    async def aclose(self) -> None: ...


class ThreadPoolShop:
    """A synchronous :class:`Shop` behind the async interface: each call in the thread pool.

    This is how to call blocking code from an ``async def`` handler without
    stopping the event loop, and what it costs: the framework's thread pool
    (anyio's, 40 threads by default) bounds how many checkouts wait on the
    provider at once. ``benchmarks/frameworks.py`` measures it beside the
    asyncio version.
    """

    def __init__(self, *, provider_url: str, folder: str | os.PathLike[str]) -> None:
        self.shop = Shop(provider_url=provider_url, folder=folder)

    async def start(self) -> None:
        """Nothing to do: the synchronous shop is ready once built."""

    async def checkout(self, form: CheckoutForm) -> tuple[int, dict[str, Any]]:
        """:meth:`Shop.checkout` in a worker thread."""
        return await anyio.to_thread.run_sync(self.shop.checkout, form)

    async def receive_webhook(self, payload: bytes, signature: str) -> str:
        """:meth:`Shop.receive_webhook` in a worker thread."""
        return await anyio.to_thread.run_sync(self.shop.receive_webhook, payload, signature)

    async def order(self, order_id: str) -> dict[str, str] | None:
        """:meth:`Shop.order` in a worker thread."""
        return await anyio.to_thread.run_sync(self.shop.order, order_id)

    def exposition(self) -> tuple[bytes, str]:
        """The Prometheus text page and its Content-Type."""
        return self.shop.exposition()

    def make_edge(self) -> EdgeCache:
        """A CDN edge over ``static/``."""
        return self.shop.make_edge()

    async def aclose(self) -> None:
        """Close the shop."""
        await anyio.to_thread.run_sync(self.shop.close)


class AsyncShop:
    """The asyncio shop (FastAPI, Starlette, ``async def`` handlers): every call is awaited.

    Built like :class:`Shop` from the asyncio twins; nothing here blocks the
    event loop, so one worker keeps as many checkouts waiting on the provider
    as it has connections to it. Await :meth:`start` before the first request.
    """

    def __init__(self, *, provider_url: str, folder: str | os.PathLike[str]) -> None:
        self.folder = Path(folder)
        (self.folder / "static").mkdir(parents=True, exist_ok=True)
        self.metrics = PrometheusMetrics()
        # One SQLite connection: SQLite lets one writer in at a time anyway, so the
        # units of work queue for the connection on the event loop instead of
        # busy-waiting in aiosqlite threads on the file lock, where a lock held
        # across slow event-loop turns could outlast the busy timeout ("database
        # is locked"). It also costs less CPU per unit of work than a pool of 15.
        # PostgreSQL or MariaDB keep a pool: pool_size as their writers allow.
        engine = async_engine_from_url(
            f"sqlite:///{self.folder / 'shop.db'}", pool_size=1, max_overflow=0
        )
        topology = ReplicatedTopology(Node("primary", engine))
        self.database = AsyncDatabase(topology, metrics=self.metrics)
        # aiohttp: its pool costs the same per call at 200 connections as at 2
        # (httpx's async pool walks them all on every request: docs/frameworks.md).
        self._transport = AiohttpTransport(max_connections=POOL)
        gateway = AsyncStripeGateway(API_KEY, transport=self._transport, base_url=provider_url)
        # An in-memory store does no I/O, so the asyncio service takes it as it is; a
        # shop with several workers records keys in AsyncSqlAlchemyIdempotencyStore.
        self.payments = AsyncPaymentService(
            gateway, InMemoryIdempotencyStore(), metrics=self.metrics
        )
        self.webhooks = WebhookProcessor(
            StripeSignatureVerifier([WEBHOOK_SECRET]),
            InMemoryIdempotencyStore(),
            self._on_event,
            metrics=self.metrics,
        )

    async def start(self) -> None:
        """Create the tables (a migration tool's job in a real shop)."""
        await self.database.create_all(Base.metadata)

    async def checkout(self, form: CheckoutForm) -> tuple[int, dict[str, Any]]:
        """Authorize the payment and write the order: the status and JSON body of the answer."""
        result = await self.payments.authorize(
            form.order_id, form.amount, form.payment_method, idempotency_key=form.order_id
        )
        if authorized(result):

            async def write(uow: AsyncUnitOfWork) -> None:
                await uow.repository(Order).add(new_order(form, result.reference))

            # The insert alone, no read first: the primary key keeps a retried
            # checkout's order single, and a unit of work of one statement costs
            # half the CPU of a get and an insert (benchmarks/README.md).
            with contextlib.suppress(DuplicateError):  # a retried checkout: written already
                await self.database.run(write, retry=True)  # the whole work again when busy
        return answer(form, result)

    async def receive_webhook(self, payload: bytes, signature: str) -> str:
        """Verify and handle one Stripe delivery once; return the outcome's name.

        :class:`WebhookProcessor` calls its handler synchronously, inside its
        exactly-once step; run it in a worker thread, and the handler awaits the
        database back on the event loop (``anyio.from_thread.run``).
        """
        outcome = await anyio.to_thread.run_sync(self.webhooks.receive, payload, signature)
        return outcome.value

    def _on_event(self, event: WebhookEvent) -> None:
        reference = captured_intent(event)
        if reference is not None:
            anyio.from_thread.run(self._captured, reference)

    async def _captured(self, reference: str) -> None:
        async def capture(uow: AsyncUnitOfWork) -> None:
            orders = uow.repository(Order)
            for order in await orders.list(payment_reference=reference):
                await orders.update(order.id, status="captured")

        await self.database.run(capture, retry=True)

    async def order(self, order_id: str) -> dict[str, str] | None:
        """The stored order *order_id* as JSON, or None."""
        found = await self.database.repository(Order).get(order_id)
        return None if found is None else order_json(found)

    def exposition(self) -> tuple[bytes, str]:
        """The Prometheus text page for ``/metrics`` and its Content-Type."""
        return self.metrics.exposition()

    def make_edge(self) -> EdgeCache:
        """A CDN edge over ``static/``, for the app to mount."""
        return make_edge(self.folder, self.metrics)

    async def aclose(self) -> None:
        """Close the provider connections and the database."""
        await self._transport.aclose()
        await self.database.close()


def authorized(result: AnyResult) -> bool:
    """Whether *result* is an authorization to write the order for."""
    return result.outcome is Outcome.APPROVED and not isinstance(result, ActionRequired)


def new_order(form: CheckoutForm, reference: str) -> Order:
    """The order row of an authorized checkout."""
    return Order(
        id=form.order_id,
        amount_minor=form.amount.amount_minor,
        currency=form.amount.currency.code,
        payment_reference=reference,
        status="authorized",
    )


def order_json(order: Order) -> dict[str, str]:
    """The JSON body of ``GET /orders/{id}``."""
    return {"order_id": order.id, "status": order.status, "payment": order.payment_reference}


def captured_intent(event: WebhookEvent) -> str | None:
    """The PaymentIntent id of a ``payment_intent.succeeded`` event; None for other events."""
    if event.type != "payment_intent.succeeded":
        return None
    intent = (event.data.get("data") or {}).get("object") or {}
    return str(intent.get("id") or "") or None


def make_edge(folder: Path, metrics: PrometheusMetrics) -> EdgeCache:
    """A CDN edge over *folder*/static, reporting to *metrics*."""
    return EdgeCache(
        DirectoryOrigin(folder / "static"), MemoryStore(16 * 1024 * 1024), metrics=metrics
    )
