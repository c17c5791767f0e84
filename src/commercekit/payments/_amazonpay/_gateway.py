"""AmazonPayGateway: Amazon Pay's Checkout v2 API behind the PaymentGateway protocol.

The redirect flow maps onto the protocol like this:

1. The Amazon Pay button (or :meth:`AmazonPayGateway.create_checkout_session`)
   makes a Checkout Session; the buyer picks an address and a payment method
   at Amazon and comes back with ``amazonCheckoutSessionId``.
2. ``authorize`` (or ``purchase``) with ``ProviderToken(<that id>)`` updates the
   session with the amount, the intent (``Authorize`` or
   ``AuthorizeWithCapture``) and the result URL, and answers
   :class:`ActionRequired` whose ``redirect_url`` is ``amazonPayRedirectUrl``
   and whose reference is the session id.
3. When the buyer is back at the result URL, ``complete_action`` reads the
   session, completes it with the same amount, and reads the Charge it made:
   the result's reference is the Charge id, its ``operation_reference`` the
   Charge Permission id.
4. ``capture`` (one per Charge, full or partial), ``void`` (Cancel Charge)
   and ``refund`` (several, partial or full; answered ``RefundInitiated`` and
   settled later, which a notification tells) work on the Charge.

Every POST carries ``x-amz-pay-idempotency-key`` derived from the
:class:`PaymentService` key; Amazon keeps the first answer to a key
indefinitely and replays it, so after a lost answer the request is resent as
it is. :meth:`lookup` reads the session or the Charge where that tells what
happened (a completed session, a captured or canceled Charge) and answers
None otherwise, which makes the service resend under the same key.
"""

from __future__ import annotations

import json
import time
from typing import Any, Final

from commercekit.errors import InvalidInputError, InvalidStateError, OutcomeUnknownError
from commercekit.money import Currency, Money
from commercekit.payments._amazonpay._codes import (
    AMAZON_PAY_AMOUNTS,
    price,
    refused_state,
    state_of,
)
from commercekit.payments._amazonpay._outcomes import Outcomes
from commercekit.payments._amazonpay._session import CheckoutSession
from commercekit.payments._amazonpay._wire import (
    AmazonPayClient,
    AmazonPayConfig,
    AmazonPayRefusal,
    check_id,
)
from commercekit.payments._card import ProviderToken
from commercekit.payments._core._amounts import AmountRules
from commercekit.payments._core._results import (
    ActionRequired,
    AnyResult,
    Operation,
    PaymentResult,
)
from commercekit.payments._transports._httpx import default_transport
from commercekit.payments._typing import Clock, GatewayCapabilities, HttpTransport, PaymentSource

__all__ = ["AmazonPayGateway"]

_CAPTURED: Final = frozenset({"Captured", "CaptureInitiated"})


