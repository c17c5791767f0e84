"""Amazon Pay's vocabulary: object states, reason codes, and prices, on the standard set.

A Charge is ``AuthorizationInitiated`` (pending), ``Authorized``,
``CaptureInitiated``, ``Captured``, ``Canceled`` or ``Declined``; a Refund
``RefundInitiated``, ``Refunded`` or ``Declined``; a Checkout Session
``Open``, ``Completed`` or ``Canceled``. A decline or a cancellation names a
``reasonCode``; :data:`AMAZON_PAY_DECLINE_CODES` maps those onto
:class:`DeclineCode`, and the code itself is kept as the provider's word.
A 4xx refusal with a reason code (``TransactionAmountExceeded``,
``InvalidChargeStatus``...) is mapped the same way where it declines the
operation, and to :class:`InvalidStateError` where the object cannot take it.
"""

from __future__ import annotations

import contextlib
import re
from collections.abc import Mapping
from decimal import Decimal, InvalidOperation
from types import MappingProxyType
from typing import Any, Final

from commercekit.errors import CommerceKitError, InvalidStateError, OutcomeUnknownError
from commercekit.money import Money
from commercekit.payments._core._amounts import AmountRules
from commercekit.payments._core._results import DeclineCode
from commercekit.payments._redact import redact_provider_text

__all__ = [
    "AMAZON_PAY_AMOUNTS",
    "AMAZON_PAY_DECLINE_CODES",
    "REFUSED_AS_DECLINE",
    "decline_of",
    "price",
    "price_money",
    "refused_state",
    "state_of",
]

_D = DeclineCode
_WORD: Final = 64
_AMOUNT: Final = re.compile(r"[0-9]{1,15}(?:\.[0-9]{1,4})?", re.ASCII)
_CURRENCY: Final = re.compile(r"[A-Z]{3}", re.ASCII)
AMAZON_PAY_DECLINE_CODES: Final[Mapping[str, DeclineCode]] = MappingProxyType(
    {
        # a Charge or a Refund that was declined
        "SoftDeclined": _D.TRY_AGAIN_LATER,
        "HardDeclined": _D.CARD_DECLINED,
        "AmazonRejected": _D.FRAUD_SUSPECTED,
        "ProcessingFailure": _D.PROCESSING_ERROR,
        "TransactionTimedOut": _D.PROCESSING_ERROR,
        "PaymentMethodNotAllowed": _D.UNSUPPORTED,
        "MFAFailed": _D.AUTHENTICATION_FAILED,
        # a Checkout Session that was canceled
        "Declined": _D.CARD_DECLINED,
        "BuyerCanceled": _D.AUTHENTICATION_FAILED,
        "Expired": _D.TRY_AGAIN_LATER,
        "AmazonCanceled": _D.FRAUD_SUSPECTED,
        # a 4xx refusal of a capture, a refund or a charge
        "TransactionAmountExceeded": _D.INVALID_AMOUNT,
        "TransactionCountExceeded": _D.LIMIT_EXCEEDED,
        "AmountMismatch": _D.INVALID_AMOUNT,
        "CurrencyMismatch": _D.INVALID_AMOUNT,
        "CheckoutSessionCanceled": _D.CARD_DECLINED,
        "PeriodicAmountExceeded": _D.LIMIT_EXCEEDED,
    }
)
"""Amazon Pay's reason codes, mapped onto the standard set."""

REFUSED_AS_DECLINE: Final = frozenset(
    {
        "TransactionAmountExceeded",
        "TransactionCountExceeded",
        "AmountMismatch",
        "CurrencyMismatch",
        "PeriodicAmountExceeded",
        "SoftDeclined",
        "HardDeclined",
        "AmazonRejected",
        "ProcessingFailure",
    }
)
"""4xx reason codes that are an answer (a declined operation) rather than a wrong call."""


_MULTI_CURRENCY: Final = frozenset(
    {"AUD", "GBP", "DKK", "EUR", "HKD", "JPY", "NZD", "NOK", "ZAR", "SEK", "CHF", "USD"}
)
AMAZON_PAY_AMOUNTS: Final[Mapping[str, AmountRules]] = MappingProxyType(
    {
        "us": AmountRules(supported=frozenset({"USD"})),
        "jp": AmountRules(supported=frozenset({"JPY"})),
        "eu": AmountRules(supported=_MULTI_CURRENCY),  # EUR and GBP, and multi-currency
    }
)
"""The currencies Amazon Pay takes in each region, with their ISO 4217 decimals."""


def decline_of(reason_code: str | None) -> DeclineCode:
    """The standard code for an Amazon reason code (a plain decline when unknown)."""
    return AMAZON_PAY_DECLINE_CODES.get(reason_code or "", DeclineCode.CARD_DECLINED)


def price(amount: Money) -> dict[str, str]:
    """*amount* as Amazon's price object: ``{"amount": "12.34", "currencyCode": "USD"}``."""
    return {"amount": str(amount.amount), "currencyCode": amount.currency.code}


def price_money(wire: object, what: str) -> Money:
    """Read Amazon's price object back into Money.

    Raises:
        OutcomeUnknownError: the answer has no readable price (it cannot be
            trusted to say what moved; look the object up).
    """
    if isinstance(wire, Mapping):
        value, code = wire.get("amount"), wire.get("currencyCode")
        if (
            isinstance(value, str)
            and isinstance(code, str)
            and _AMOUNT.fullmatch(value)
            and _CURRENCY.fullmatch(code)
        ):
            with contextlib.suppress(InvalidOperation, ValueError, CommerceKitError):
                return Money.of(Decimal(value), code)
    raise OutcomeUnknownError(f"Amazon Pay's {what} names no readable amount; look it up")


def state_of(body: Mapping[str, Any]) -> tuple[str, str | None]:
    """``statusDetails.state`` and ``reasonCode`` of an object, redacted (they reach messages)."""
    details = body.get("statusDetails")
    if not isinstance(details, Mapping):
        return "", None
    reason = details.get("reasonCode")
    state = redact_provider_text(str(details.get("state") or ""), limit=_WORD)
    return state, redact_provider_text(str(reason), limit=_WORD) if reason else None


def refused_state(reason_code: str, what: str) -> InvalidStateError:
    """The error for a refusal that is not a decline: the object cannot take the call."""
    return InvalidStateError(
        f"Amazon Pay refused to {what} ({reason_code}): the object is not in a state "
        "that allows it; read it (get_charge, get_checkout_session) to see where it stands"
    )
