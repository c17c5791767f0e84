"""Amazon Pay's Checkout v2 API as flows, behind AmazonPayGateway and AsyncAmazonPayGateway.

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
from commercekit.payments._core._flow import Flow
from commercekit.payments._core._results import (
    ActionRequired,
    AnyResult,
    Operation,
    PaymentResult,
)
from commercekit.payments._typing import GatewayCapabilities, PaymentSource

__all__ = ["AmazonPayFlows"]

_CAPTURED: Final = frozenset({"Captured", "CaptureInitiated"})


class AmazonPayFlows:
    """Amazon Pay's operations as flows; :class:`AmazonPayGateway` and its async twin run them.

    *client* sends the signed calls; the rest as :class:`AmazonPayGateway` describes.
    """

    def __init__(
        self,
        config: AmazonPayConfig,
        client: AmazonPayClient,
        *,
        return_url: str | None = None,
        amounts: AmountRules | None = None,
        name: str = "amazonpay",
    ) -> None:
        self._config = config
        self._client = client
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
    ) -> Flow[CheckoutSession]:
        """``POST /checkoutSessions``: a session the buyer reviews at Amazon."""
        body = yield from self._client.send(
            "POST",
            "checkoutSessions",
            body=self._session_payload(review_return_url),
            idempotency_key=idempotency_key,
        )
        return CheckoutSession.from_wire(body)

    def get_checkout_session(self, session_id: str) -> Flow[CheckoutSession]:
        """``GET /checkoutSessions/{id}``."""
        path = f"checkoutSessions/{check_id(session_id, 'checkout session')}"
        body = yield from self._client.send("GET", path)
        return CheckoutSession.from_wire(body)

    def update_checkout_session(
        self, session_id: str, amount: Money, *, result_return_url: str, capture: bool
    ) -> Flow[CheckoutSession]:
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
        answer = yield from self._client.send("PATCH", path, body=body)
        return CheckoutSession.from_wire(answer)

    def complete_checkout_session(self, session_id: str, amount: Money) -> Flow[CheckoutSession]:
        """``POST /checkoutSessions/{id}/complete`` with the amount the session was given."""
        path = f"checkoutSessions/{check_id(session_id, 'checkout session')}/complete"
        body = yield from self._client.send("POST", path, body={"chargeAmount": price(amount)})
        return CheckoutSession.from_wire(body)

    def get_charge_permission(self, charge_permission_id: str) -> Flow[dict[str, Any]]:
        """``GET /chargePermissions/{id}``: Amazon's JSON object."""
        path = f"chargePermissions/{check_id(charge_permission_id, 'charge permission')}"
        return (yield from self._client.send("GET", path))

    def get_charge(self, charge_id: str) -> Flow[dict[str, Any]]:
        """``GET /charges/{id}``: Amazon's JSON object."""
        return (yield from self._client.send("GET", f"charges/{check_id(charge_id, 'charge')}"))

    def get_refund(self, refund_id: str) -> Flow[dict[str, Any]]:
        """``GET /refunds/{id}``: Amazon's JSON object."""
        return (yield from self._client.send("GET", f"refunds/{check_id(refund_id, 'refund')}"))

    def create_charge(
        self, charge_permission_id: str, amount: Money, *, capture: bool, idempotency_key: str
    ) -> Flow[PaymentResult]:
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
            charge = yield from self._client.send(
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
        return_url: str | None,
    ) -> Flow[AnyResult]:
        """Give the buyer's session the amount; send the buyer to Amazon to pay."""
        return (yield from self._start(Operation.AUTHORIZE, amount, source, return_url))

    def purchase(
        self,
        amount: Money,
        source: PaymentSource,
        *,
        idempotency_key: str,
        return_url: str | None,
    ) -> Flow[AnyResult]:
        """As :meth:`authorize`, captured as soon as the buyer has paid."""
        return (yield from self._start(Operation.PURCHASE, amount, source, return_url))

    def verify(
        self, source: PaymentSource, currency: Currency, *, idempotency_key: str
    ) -> Flow[PaymentResult]:
        """Not offered: Amazon checks the buyer's payment method on its own page."""
        yield from ()  # a flow that asks nothing
        raise InvalidStateError(
            "Amazon Pay has no card check: the buyer's payment method is checked on Amazon's "
            "page; use authorize() with the buyer's checkout session"
        )

    def complete_action(self, reference: str, *, idempotency_key: str) -> Flow[AnyResult]:
        """Complete the session the buyer paid on; answer with its Charge.

        Raises:
            InvalidStateError: the buyer has not finished on Amazon's page yet.
        """
        session = yield from self.get_checkout_session(reference)
        if session.state == "Open":
            amount = session.amount
            if amount is None:
                raise InvalidStateError(
                    f"checkout session {reference} has no amount; authorize() it first"
                )
            try:
                session = yield from self.complete_checkout_session(reference, amount)
            except AmazonPayRefusal as exc:
                if exc.reason_code != "CheckoutSessionCanceled":
                    raise InvalidStateError(
                        f"Amazon Pay cannot complete checkout session {reference} "
                        f"({exc.reason_code}): the buyer has not finished on Amazon's page"
                    ) from None
                session = yield from self.get_checkout_session(reference)
        return (yield from self._session_result(session))

    def capture(
        self, reference: str, amount: Money, *, idempotency_key: str
    ) -> Flow[PaymentResult]:
        """``POST /charges/{id}/capture`` for *amount*."""
        path = f"charges/{check_id(reference, 'charge')}/capture"
        try:
            charge = yield from self._client.send(
                "POST",
                path,
                body={"captureAmount": price(amount)},
                idempotency_key=idempotency_key,
            )
        except AmazonPayRefusal as exc:
            return self._out.refused(exc, Operation.CAPTURE, reference, amount, "capture")
        return self._out.charge_result(Operation.CAPTURE, charge)

    def void(self, reference: str, *, idempotency_key: str) -> Flow[PaymentResult]:
        """``DELETE /charges/{id}/cancel``: release the authorization."""
        path = f"charges/{check_id(reference, 'charge')}/cancel"
        body = {"cancellationReason": "Released by the merchant"}
        try:
            charge = yield from self._client.send("DELETE", path, body=body)
        except AmazonPayRefusal as exc:
            raise refused_state(exc.reason_code, f"cancel charge {reference}") from None
        return self._out.charge_result(Operation.VOID, charge)

    def refund(self, reference: str, amount: Money, *, idempotency_key: str) -> Flow[PaymentResult]:
        """``POST /refunds`` of *amount* on the Charge; settled later (a notification says)."""
        body = {"chargeId": check_id(reference, "charge"), "refundAmount": price(amount)}
        try:
            refund = yield from self._client.send(
                "POST", "refunds", body=body, idempotency_key=idempotency_key
            )
        except AmazonPayRefusal as exc:
            return self._out.refused(exc, Operation.REFUND, reference, amount, "refund")
        return self._out.refund_result(reference, refund)

    def lookup(
        self, operation: Operation, *, idempotency_key: str, reference: str | None
    ) -> Flow[AnyResult | None]:
        """Read the session or Charge where it tells; None (resend under the key) otherwise."""
        if reference is None:
            return None
        if operation is Operation.COMPLETE_ACTION:
            session = yield from self.get_checkout_session(reference)
            if session.state == "Open":
                return None
            return (yield from self._session_result(session))
        if operation in (Operation.CAPTURE, Operation.VOID):
            charge = yield from self.get_charge(reference)
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
    ) -> Flow[AnyResult]:
        if not isinstance(source, ProviderToken):
            raise InvalidInputError(
                "Amazon Pay takes the buyer's checkout session as "
                "ProviderToken(amazonCheckoutSessionId), not a card"
            )
        url = return_url or self._return_url
        if not url:
            raise InvalidInputError("Amazon Pay needs a return_url for the buyer to come back to")
        try:
            session = yield from self.update_checkout_session(
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

    def _session_result(self, session: CheckoutSession) -> Flow[PaymentResult]:
        if session.state == "Completed" and session.charge_id:
            charge = yield from self.get_charge(session.charge_id)
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
        return f"AmazonPayFlows({self._config!r})"
