"""AmazonPayGateway and AsyncAmazonPayGateway: Amazon Pay's Checkout v2 API, sync and asyncio.

Both run the same flows (:class:`~._flows.AmazonPayFlows`, whose docstring
tells how the redirect flow maps onto the gateway protocol); only the
transport differs.
"""

from __future__ import annotations

import time
from typing import Any

from commercekit.money import Money
from commercekit.payments._amazonpay._flows import AmazonPayFlows
from commercekit.payments._amazonpay._session import CheckoutSession
from commercekit.payments._amazonpay._wire import AmazonPayClient, AmazonPayConfig
from commercekit.payments._core._amounts import AmountRules
from commercekit.payments._core._results import PaymentResult
from commercekit.payments._transports._gateways import AsyncFlowGateway, FlowGateway
from commercekit.payments._transports._httpx import AsyncHttpTransport
from commercekit.payments._typing import Clock, HttpTransport

__all__ = ["AmazonPayGateway", "AsyncAmazonPayGateway"]


class AmazonPayGateway(FlowGateway):
    """A :class:`PaymentGateway` over Amazon Pay's Checkout v2 API.

    *return_url* is the ``checkoutResultReturnUrl`` the buyer comes back to
    after paying, when a call names none. *amounts* defaults to the
    currencies of the configured region (:data:`AMAZON_PAY_AMOUNTS`): USD in
    us, JPY in jp, EUR, GBP and Amazon's multi-currency list in eu.
    *transport* defaults to a pooled :class:`HttpxTransport`, which
    ``close()`` or ``with`` closes (one passed in is the caller's to close).
    """

    def __init__(
        self,
        config: AmazonPayConfig,
        *,
        return_url: str | None = None,
        transport: HttpTransport | None = None,
        clock: Clock = time.time,
        amounts: AmountRules | None = None,
        name: str = "amazonpay",
    ) -> None:
        self._config = config
        self._client = AmazonPayClient(config, self._adopt(transport), clock=clock)
        self._amazon = AmazonPayFlows(
            config, self._client, return_url=return_url, amounts=amounts, name=name
        )
        self._flows = self._amazon
        self._provider = "Amazon Pay"

    def button_payload(self, review_return_url: str) -> tuple[str, str]:
        """The ``payloadJSON`` and ``signature`` for ``amazon.Pay.renderButton``."""
        return self._amazon.button_payload(review_return_url)

    def create_checkout_session(
        self, review_return_url: str, *, idempotency_key: str
    ) -> CheckoutSession:
        """``POST /checkoutSessions``: a session the buyer reviews at Amazon."""
        flow = self._amazon.create_checkout_session(
            review_return_url, idempotency_key=idempotency_key
        )
        return self._run("create_checkout_session", flow)

    def get_checkout_session(self, session_id: str) -> CheckoutSession:
        """``GET /checkoutSessions/{id}``."""
        return self._run("get_checkout_session", self._amazon.get_checkout_session(session_id))

    def update_checkout_session(
        self, session_id: str, amount: Money, *, result_return_url: str, capture: bool
    ) -> CheckoutSession:
        """``PATCH /checkoutSessions/{id}`` with the amount, the intent and the result URL."""
        flow = self._amazon.update_checkout_session(
            session_id, amount, result_return_url=result_return_url, capture=capture
        )
        return self._run("update_checkout_session", flow)

    def complete_checkout_session(self, session_id: str, amount: Money) -> CheckoutSession:
        """``POST /checkoutSessions/{id}/complete`` with the amount the session was given."""
        flow = self._amazon.complete_checkout_session(session_id, amount)
        return self._run("complete_checkout_session", flow)

    def get_charge_permission(self, charge_permission_id: str) -> dict[str, Any]:
        """``GET /chargePermissions/{id}``: Amazon's JSON object."""
        flow = self._amazon.get_charge_permission(charge_permission_id)
        return self._run("get_charge_permission", flow)

    def get_charge(self, charge_id: str) -> dict[str, Any]:
        """``GET /charges/{id}``: Amazon's JSON object."""
        return self._run("get_charge", self._amazon.get_charge(charge_id))

    def get_refund(self, refund_id: str) -> dict[str, Any]:
        """``GET /refunds/{id}``: Amazon's JSON object."""
        return self._run("get_refund", self._amazon.get_refund(refund_id))

    def create_charge(
        self, charge_permission_id: str, amount: Money, *, capture: bool, idempotency_key: str
    ) -> PaymentResult:
        """``POST /charges`` on a Charge Permission (a later shipment, a recurring charge)."""
        flow = self._amazon.create_charge(
            charge_permission_id, amount, capture=capture, idempotency_key=idempotency_key
        )
        return self._run("create_charge", flow)

    def __repr__(self) -> str:
        return f"AmazonPayGateway({self._config!r})"