class AmazonPayGateway:
    """A :class:`PaymentGateway` over Amazon Pay's Checkout v2 API. See the module docstring.

    *return_url* is the ``checkoutResultReturnUrl`` the buyer comes back to
    after paying, when a call names none. *amounts* defaults to the
    currencies of the configured region (:data:`AMAZON_PAY_AMOUNTS`): USD in
    us, JPY in jp, EUR, GBP and Amazon's multi-currency list in eu.
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
        self._client = AmazonPayClient(
            config, transport if transport is not None else default_transport(), clock=clock
        )
        self._return_url = return_url
        self._name = name
        self._out = Outcomes(name)
        self._capabilities = GatewayCapabilities(
            multiple_captures=False,
            multiple_refunds=True,
            amounts=amounts if amounts is not None else AMAZON_PAY_AMOUNTS[config.region],
        )

    @property
    def name(self) -> str:
        """``"amazonpay"`` unless given."""
        return self._name

    @property
    def capabilities(self) -> GatewayCapabilities:
        """One capture per Charge, several refunds."""
        return self._capabilities

    # -- the Checkout Session, Charge Permission, Charge and Refund objects -----------------

    def button_payload(self, review_return_url: str) -> tuple[str, str]:
        """The ``payloadJSON`` and ``signature`` for ``amazon.Pay.renderButton``."""
        payload = json.dumps(self._session_payload(review_return_url), separators=(",", ":"))
        return payload, self._client.signer.button_signature(payload)

    def create_checkout_session(
        self, review_return_url: str, *, idempotency_key: str
    ) -> CheckoutSession:
        """``POST /checkoutSessions``: a session the buyer reviews at Amazon."""
        body = self._client.call(
            "POST",
            "checkoutSessions",
            body=self._session_payload(review_return_url),
            idempotency_key=idempotency_key,
        )
        return CheckoutSession.from_wire(body)

    def get_checkout_session(self, session_id: str) -> CheckoutSession:
        """``GET /checkoutSessions/{id}``."""
        path = f"checkoutSessions/{check_id(session_id, 'checkout session')}"
        return CheckoutSession.from_wire(self._client.call("GET", path))

    def update_checkout_session(
        self, session_id: str, amount: Money, *, result_return_url: str, capture: bool
    ) -> CheckoutSession:
        """``PATCH /checkoutSessions/{id}`` with the amount, the intent and the result URL."""
        self._capabilities.amounts.to_provider(amount)
        body = {
            "webCheckoutDetails": {"checkoutResultReturnUrl": result_return_url},
            "paymentDetails": {
                "paymentIntent": "AuthorizeWithCapture" if capture else "Authorize",
                "canHandlePendingAuthorization": False,
                "chargeAmount": price(amount),
            },
        }
        path = f"checkoutSessions/{check_id(session_id, 'checkout session')}"
        return CheckoutSession.from_wire(self._client.call("PATCH", path, body=body))

    def complete_checkout_session(self, session_id: str, amount: Money) -> CheckoutSession:
        """``POST /checkoutSessions/{id}/complete`` with the amount the session was given."""
        path = f"checkoutSessions/{check_id(session_id, 'checkout session')}/complete"
        body = self._client.call("POST", path, body={"chargeAmount": price(amount)})
        return CheckoutSession.from_wire(body)

    def get_charge_permission(self, charge_permission_id: str) -> dict[str, Any]:
        """``GET /chargePermissions/{id}``: Amazon's JSON object."""
        return self._client.call(
            "GET", f"chargePermissions/{check_id(charge_permission_id, 'charge permission')}"
        )

    def get_charge(self, charge_id: str) -> dict[str, Any]:
        """``GET /charges/{id}``: Amazon's JSON object."""
        return self._client.call("GET", f"charges/{check_id(charge_id, 'charge')}")

    def get_refund(self, refund_id: str) -> dict[str, Any]:
        """``GET /refunds/{id}``: Amazon's JSON object."""
        return self._client.call("GET", f"refunds/{check_id(refund_id, 'refund')}")

    def create_charge(
        self, charge_permission_id: str, amount: Money, *, capture: bool, idempotency_key: str
    ) -> PaymentResult:
        """``POST /charges`` on a Charge Permission (a later shipment, a recurring charge)."""
        self._capabilities.amounts.to_provider(amount)
        body = {
            "chargePermissionId": check_id(charge_permission_id, "charge permission"),
            "chargeAmount": price(amount),
            "captureNow": capture,
            "canHandlePendingAuthorization": False,
        }
        operation = Operation.PURCHASE if capture else Operation.AUTHORIZE
        try:
            charge = self._client.call(
                "POST", "charges", body=body, idempotency_key=idempotency_key
            )
        except AmazonPayRefusal as exc:
            return self._out.refused(exc, operation, charge_permission_id, amount, "charge")
        return self._out.charge_result(operation, charge)

    # -- the protocol ----------------------------------------------------------------------

    def authorize(
        self,
        amount: Money,
        source: PaymentSource,
        *,
        idempotency_key: str,
        return_url: str | None = None,
    ) -> AnyResult:
        """Give the buyer's session the amount; send the buyer to Amazon to pay."""
        return self._start(Operation.AUTHORIZE, amount, source, return_url)

    def purchase(
        self,
        amount: Money,
        source: PaymentSource,
        *,
        idempotency_key: str,
        return_url: str | None = None,
    ) -> AnyResult:
        """As :meth:`authorize`, captured as soon as the buyer has paid."""
        return self._start(Operation.PURCHASE, amount, source, return_url)

    def verify(
        self, source: PaymentSource, currency: Currency, *, idempotency_key: str
    ) -> PaymentResult:
        """Not offered: Amazon checks the buyer's payment method on its own page."""
        raise InvalidStateError(
            "Amazon Pay has no card check: the buyer's payment method is checked on Amazon's "
            "page; use authorize() with the buyer's checkout session"
        )

    def complete_action(self, reference: str, *, idempotency_key: str) -> AnyResult:
        """Complete the session the buyer paid on; answer with its Charge.

        Raises:
            InvalidStateError: the buyer has not finished on Amazon's page yet.
        """
        session = self.get_checkout_session(reference)
        if session.state == "Open":
            amount = session.amount
            if amount is None:
                raise InvalidStateError(
                    f"checkout session {reference} has no amount; authorize() it first"
                )
            try:
                session = self.complete_checkout_session(reference, amount)
            except AmazonPayRefusal as exc:
                if exc.reason_code != "CheckoutSessionCanceled":
                    raise InvalidStateError(
                        f"Amazon Pay cannot complete checkout session {reference} "
                        f"({exc.reason_code}): the buyer has not finished on Amazon's page"
                    ) from None
                session = self.get_checkout_session(reference)
        return self._session_result(session)

    def capture(self, reference: str, amount: Money, *, idempotency_key: str) -> PaymentResult:
        """``POST /charges/{id}/capture`` for *amount*."""
        path = f"charges/{check_id(reference, 'charge')}/capture"
        try:
            charge = self._client.call(
                "POST",
                path,
                body={"captureAmount": price(amount)},
                idempotency_key=idempotency_key,
            )
        except AmazonPayRefusal as exc:
            return self._out.refused(exc, Operation.CAPTURE, reference, amount, "capture")
        return self._out.charge_result(Operation.CAPTURE, charge)

    def void(self, reference: str, *, idempotency_key: str) -> PaymentResult:
        """``DELETE /charges/{id}/cancel``: release the authorization."""
        path = f"charges/{check_id(reference, 'charge')}/cancel"
        body = {"cancellationReason": "Released by the merchant"}
        try:
            charge = self._client.call("DELETE", path, body=body)
        except AmazonPayRefusal as exc:
            raise refused_state(exc.reason_code, f"cancel charge {reference}") from None
        return self._out.charge_result(Operation.VOID, charge)

    def refund(self, reference: str, amount: Money, *, idempotency_key: str) -> PaymentResult:
        """``POST /refunds`` of *amount* on the Charge; settled later (a notification says)."""
        body = {"chargeId": check_id(reference, "charge"), "refundAmount": price(amount)}
        try:
            refund = self._client.call(
                "POST", "refunds", body=body, idempotency_key=idempotency_key
            )
        except AmazonPayRefusal as exc:
            return self._out.refused(exc, Operation.REFUND, reference, amount, "refund")
        return self._out.refund_result(reference, refund)

    def lookup(
        self, operation: Operation, *, idempotency_key: str, reference: str | None
    ) -> AnyResult | None:
        """Read the session or Charge where it tells; None (resend under the key) otherwise."""
        if reference is None:
            return None
        if operation is Operation.COMPLETE_ACTION:
            session = self.get_checkout_session(reference)
            return None if session.state == "Open" else self._session_result(session)
        if operation in (Operation.CAPTURE, Operation.VOID):
            charge = self.get_charge(reference)
            state, _ = state_of(charge)
            if operation is Operation.CAPTURE and state in _CAPTURED:
                return self._out.charge_result(Operation.CAPTURE, charge)
            if operation is Operation.VOID and state == "Canceled":
                return self._out.charge_result(Operation.VOID, charge)
        return None  # a session update or a refund: resending under the same key is safe

    # -- internals -----------------------------------------------------------------------

    def _session_payload(self, review_return_url: str) -> dict[str, Any]:
        if not isinstance(review_return_url, str) or not review_return_url.startswith("http"):
            raise InvalidInputError("a checkout review return URL is an http(s) URL")
        return {
            "webCheckoutDetails": {"checkoutReviewReturnUrl": review_return_url},
            "storeId": self._config.store_id,
        }

    def _start(
        self, operation: Operation, amount: Money, source: PaymentSource, return_url: str | None
    ) -> AnyResult:
        if not isinstance(source, ProviderToken):
            raise InvalidInputError(
                "Amazon Pay takes the buyer's checkout session as "
                "ProviderToken(amazonCheckoutSessionId), not a card"
            )
        url = return_url or self._return_url
        if not url:
            raise InvalidInputError("Amazon Pay needs a return_url for the buyer to come back to")
        try:
            session = self.update_checkout_session(
                source.value, amount, result_return_url=url, capture=operation is Operation.PURCHASE
            )
        except AmazonPayRefusal as exc:
            raise refused_state(
                exc.reason_code, f"update checkout session {source.value}"
            ) from None
        if session.state == "Canceled":
            return self._out.declined(operation, session.id, amount, session.reason_code)
        if session.state != "Open" or not session.redirect_url:
            raise InvalidStateError(
                f"checkout session {session.id} is {session.state or 'unknown'} with "
                f"constraints {list(session.constraints)}: the buyer must finish the review first"
            )
        return ActionRequired(
            operation=operation,
            reference=session.id,
            amount=amount,
            provider=self._name,
            action_type="redirect_to_amazon_pay",
            redirect_url=session.redirect_url,
        )

    def _session_result(self, session: CheckoutSession) -> PaymentResult:
        if session.state == "Completed" and session.charge_id:
            charge = self.get_charge(session.charge_id)
            return self._out.charge_result(Operation.COMPLETE_ACTION, charge)
        if session.state == "Canceled":
            amount = session.amount
            if amount is None:
                raise OutcomeUnknownError(f"checkout session {session.id} names no amount")
            return self._out.declined(
                Operation.COMPLETE_ACTION, session.id, amount, session.reason_code
            )
        raise OutcomeUnknownError(
            f"checkout session {session.id} is {session.state or 'in no state'} without a charge"
        )

    def __repr__(self) -> str:
        return f"AmazonPayGateway({self._config!r})"
