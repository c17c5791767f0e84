"""Adyen's Checkout API (v71) as flows, behind AdyenGateway and AsyncAdyenGateway.

authorize is ``POST /payments`` with ``additionalData.manualCapture``;
purchase the same with ``captureDelayHours: 0``; verify a zero-value
``/payments``. capture, void and refund are ``/payments/{pspReference}/captures``,
``/cancels`` and ``/refunds``: Adyen answers those ``received`` at once and
settles them later (its webhooks say how), so ``received`` counts as approved.
``resultCode`` decides a payment: ``Authorised`` approved; ``Refused``,
``Error`` and ``Cancelled`` a decline (the refusal reason mapped onto
:class:`DeclineCode`); ``RedirectShopper``, ``IdentifyShopper`` and
``ChallengeShopper`` an :class:`ActionRequired` whose reference is the
``pspReference``; ``Received`` and ``Pending`` are not final yet, so the
outcome is unknown until a webhook tells it.

3-D Secure: when the shopper comes back to your ``returnUrl``, hand what
Adyen sent along (``{"redirectResult": ...}``) to :meth:`AdyenGateway.shopper_returned`
(or give the gateway a *details* function that finds it in your session
store), then call ``complete_action``: it posts them to ``/payments/details``.

Adyen has no search by idempotency key, so :meth:`AdyenGateway.lookup`
answers None, and after a lost answer the service resends the request with
the same ``Idempotency-Key``; Adyen answers a repeated key with the first
response, so nothing happens twice. The merchant reference is
``auth.<key>``, ``sale.<key>`` or ``check.<key>``, which is how
``/payments/details`` tells whether the payment is captured already.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Mapping
from typing import Any, Final

from commercekit.errors import InvalidInputError, InvalidStateError, OutcomeUnknownError
from commercekit.money import Currency, Money
from commercekit.money._currency import shown
from commercekit.payments._adyen._codes import ADYEN_AMOUNTS, refusal
from commercekit.payments._adyen._wire import AdyenClient, adyen_key
from commercekit.payments._card import Card, ProviderToken
from commercekit.payments._core._amounts import AmountRules
from commercekit.payments._core._flow import Flow
from commercekit.payments._core._results import (
    ActionRequired,
    AnyResult,
    DeclineCode,
    Operation,
    PaymentResult,
    approved_result,
    declined_result,
)
from commercekit.payments._core._state import PaymentState
from commercekit.payments._redact import redact_provider_text
from commercekit.payments._transports._http import path_segment
from commercekit.payments._typing import GatewayCapabilities, PaymentSource

__all__ = ["AdyenFlows", "RedirectDetails"]

RedirectDetails = Callable[[str], "Mapping[str, str] | None"]
"""Given a pspReference, what the shopper brought back from 3-D Secure, or None yet."""

_ACTIONS: Final = frozenset({"RedirectShopper", "IdentifyShopper", "ChallengeShopper"})
_DECLINES: Final = frozenset({"Refused", "Error", "Cancelled"})
_MODES: Final = {Operation.AUTHORIZE: "auth", Operation.PURCHASE: "sale", Operation.VERIFY: "check"}
_MAX_REFERENCE: Final = 80


class AdyenFlows:
    """Adyen's operations as flows; :class:`AdyenGateway` and :class:`AsyncAdyenGateway` run them.

    *client* sends the calls; the rest as :class:`AdyenGateway` describes.
    """

    def __init__(
        self,
        client: AdyenClient,
        merchant_account: str,
        *,
        return_url: str,
        amounts: AmountRules = ADYEN_AMOUNTS,
        multiple_captures: bool = False,
        details: RedirectDetails | None = None,
        name: str = "adyen",
    ) -> None:
        if not merchant_account:
            raise InvalidInputError("an Adyen merchant account name is needed")
        self._client = client
        self._merchant = merchant_account
        self._return_url = return_url
        self._name = name
        self._capabilities = GatewayCapabilities(
            multiple_captures=multiple_captures, amounts=amounts
        )
        self._details = details
        self._returned: dict[str, Mapping[str, str]] = {}
        self._lock = threading.Lock()

    @property
    def name(self) -> str:
        """``"adyen"`` unless given."""
        return self._name

    @property
    def capabilities(self) -> GatewayCapabilities:
        """Several refunds; one capture unless the account allows more; Adyen's exponents."""
        return self._capabilities

    def shopper_returned(self, reference: str, details: Mapping[str, str]) -> None:
        """Keep what the shopper brought back for *reference* (``{"redirectResult": ...}``)."""
        with self._lock:
            self._returned[reference] = dict(details)

    # -- operations ----------------------------------------------------------------------

    def authorize(
        self,
        amount: Money,
        source: PaymentSource,
        *,
        idempotency_key: str,
        return_url: str | None,
    ) -> Flow[AnyResult]:
        """``POST /payments`` with manual capture."""
        return (
            yield from self._pay(Operation.AUTHORIZE, amount, source, idempotency_key, return_url)
        )

    def purchase(
        self,
        amount: Money,
        source: PaymentSource,
        *,
        idempotency_key: str,
        return_url: str | None,
    ) -> Flow[AnyResult]:
        """``POST /payments`` captured at once."""
        return (
            yield from self._pay(Operation.PURCHASE, amount, source, idempotency_key, return_url)
        )

    def verify(
        self, source: PaymentSource, currency: Currency, *, idempotency_key: str
    ) -> Flow[PaymentResult]:
        """A zero-value ``POST /payments``: the card is checked, nothing is held."""
        result = yield from self._pay(
            Operation.VERIFY, Money.zero(currency), source, idempotency_key, None
        )
        if isinstance(result, ActionRequired):
            raise InvalidStateError(
                "Adyen asked for 3-D Secure on a card check; use authorize() for this card"
            )
        return result

    def capture(
        self, reference: str, amount: Money, *, idempotency_key: str
    ) -> Flow[PaymentResult]:
        """``POST /payments/{reference}/captures`` for *amount*."""
        body = yield from self._modify(reference, "captures", amount, idempotency_key)
        # The ledger sets captured or partially captured from its own books.
        return self._approved(Operation.CAPTURE, reference, amount, PaymentState.CAPTURED, body)

    def void(self, reference: str, *, idempotency_key: str) -> Flow[PaymentResult]:
        """``POST /payments/{reference}/cancels``: release the authorization."""
        body = yield from self._modify(reference, "cancels", None, idempotency_key)
        # Adyen's answer names no amount; PaymentService records the amount that was held.
        amount = self._amount(body.get("amount"), Money.zero("XXX"))
        return self._approved(Operation.VOID, reference, amount, PaymentState.VOIDED, body)

    def refund(self, reference: str, amount: Money, *, idempotency_key: str) -> Flow[PaymentResult]:
        """``POST /payments/{reference}/refunds`` for *amount*."""
        body = yield from self._modify(reference, "refunds", amount, idempotency_key)
        return self._approved(
            Operation.REFUND, reference, amount, PaymentState.PARTIALLY_REFUNDED, body
        )

    def complete_action(self, reference: str, *, idempotency_key: str) -> Flow[AnyResult]:
        """``POST /payments/details`` with what the shopper brought back from 3-D Secure.

        Raises:
            InvalidStateError: nothing came back for *reference* yet; call
                :meth:`shopper_returned` (or give the gateway *details*) first.
        """
        details = self._details(reference) if self._details is not None else None
        if details is None:
            with self._lock:
                details = self._returned.get(reference)
        if details is None:
            raise InvalidStateError(
                f"the shopper has not come back from 3-D Secure for Adyen payment {reference}; "
                "pass what Adyen sent to the return URL to shopper_returned() first"
            )
        body = yield from self._client.post(
            "/payments/details", {"details": dict(details)}, idempotency_key=idempotency_key
        )
        mode = str(body.get("merchantReference") or "").partition(".")[0]
        captured = mode == _MODES[Operation.PURCHASE]
        return self._payment(Operation.COMPLETE_ACTION, body, None, captured=captured)

    def lookup(
        self, operation: Operation, *, idempotency_key: str, reference: str | None
    ) -> Flow[AnyResult | None]:
        """Always None: Adyen cannot be searched by key, and resending with it is safe."""
        yield from ()  # nothing to ask: a flow all the same
        return None

    # -- internals -----------------------------------------------------------------------

    def _pay(
        self,
        operation: Operation,
        amount: Money,
        source: PaymentSource,
        key: str,
        return_url: str | None,
    ) -> Flow[AnyResult]:
        body: dict[str, Any] = {
            "merchantAccount": self._merchant,
            "amount": self._wire_amount(amount),
            "reference": _merchant_reference(operation, key),
            "paymentMethod": _payment_method(source),
            "returnUrl": return_url or self._return_url,
        }
        if operation is Operation.PURCHASE:
            body["captureDelayHours"] = 0
        else:
            body["additionalData"] = {"manualCapture": "true"}
        if isinstance(source, ProviderToken):
            body |= {"shopperInteraction": "ContAuth", "recurringProcessingModel": "CardOnFile"}
        answer = yield from self._client.post("/payments", body, idempotency_key=key)
        return self._payment(operation, answer, amount, captured=operation is Operation.PURCHASE)

    def _modify(
        self, reference: str, what: str, amount: Money | None, key: str
    ) -> Flow[dict[str, Any]]:
        body: dict[str, Any] = {
            "merchantAccount": self._merchant,
            "reference": _merchant_reference(None, key),
        }
        if amount is not None:
            body["amount"] = self._wire_amount(amount)
        answer = yield from self._client.post(
            f"/payments/{path_segment(reference)}/{what}", body, idempotency_key=key
        )
        if answer.get("status") != "received":
            raise OutcomeUnknownError(
                f"Adyen answered {what} of {reference} with status "
                f"{redact_provider_text(answer.get('status'), limit=64)!r}, "
                "not 'received'; look it up before trying again"
            )
        return answer

    def _payment(
        self,
        operation: Operation,
        body: Mapping[str, Any],
        sent: Money | None,
        *,
        captured: bool,
    ) -> AnyResult:
        code = str(body.get("resultCode") or "")
        reference = str(body.get("pspReference") or body.get("merchantReference") or "")
        amount = self._amount(body.get("amount"), sent)
        if code == "Authorised":
            if operation is Operation.VERIFY:
                state = PaymentState.VOIDED
            else:
                state = PaymentState.CAPTURED if captured else PaymentState.AUTHORIZED
            return self._approved(operation, reference, amount, state, body)
        if code in _ACTIONS:
            action: Mapping[str, Any] = body.get("action") or {}
            return ActionRequired(
                operation=operation,
                reference=reference,
                amount=amount,
                provider=self._name,
                action_type=str(action.get("type") or code),
                redirect_url=action.get("url"),
                client_secret=action.get("token") or action.get("paymentData"),
            )
        if code in _DECLINES:
            decline, raw = refusal(body)
            return self._declined(operation, reference, amount, decline, raw)
        raise OutcomeUnknownError(
            f"Adyen answered {operation.value} with resultCode "
            f"{redact_provider_text(code or 'none', limit=64)!r}; the final outcome of "
            f"{redact_provider_text(reference or 'the payment', limit=64)} is not known yet "
            "(its webhook will say)"
        )

    def _wire_amount(self, amount: Money) -> dict[str, Any]:
        value = self._capabilities.amounts.to_provider(amount)
        return {"currency": amount.currency.code, "value": value}

    def _amount(self, wire: object, sent: Money | None) -> Money:
        if isinstance(wire, Mapping) and "value" in wire and "currency" in wire:
            return self._capabilities.amounts.from_provider(int(wire["value"]), wire["currency"])
        if sent is None:
            raise OutcomeUnknownError("Adyen's answer names no amount; look the payment up")
        return sent

    def _approved(
        self,
        operation: Operation,
        reference: str,
        amount: Money,
        status: PaymentState,
        body: Mapping[str, Any],
    ) -> PaymentResult:
        own = body.get("pspReference")
        return approved_result(
            self._name,
            operation,
            reference,
            amount,
            status,
            operation_reference=str(own) if own and own != reference else None,
        )

    def _declined(
        self, operation: Operation, reference: str, amount: Money, code: DeclineCode, raw: str
    ) -> PaymentResult:
        return declined_result(self._name, operation, reference, amount, code, raw)

    def __repr__(self) -> str:
        return f"AdyenFlows({self._client!r}, merchant_account={self._merchant!r})"


def _merchant_reference(operation: Operation | None, key: str) -> str:
    prefix = _MODES.get(operation, "op") if operation is not None else "op"
    reference = f"{prefix}.{key}"
    return reference if len(reference) <= _MAX_REFERENCE else f"{prefix}.{adyen_key(key)}"


def _payment_method(source: PaymentSource) -> dict[str, str]:
    if isinstance(source, ProviderToken):
        return {"type": "scheme", "storedPaymentMethodId": source.value}
    if not isinstance(source, Card):
        raise InvalidInputError(f"Adyen takes a Card or a ProviderToken, not {shown(source)}")
    method = {
        "type": "scheme",
        "number": source.number.reveal(),
        "expiryMonth": f"{source.exp_month:02d}",
        "expiryYear": str(source.exp_year),
    }
    if source.cvv is not None:
        method["cvc"] = source.cvv.reveal()
    if source.holder:
        method["holderName"] = source.holder
    return method