class AsyncAmazonPayGateway(AsyncFlowGateway):
    """An :class:`AsyncPaymentGateway` over Amazon Pay: :class:`AmazonPayGateway`, awaited.

    *transport* defaults to a pooled :class:`AiohttpTransport` (the
    ``[http]`` extra); close it with ``await gateway.aclose()`` or ``async with``.
    """

    def __init__(
        self,
        config: AmazonPayConfig,
        *,
        return_url: str | None = None,
        transport: AsyncHttpTransport | None = None,
        clock: Clock = time.time,
        amounts: AmountRules | None = None,
        name: str = "amazonpay",
    ) -> None:
        self._config = config
        self._transport = self._adopt(transport)
        self._client = AmazonPayClient(config, self._transport, clock=clock)
        self._amazon = AmazonPayFlows(
            config, self._client, return_url=return_url, amounts=amounts, name=name
        )
        self._flows = self._amazon
        self._provider = "Amazon Pay"

    def button_payload(self, review_return_url: str) -> tuple[str, str]:
        """The ``payloadJSON`` and ``signature`` for ``amazon.Pay.renderButton``."""
        return self._amazon.button_payload(review_return_url)

    async def create_checkout_session(
        self, review_return_url: str, *, idempotency_key: str
    ) -> CheckoutSession:
        """``POST /checkoutSessions``: a session the buyer reviews at Amazon."""
        flow = self._amazon.create_checkout_session(
            review_return_url, idempotency_key=idempotency_key
        )
        return await self._run("create_checkout_session", flow)

    async def get_checkout_session(self, session_id: str) -> CheckoutSession:
        """``GET /checkoutSessions/{id}``."""
        flow = self._amazon.get_checkout_session(session_id)
        return await self._run("get_checkout_session", flow)

    async def update_checkout_session(
        self, session_id: str, amount: Money, *, result_return_url: str, capture: bool
    ) -> CheckoutSession:
        """``PATCH /checkoutSessions/{id}`` with the amount, the intent and the result URL."""
        flow = self._amazon.update_checkout_session(
            session_id, amount, result_return_url=result_return_url, capture=capture
        )
        return await self._run("update_checkout_session", flow)

    async def complete_checkout_session(self, session_id: str, amount: Money) -> CheckoutSession:
        """``POST /checkoutSessions/{id}/complete`` with the amount the session was given."""
        flow = self._amazon.complete_checkout_session(session_id, amount)
        return await self._run("complete_checkout_session", flow)

    async def get_charge_permission(self, charge_permission_id: str) -> dict[str, Any]:
        """``GET /chargePermissions/{id}``: Amazon's JSON object."""
        flow = self._amazon.get_charge_permission(charge_permission_id)
        return await self._run("get_charge_permission", flow)

    async def get_charge(self, charge_id: str) -> dict[str, Any]:
        """``GET /charges/{id}``: Amazon's JSON object."""
        return await self._run("get_charge", self._amazon.get_charge(charge_id))

    async def get_refund(self, refund_id: str) -> dict[str, Any]:
        """``GET /refunds/{id}``: Amazon's JSON object."""
        return await self._run("get_refund", self._amazon.get_refund(refund_id))

    async def create_charge(
        self, charge_permission_id: str, amount: Money, *, capture: bool, idempotency_key: str
    ) -> PaymentResult:
        """``POST /charges`` on a Charge Permission (a later shipment, a recurring charge)."""
        flow = self._amazon.create_charge(
            charge_permission_id, amount, capture=capture, idempotency_key=idempotency_key
        )
        return await self._run("create_charge", flow)

    def __repr__(self) -> str:
        return f"AsyncAmazonPayGateway({self._config!r})"
