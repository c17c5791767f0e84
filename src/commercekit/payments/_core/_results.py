"""What a gateway answers: frozen results with the provider's reference, the money and the status.

Declines are answers, not exceptions: a :class:`PaymentResult` with
``outcome=DECLINED`` and a :class:`DeclineCode` from one standard set (the
idea of Active Merchant's ``STANDARD_ERROR_CODE``), whatever the provider
called it. 3-D Secure and other redirects come back as :class:`ActionRequired`.
Both serialise to plain JSON for the idempotency store (:func:`result_to_json`).
"""

from __future__ import annotations

import enum
import json
from typing import Any, TypeAlias

import attrs

from commercekit._json import read_json
from commercekit.errors import InvalidInputError, InvalidStateError
from commercekit.money import Money
from commercekit.payments._core._state import PaymentState

__all__ = [
    "ActionRequired",
    "AnyResult",
    "DeclineCode",
    "Operation",
    "Outcome",
    "PaymentResult",
    "final_result",
    "result_from_json",
    "result_to_json",
]


class Operation(enum.Enum):
    """The operations every gateway offers."""

    AUTHORIZE = "authorize"
    CAPTURE = "capture"
    PURCHASE = "purchase"
    VOID = "void"
    REFUND = "refund"
    VERIFY = "verify"
    COMPLETE_ACTION = "complete_action"


class Outcome(enum.Enum):
    """How the provider answered an operation."""

    APPROVED = "approved"
    DECLINED = "declined"
    ACTION_REQUIRED = "action_required"


class DeclineCode(enum.Enum):
    """One standard set of reasons, whatever each provider calls them."""

    CARD_DECLINED = "card_declined"
    INSUFFICIENT_FUNDS = "insufficient_funds"
    EXPIRED_CARD = "expired_card"
    INCORRECT_CVC = "incorrect_cvc"
    INCORRECT_NUMBER = "incorrect_number"
    INVALID_EXPIRY_DATE = "invalid_expiry_date"
    INCORRECT_ZIP = "incorrect_zip"
    PROCESSING_ERROR = "processing_error"
    CALL_ISSUER = "call_issuer"
    PICKUP_CARD = "pickup_card"
    FRAUD_SUSPECTED = "fraud_suspected"
    AUTHENTICATION_FAILED = "authentication_failed"
    LIMIT_EXCEEDED = "limit_exceeded"
    INVALID_AMOUNT = "invalid_amount"
    UNSUPPORTED = "unsupported"
    TRY_AGAIN_LATER = "try_again_later"


@attrs.frozen
class PaymentResult:
    """A provider's final answer to one operation.

    *reference* is the provider's id of the payment (a PaymentIntent id, a
    PSP reference); *operation_reference* the id of this operation where the
    provider has one (a refund id). *amount* is what this operation moved (or
    tried to). *status* is the payment's state after the operation.
    """

    operation: Operation
    outcome: Outcome
    reference: str
    amount: Money
    status: PaymentState
    provider: str
    decline_code: DeclineCode | None = None
    provider_code: str | None = None
    operation_reference: str | None = None
    message: str | None = None

    @property
    def approved(self) -> bool:
        """True when the provider approved the operation."""
        return self.outcome is Outcome.APPROVED


@attrs.frozen
class ActionRequired:
    """The customer must act (3-D Secure, a bank redirect) before the payment can go on.

    Send the customer to *redirect_url* (or hand *client_secret* to the
    provider's browser SDK), then call ``complete_action()`` with the same
    payment. *client_secret* is kept out of ``repr``.
    """

    operation: Operation
    reference: str
    amount: Money
    provider: str
    action_type: str
    redirect_url: str | None = None
    client_secret: str | None = attrs.field(default=None, repr=False)

    @property
    def outcome(self) -> Outcome:
        """Always :attr:`Outcome.ACTION_REQUIRED`."""
        return Outcome.ACTION_REQUIRED

    @property
    def status(self) -> PaymentState:
        """Always :attr:`PaymentState.REQUIRES_ACTION`."""
        return PaymentState.REQUIRES_ACTION

    @property
    def approved(self) -> bool:
        """Always false: nothing is approved until the action is complete."""
        return False


