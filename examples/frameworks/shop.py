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

import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import anyio
import attrs
from sqlalchemy import String
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

from commercekit.cdn import DirectoryOrigin, EdgeCache, MemoryStore
from commercekit.errors import (
    CommerceKitError,
    ConflictError,
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
    AnyResult,
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
from commercekit.repository import Database, Node, ReplicatedTopology, Versioned, sqlite_engine

__all__ = ["CheckoutForm", "Order", "Shop", "error_answer", "http_status"]

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
    """The parts of the shop, built once at startup; :meth:`close` at shutdown.

    *provider_url* is the payment provider's API (Stripe's, or an imitation);
    *folder* holds the SQLite database and the ``static/`` files the CDN serves.
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

    # -- checkout ------------------------------------------------------------------------

    def checkout(self, form: CheckoutForm) -> tuple[int, dict[str, Any]]:
        """Authorize the payment and write the order; blocks the calling thread (WSGI, Django)."""
        result = self.payments.authorize(
            form.order_id, form.amount, form.payment_method, idempotency_key=form.order_id
        )
        if result.outcome is Outcome.APPROVED and not isinstance(result, ActionRequired):
            with self.database.unit_of_work() as uow:
                orders = uow.repository(Order)
                if orders.get(form.order_id) is None:  # a retried checkout writes it once
                    orders.add(_order(form, result.reference))
        return answer(form, result)

    async def checkout_async(self, form: CheckoutForm) -> tuple[int, dict[str, Any]]:
        """:meth:`checkout` for ``async def`` handlers, without blocking the event loop.

        THREAD-POOL STAND-IN: until the asyncio payment service and repository are
        in commercekit, this runs the blocking :meth:`checkout` in the framework's
        thread pool (40 threads by default), so at most 40 checkouts wait on the
        provider at once.
        """
        return await anyio.to_thread.run_sync(self.checkout, form)

    # -- webhooks, metrics, CDN ----------------------------------------------------------

    def receive_webhook(self, payload: bytes, signature: str) -> str:
        """Verify and handle one Stripe delivery once; return the outcome's name."""
        return self.webhooks.receive(payload, signature).value

    def _on_event(self, event: WebhookEvent) -> None:
        if event.type != "payment_intent.succeeded":
            return
        intent = (event.data.get("data") or {}).get("object") or {}
        reference = str(intent.get("id") or "")
        with self.database.unit_of_work() as uow:
            orders = uow.repository(Order)
            for order in orders.list(payment_reference=reference):
                orders.update(order.id, status="captured")

    def exposition(self) -> tuple[bytes, str]:
        """The Prometheus text page for ``/metrics`` and its Content-Type."""
        return self.metrics.exposition()

    def make_edge(self) -> EdgeCache:
        """A CDN edge over ``static/`` (one per event loop: ASGI lifespan, or WsgiProxy's)."""
        return EdgeCache(
            DirectoryOrigin(self.folder / "static"),
            MemoryStore(16 * 1024 * 1024),
            metrics=self.metrics,
        )

    def order(self, order_id: str) -> dict[str, str] | None:
        """The stored order *order_id* as JSON, or None."""
        found = self.database.repository(Order).get(order_id)
        if found is None:
            return None
        return {"order_id": found.id, "status": found.status, "payment": found.payment_reference}

    def close(self) -> None:
        """Close the provider connections and the database."""
        self._transport.close()
        self.database.close()


def _order(form: CheckoutForm, reference: str) -> Order:
    return Order(
        id=form.order_id,
        amount_minor=form.amount.amount_minor,
        currency=form.amount.currency.code,
        payment_reference=reference,
        status="authorized",
    )
