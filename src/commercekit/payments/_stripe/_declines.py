"""Stripe's decline vocabulary mapped onto the standard :class:`DeclineCode` set.

Stripe names a decline in ``decline_code`` (the issuer's reason) or, failing
that, in ``code``; anything not listed here is a plain ``card_declined``.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Final

from commercekit.payments._core._results import DeclineCode
from commercekit.payments._redact import redact_provider_text

__all__ = ["STRIPE_DECLINE_CODES", "decline"]

STRIPE_DECLINE_CODES: Final[Mapping[str, DeclineCode]] = {
    "card_declined": DeclineCode.CARD_DECLINED,
    "generic_decline": DeclineCode.CARD_DECLINED,
    "do_not_honor": DeclineCode.CARD_DECLINED,
    "insufficient_funds": DeclineCode.INSUFFICIENT_FUNDS,
    "expired_card": DeclineCode.EXPIRED_CARD,
    "incorrect_cvc": DeclineCode.INCORRECT_CVC,
    "invalid_cvc": DeclineCode.INCORRECT_CVC,
    "incorrect_number": DeclineCode.INCORRECT_NUMBER,
    "invalid_number": DeclineCode.INCORRECT_NUMBER,
    "invalid_expiry_month": DeclineCode.INVALID_EXPIRY_DATE,
    "invalid_expiry_year": DeclineCode.INVALID_EXPIRY_DATE,
    "incorrect_zip": DeclineCode.INCORRECT_ZIP,
    "processing_error": DeclineCode.PROCESSING_ERROR,
    "call_issuer": DeclineCode.CALL_ISSUER,
    "pickup_card": DeclineCode.PICKUP_CARD,
    "lost_card": DeclineCode.PICKUP_CARD,
    "stolen_card": DeclineCode.PICKUP_CARD,
    "fraudulent": DeclineCode.FRAUD_SUSPECTED,
    "authentication_required": DeclineCode.AUTHENTICATION_FAILED,
    "payment_intent_authentication_failure": DeclineCode.AUTHENTICATION_FAILED,
    "setup_intent_authentication_failure": DeclineCode.AUTHENTICATION_FAILED,
    "card_velocity_exceeded": DeclineCode.LIMIT_EXCEEDED,
    "withdrawal_count_limit_exceeded": DeclineCode.LIMIT_EXCEEDED,
    "amount_too_large": DeclineCode.INVALID_AMOUNT,
    "amount_too_small": DeclineCode.INVALID_AMOUNT,
    "card_not_supported": DeclineCode.UNSUPPORTED,
    "currency_not_supported": DeclineCode.UNSUPPORTED,
    "try_again_later": DeclineCode.TRY_AGAIN_LATER,
}
"""Stripe's ``decline_code`` and ``code`` values, mapped onto the standard set."""


def decline(error: Mapping[str, Any] | None) -> tuple[DeclineCode, str]:
    """The standard code and Stripe's own word (redacted) for the ``error`` object *error*."""
    error = error or {}
    raw = redact_provider_text(
        error.get("decline_code") or error.get("code") or "card_declined", limit=64
    )
    return STRIPE_DECLINE_CODES.get(raw, DeclineCode.CARD_DECLINED), raw