AnyResult: TypeAlias = PaymentResult | ActionRequired


def approved_result(
    provider: str,
    operation: Operation,
    reference: str,
    amount: Money,
    status: PaymentState,
    *,
    operation_reference: str | None = None,
) -> PaymentResult:
    """An approved :class:`PaymentResult` from *provider*, as every gateway builds it."""
    return PaymentResult(
        operation=operation,
        outcome=Outcome.APPROVED,
        reference=reference,
        amount=amount,
        status=status,
        provider=provider,
        operation_reference=operation_reference,
    )


def declined_result(
    provider: str,
    operation: Operation,
    reference: str,
    amount: Money,
    code: DeclineCode,
    raw: str | None,
    *,
    status: PaymentState = PaymentState.FAILED,
) -> PaymentResult:
    """A declined :class:`PaymentResult`: the standard *code* and the provider's own *raw* one."""
    return PaymentResult(
        operation=operation,
        outcome=Outcome.DECLINED,
        reference=reference,
        amount=amount,
        status=status,
        provider=provider,
        decline_code=code,
        provider_code=raw,
    )


def final_result(result: AnyResult, operation: Operation) -> PaymentResult:
    """*result* as a :class:`PaymentResult`; an :class:`ActionRequired` here breaks the contract.

    Only authorize, purchase and complete_action may ask for the customer's
    action; a gateway that answers another operation with one raises
    :class:`~commercekit.errors.InvalidStateError` (a check that holds under
    ``python -O`` too, unlike an ``assert``).
    """
    if not isinstance(result, PaymentResult):
        raise InvalidStateError(
            f"{operation.value} was answered with {type(result).__name__}, but only "
            "authorize, purchase and complete_action may ask for the customer's action"
        )
    return result


"""What an operation that may need the customer (authorize, purchase) returns."""


def result_to_json(result: AnyResult) -> str:
    """Serialise a result to JSON text (no card data is ever in a result)."""
    data: dict[str, Any] = {
        "operation": result.operation.value,
        "reference": result.reference,
        "amount_minor": result.amount.amount_minor,
        "currency": result.amount.currency.code,
        "provider": result.provider,
    }
    if isinstance(result, ActionRequired):
        data |= {
            "kind": "action_required",
            "action_type": result.action_type,
            "redirect_url": result.redirect_url,
            "client_secret": result.client_secret,
        }
    else:
        data |= {
            "kind": "result",
            "outcome": result.outcome.value,
            "status": result.status.value,
            "decline_code": None if result.decline_code is None else result.decline_code.value,
            "provider_code": result.provider_code,
            "operation_reference": result.operation_reference,
            "message": result.message,
        }
    return json.dumps(data, sort_keys=True, separators=(",", ":"))


def result_from_json(text: str) -> AnyResult:
    """Read back what :func:`result_to_json` wrote."""
    try:
        data = read_json(text, what="a stored payment result")
        amount = Money.from_minor(data["amount_minor"], data["currency"])
        operation = Operation(data["operation"])
        if data["kind"] == "action_required":
            return ActionRequired(
                operation=operation,
                reference=data["reference"],
                amount=amount,
                provider=data["provider"],
                action_type=data["action_type"],
                redirect_url=data["redirect_url"],
                client_secret=data["client_secret"],
            )
        code = data["decline_code"]
        return PaymentResult(
            operation=operation,
            outcome=Outcome(data["outcome"]),
            reference=data["reference"],
            amount=amount,
            status=PaymentState(data["status"]),
            provider=data["provider"],
            decline_code=None if code is None else DeclineCode(code),
            provider_code=data["provider_code"],
            operation_reference=data["operation_reference"],
            message=data["message"],
        )
    except (KeyError, TypeError, ValueError) as exc:
        raise InvalidInputError(f"a stored payment result is unreadable: {exc}") from exc
