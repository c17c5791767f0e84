"""Adyen's vocabulary: its currency exponents and its refusal reasons on the standard set.

Adyen writes amounts in minor units with its own exponents where they differ
from ISO 4217: CLP and ISK with two decimals (ISO: none), CVE and IDR with
none (ISO: two). A refused payment comes back as HTTP 200 with ``resultCode``
``Refused`` (or ``Error``, ``Cancelled``) and ``refusalReasonCode`` /
``refusalReason``; :data:`ADYEN_REFUSAL_CODES` maps the codes onto
:class:`DeclineCode`, and the reason text is kept as the provider's own word.
"""

from __future__ import annotations

from collections.abc import Mapping
from types import MappingProxyType
from typing import Any, Final

from commercekit.payments._core._amounts import AmountRules
from commercekit.payments._core._results import DeclineCode
from commercekit.payments._redact import redact_provider_text

__all__ = ["ADYEN_AMOUNTS", "ADYEN_REFUSAL_CODES", "refusal"]

ADYEN_AMOUNTS: Final = AmountRules(exponents={"CLP": 2, "ISK": 2, "CVE": 0, "IDR": 0})
"""Adyen's currency exponents where they differ from ISO 4217 (its currency-codes table)."""

_D = DeclineCode
_TABLE: Final = (
    ("2", "Refused", _D.CARD_DECLINED),
    ("3", "Referral", _D.CALL_ISSUER),
    ("4", "Acquirer Error", _D.PROCESSING_ERROR),
    ("5", "Blocked Card", _D.PICKUP_CARD),
    ("6", "Expired Card", _D.EXPIRED_CARD),
    ("7", "Invalid Amount", _D.INVALID_AMOUNT),
    ("8", "Invalid Card Number", _D.INCORRECT_NUMBER),
    ("9", "Issuer Unavailable", _D.TRY_AGAIN_LATER),
    ("10", "Not supported", _D.UNSUPPORTED),
    ("11", "3D Not Authenticated", _D.AUTHENTICATION_FAILED),
    ("12", "Not enough balance", _D.INSUFFICIENT_FUNDS),
    ("14", "Acquirer Fraud", _D.FRAUD_SUSPECTED),
    ("15", "Cancelled", _D.CARD_DECLINED),
    ("16", "Shopper Cancelled", _D.CARD_DECLINED),
    ("17", "Invalid Pin", _D.CARD_DECLINED),
    ("18", "Pin tries exceeded", _D.LIMIT_EXCEEDED),
    ("19", "Pin validation not possible", _D.PROCESSING_ERROR),
    ("20", "FRAUD", _D.FRAUD_SUSPECTED),
    ("21", "Not Submitted", _D.PROCESSING_ERROR),
    ("22", "FRAUD-CANCELLED", _D.FRAUD_SUSPECTED),
    ("23", "Transaction Not Permitted", _D.UNSUPPORTED),
    ("24", "CVC Declined", _D.INCORRECT_CVC),
    ("25", "Restricted Card", _D.CARD_DECLINED),
    ("26", "Revocation Of Auth", _D.CARD_DECLINED),
    ("27", "Declined Non Generic", _D.CARD_DECLINED),
    ("28", "Withdrawal amount exceeded", _D.LIMIT_EXCEEDED),
    ("29", "Withdrawal count exceeded", _D.LIMIT_EXCEEDED),
    ("31", "Issuer Suspected Fraud", _D.FRAUD_SUSPECTED),
    ("32", "AVS Declined", _D.INCORRECT_ZIP),
    ("38", "Authentication required", _D.AUTHENTICATION_FAILED),
    ("42", "3DS Authentication Error", _D.AUTHENTICATION_FAILED),
)

ADYEN_REFUSAL_CODES: Final[Mapping[str, DeclineCode]] = MappingProxyType(
    {code: decline for code, _, decline in _TABLE}
)
"""Adyen's ``refusalReasonCode`` values, mapped onto the standard set."""

_BY_REASON: Final = {reason.lower(): decline for _, reason, decline in _TABLE}


def refusal(response: Mapping[str, Any]) -> tuple[DeclineCode, str]:
    """The standard code, and Adyen's own word, for a refused or failed *response*.

    The ``refusalReasonCode`` decides; failing that the ``refusalReason``
    text; an ``Error`` result with neither is a processing error, anything
    else a plain decline.
    """
    code = str(response.get("refusalReasonCode") or "")
    reason = redact_provider_text(
        response.get("refusalReason") or response.get("resultCode") or "Refused", limit=64
    )
    found = ADYEN_REFUSAL_CODES.get(code) or _BY_REASON.get(reason.lower())
    if found is None:
        error = response.get("resultCode") == "Error"
        found = DeclineCode.PROCESSING_ERROR if error else DeclineCode.CARD_DECLINED
    return found, reason
