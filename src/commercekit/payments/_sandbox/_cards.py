"""The sandbox's test cards and tokens: which number gets which answer.

=====================  ==========================================
card number            answer
=====================  ==========================================
4242 4242 4242 4242    approved (any brand's approved test cards too)
4000 0000 0000 0002    declined: card_declined
4000 0000 0000 9995    declined: insufficient_funds
4000 0000 0000 0069    declined: expired_card
4000 0000 0000 0127    declined: incorrect_cvc
4000 0000 0000 0119    declined: processing_error
4000 0000 0000 3220    3-D Secure required (:meth:`SandboxGateway.authenticate` answers it)
4000 0000 0000 0093    approved, then the answer is lost (a timeout after the charge)
=====================  ==========================================

Any other valid number is approved. Provider tokens in Stripe's style
(``pm_card_visa``, ``pm_card_chargeDeclined``,
``pm_card_threeDSecureRequired``) pick answers too.
"""

from __future__ import annotations

from typing import Final

from commercekit.payments._card import ProviderToken
from commercekit.payments._core._results import DeclineCode
from commercekit.payments._typing import PaymentSource

__all__ = [
    "APPROVED",
    "SANDBOX_CARDS",
    "THREE_D_SECURE",
    "TIMEOUT_AFTER_CHARGE",
    "card_behaviour",
    "source_id",
]

APPROVED: Final = "approved"
THREE_D_SECURE: Final = "three_d_secure"
TIMEOUT_AFTER_CHARGE: Final = "timeout_after_charge"

SANDBOX_CARDS: Final[dict[str, str]] = {
    "4242424242424242": APPROVED,
    "5555555555554444": APPROVED,
    "378282246310005": APPROVED,
    "4000000000000002": DeclineCode.CARD_DECLINED.value,
    "4000000000009995": DeclineCode.INSUFFICIENT_FUNDS.value,
    "4000000000000069": DeclineCode.EXPIRED_CARD.value,
    "4000000000000127": DeclineCode.INCORRECT_CVC.value,
    "4000000000000119": DeclineCode.PROCESSING_ERROR.value,
    "4000000000003220": THREE_D_SECURE,
    "4000000000000093": TIMEOUT_AFTER_CHARGE,
}
"""Test card numbers and what the sandbox answers; other valid numbers are approved."""

_TOKENS: Final = {
    "pm_card_visa": APPROVED,
    "pm_card_chargeDeclined": DeclineCode.CARD_DECLINED.value,
    "pm_card_threeDSecureRequired": THREE_D_SECURE,
}


def card_behaviour(source: PaymentSource) -> str:
    """What the sandbox does with *source*: ``APPROVED``, a decline code's value, or a special."""
    if isinstance(source, ProviderToken):
        return _TOKENS.get(source.value, APPROVED)
    return SANDBOX_CARDS.get(source.number.reveal(), APPROVED)


def source_id(source: PaymentSource) -> str:
    """How the sandbox tells sources apart for its idempotency check (no full number)."""
    if isinstance(source, ProviderToken):
        return source.value
    return source.number.masked + f"{source.exp_month:02d}{source.exp_year}"
