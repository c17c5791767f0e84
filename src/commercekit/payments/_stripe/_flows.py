"""Stripe's PaymentIntents API as flows, behind StripeGateway and AsyncStripeGateway.

authorize is a PaymentIntent with ``capture_method=manual`` confirmed at
once; purchase the same with automatic capture; capture, cancel (void) and
refunds act on it; verify is a SetupIntent; 3-D Secure comes back as
``requires_action`` and becomes :class:`ActionRequired`. Every POST carries
the idempotency key as ``Idempotency-Key`` and as
``metadata[commercekit_idempotency_key]``, which is how :meth:`lookup` finds
an operation whose answer was lost: by listing recent PaymentIntents,
SetupIntents or refunds and matching the key. Stripe allows one capture per
PaymentIntent (the rest is released), so ``multiple_captures`` is false.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Final

from commercekit.errors import InvalidInputError, OutcomeUnknownError
from commercekit.money import Currency, Money
from commercekit.money._currency import shown
from commercekit.payments._card import Card, ProviderToken
from commercekit.payments._core._amounts import STRIPE_AMOUNTS, AmountRules
from commercekit.payments._core._flow import Flow
from commercekit.payments._core._results import (
    ActionRequired,
    AnyResult,
    DeclineCode,
    Operation,
    Outcome,
    PaymentResult,
    approved_result,
    declined_result,
)
from commercekit.payments._core._state import PaymentState
from commercekit.payments._redact import redact_provider_text
from commercekit.payments._stripe._declines import decline as _decline
from commercekit.payments._stripe._wire import CardError, StripeClient
from commercekit.payments._transports._http import path_segment
from commercekit.payments._typing import GatewayCapabilities, PaymentSource

__all__ = ["StripeFlows"]

KEY_FIELD: Final = "commercekit_idempotency_key"
LOOKUP_PAGE: Final = 100


class StripeFlows:
    """Stripe's operations as flows (see :mod:`commercekit.payments._core._flow`).

    :class:`StripeGateway` runs them over a sync transport and
    :class:`AsyncStripeGateway` awaits them over an async one.
    """

    def __init__(
        self,
        client: StripeClient,
        *,
        amounts: AmountRules = STRIPE_AMOUNTS,
        name: str = "stripe",
    ) -> None:
        self._client = client
        self._name = name
        self._capabilities = GatewayCapabilities(multiple_captures=False, amounts=amounts)

    @property
    def name(self) -> str:
        """``"stripe"`` unless given."""
        return self._name

    @property
    def capabilities(self) -> GatewayCapabilities:
        """One capture per authorization; several refunds; Stripe's currency rules."""
        return self._capabilities

    # -- operations ----------------------------------------------------------------------

    def authorize(
        self,
        amount: Money,
        source: PaymentSource,
        *,
        idempotency_key: str,
        return_url: str | None,
    ) -> Flow[AnyResult]:
        """Create and confirm a PaymentIntent with manual capture."""
        return (
            yield from self._intent(
                Operation.AUTHORIZE, amount, source, idempotency_key, return_url
            )
        )

    def purchase(
        self,
        amount: Money,
        source: PaymentSource,
        *,
        idempotency_key: str,
        return_url: str | None,
    ) -> Flow[AnyResult]:
        """Create and confirm a PaymentIntent with automatic capture."""
        return (
            yield from self._intent(Operation.PURCHASE, amount, source, idempotency_key, return_url)
        )

    def capture(
        self, reference: str, amount: Money, *, idempotency_key: str
    ) -> Flow[PaymentResult]:
        """Capture *amount* of PaymentIntent *reference* (once; the rest is released)."""
        value = self._capabilities.amounts.to_provider(amount)
        intent = yield from self._client.post(
            f"/v1/payment_intents/{path_segment(reference)}/capture",
            {"amount_to_capture": value},
            idempotency_key=idempotency_key,
        )
        full = value >= int(intent.get("amount", value))
        status = PaymentState.CAPTURED if full else PaymentState.PARTIALLY_CAPTURED
        return self._result(Operation.CAPTURE, reference, amount, status)

    def void(self, reference: str, *, idempotency_key: str) -> Flow[PaymentResult]:
        """Cancel PaymentIntent *reference*."""
        intent = yield from self._client.post(
            f"/v1/payment_intents/{path_segment(reference)}/cancel",
            {},
            idempotency_key=idempotency_key,
        )
        return self._result(Operation.VOID, reference, self._amount(intent), PaymentState.VOIDED)

    def refund(self, reference: str, amount: Money, *, idempotency_key: str) -> Flow[PaymentResult]:
        """Refund *amount* of PaymentIntent *reference*."""
        value = self._capabilities.amounts.to_provider(amount)
        refund = yield from self._client.post(
            "/v1/refunds",
            {
                "payment_intent": reference,
                "amount": value,
                "metadata": {KEY_FIELD: idempotency_key},
            },
            idempotency_key=idempotency_key,
        )
        return self._refund_result(reference, amount, refund)

    def verify(
        self, source: PaymentSource, currency: Currency, *, idempotency_key: str
    ) -> Flow[PaymentResult]:
        """Check the card with a SetupIntent (Stripe's zero-amount check)."""
        method = yield from self._payment_method(source, idempotency_key)
        setup = yield from self._client.post(
            "/v1/setup_intents",
            {"usage": "off_session", "metadata": {KEY_FIELD: idempotency_key}},
            idempotency_key=f"{idempotency_key}:setup",
        )
        try:
            setup = yield from self._client.post(
                f"/v1/setup_intents/{path_segment(setup['id'])}/confirm",
                {"payment_method": method},
                idempotency_key=f"{idempotency_key}:confirm",
            )
        except CardError as exc:
            code, raw = _decline(exc.error)
            return self._declined(Operation.VERIFY, setup["id"], Money.zero(currency), code, raw)
        return self._setup_result(setup, currency)

    def complete_action(self, reference: str, *, idempotency_key: str) -> Flow[AnyResult]:
        """Read PaymentIntent *reference* after the customer's 3-D Secure step."""
        intent = yield from self._client.get(f"/v1/payment_intents/{path_segment(reference)}")
        return self._intent_result(Operation.COMPLETE_ACTION, intent)

    def lookup(
        self, operation: Operation, *, idempotency_key: str, reference: str | None
    ) -> Flow[AnyResult | None]:
        """Find the operation sent with *idempotency_key* (see the module docstring)."""
        if operation in (Operation.AUTHORIZE, Operation.PURCHASE):
            intent = yield from self._find("/v1/payment_intents", idempotency_key, {})
            return None if intent is None else self._intent_result(operation, intent)
        if operation is Operation.VERIFY:
            setup = yield from self._find("/v1/setup_intents", idempotency_key, {})
            return None if setup is None else self._setup_result(setup, None)
        if reference is None:
            return None
        if operation is Operation.REFUND:
            refund = yield from self._find(
                "/v1/refunds", idempotency_key, {"payment_intent": reference}
            )
            if refund is None:
                return None
            amount = self._capabilities.amounts.from_provider(
                int(refund["amount"]), str(refund["currency"]).upper()
            )
            return self._refund_result(reference, amount, refund)
        intent = yield from self._client.get(f"/v1/payment_intents/{path_segment(reference)}")
        if operation is Operation.COMPLETE_ACTION:
            return self._intent_result(operation, intent)
        if operation is Operation.VOID:
            if intent.get("status") != "canceled":
                return None
            return self._result(operation, reference, self._amount(intent), PaymentState.VOIDED)
        captured = _captured(intent)
        if captured is None:
            return None
        amount = self._capabilities.amounts.from_provider(captured, _currency(intent))
        full = captured >= int(intent["amount"])
        status = PaymentState.CAPTURED if full else PaymentState.PARTIALLY_CAPTURED
        return self._result(operation, reference, amount, status)

    # -- internals -----------------------------------------------------------------------

    def _intent(
        self,
        operation: Operation,
        amount: Money,
        source: PaymentSource,
        key: str,
        return_url: str | None,
    ) -> Flow[AnyResult]:
        value = self._capabilities.amounts.to_provider(amount)
        method = yield from self._payment_method(source, key)
        params: dict[str, Any] = {
            "amount": value,
            "currency": amount.currency.code.lower(),
            "payment_method": method,
            "confirm": True,
            "capture_method": "manual" if operation is Operation.AUTHORIZE else "automatic",
            "metadata": {KEY_FIELD: key},
        }
        if return_url is not None:
            params["return_url"] = return_url
        try:
            intent = yield from self._client.post(
                "/v1/payment_intents", params, idempotency_key=key
            )
        except CardError as exc:
            found = exc.error.get("payment_intent")
            if isinstance(found, Mapping):
                return self._intent_result(operation, found)
            code, raw = _decline(exc.error)
            reference = str(exc.error.get("charge") or "")
            return self._declined(operation, reference, amount, code, raw)
        return self._intent_result(operation, intent)

    def _payment_method(self, source: PaymentSource, key: str) -> Flow[str]:
        if isinstance(source, ProviderToken):
            return source.value
        if not isinstance(source, Card):
            raise InvalidInputError(f"Stripe takes a Card or a ProviderToken, not {shown(source)}")
        card: dict[str, Any] = {
            "number": source.number.reveal(),
            "exp_month": source.exp_month,
            "exp_year": source.exp_year,
        }
        if source.cvv is not None:
            card["cvc"] = source.cvv.reveal()
        try:
            method = yield from self._client.post(
                "/v1/payment_methods", {"type": "card", "card": card}, idempotency_key=f"{key}:pm"
            )
        except CardError as exc:
            raise InvalidInputError(f"Stripe refused the card: {_decline(exc.error)[1]}") from None
        return str(method["id"])

    def _intent_result(self, operation: Operation, intent: Mapping[str, Any]) -> AnyResult:
        reference = str(intent["id"])
        amount = self._amount(intent)
        status = intent.get("status")
        if status == "requires_action":
            action: Mapping[str, Any] = intent.get("next_action") or {}
            redirect = (action.get("redirect_to_url") or {}).get("url")
            return ActionRequired(
                operation=operation,
                reference=reference,
                amount=amount,
                provider=self._name,
                action_type=str(action.get("type") or "use_stripe_sdk"),
                redirect_url=redirect,
                client_secret=intent.get("client_secret"),
            )
        if status == "requires_capture":
            return self._result(operation, reference, amount, PaymentState.AUTHORIZED)
        if status == "succeeded":
            return self._result(operation, reference, amount, PaymentState.CAPTURED)
        if status == "canceled":
            return self._result(operation, reference, amount, PaymentState.VOIDED)
        if status == "requires_payment_method":
            code, raw = _decline(intent.get("last_payment_error"))
            return self._declined(operation, reference, amount, code, raw)
        raise OutcomeUnknownError(
            f"Stripe PaymentIntent {redact_provider_text(reference, limit=64)} is "
            f"{redact_provider_text(status, limit=64)!r}; its outcome is not known yet"
        )

    def _setup_result(self, setup: Mapping[str, Any], currency: Currency | None) -> PaymentResult:
        zero = Money.zero(currency if currency is not None else "USD")
        reference = str(setup["id"])
        if setup.get("status") == "succeeded":
            return self._result(Operation.VERIFY, reference, zero, PaymentState.VOIDED)
        code, raw = _decline(setup.get("last_setup_error") or {"code": "authentication_required"})
        return self._declined(Operation.VERIFY, reference, zero, code, raw)

    def _refund_result(
        self, reference: str, amount: Money, refund: Mapping[str, Any]
    ) -> PaymentResult:
        if refund.get("status") in ("failed", "canceled"):
            code, raw = _decline({"code": refund.get("failure_reason") or "processing_error"})
            return self._declined(Operation.REFUND, reference, amount, code, raw)
        return PaymentResult(
            operation=Operation.REFUND,
            outcome=Outcome.APPROVED,
            reference=reference,
            amount=amount,
            status=PaymentState.PARTIALLY_REFUNDED,  # the service sets it from the ledger
            provider=self._name,
            operation_reference=str(refund.get("id") or "") or None,
        )

    def _find(self, path: str, key: str, params: dict[str, Any]) -> Flow[dict[str, Any] | None]:
        page = yield from self._client.get(path, {**params, "limit": LOOKUP_PAGE})
        for item in page.get("data") or []:
            if (item.get("metadata") or {}).get(KEY_FIELD) == key:
                return dict(item)
        return None

    def _amount(self, intent: Mapping[str, Any]) -> Money:
        return self._capabilities.amounts.from_provider(int(intent["amount"]), _currency(intent))

    def _result(
        self, operation: Operation, reference: str, amount: Money, status: PaymentState
    ) -> PaymentResult:
        return approved_result(self._name, operation, reference, amount, status)

    def _declined(
        self, operation: Operation, reference: str, amount: Money, code: DeclineCode, raw: str
    ) -> PaymentResult:
        failed = operation in (
            Operation.AUTHORIZE,
            Operation.PURCHASE,
            Operation.VERIFY,
            Operation.COMPLETE_ACTION,
        )
        status = PaymentState.FAILED if failed else PaymentState.AUTHORIZED
        return declined_result(self._name, operation, reference, amount, code, raw, status=status)

    def __repr__(self) -> str:
        return f"StripeFlows({self._client!r})"


def _currency(intent: Mapping[str, Any]) -> str:
    return str(intent["currency"]).upper()


def _captured(intent: Mapping[str, Any]) -> int | None:
    """What a PaymentIntent captured, or None if nothing yet."""
    if intent.get("status") != "succeeded":
        return None
    received = intent.get("amount_received")
    if isinstance(received, int) and received > 0:
        return received
    charge = intent.get("latest_charge")
    if isinstance(charge, Mapping) and charge.get("captured"):
        return int(charge["amount"]) - int(charge.get("amount_refunded") or 0)
    return int(intent["amount"])
