"""What the sandbox keeps: its own view of each payment, and each operation by key."""

from __future__ import annotations

import attrs

from commercekit.errors import InvalidInputError
from commercekit.money import Currency, Money
from commercekit.payments._core._results import AnyResult, DeclineCode
from commercekit.payments._core._state import PaymentState

__all__ = ["Charge", "Logged"]


@attrs.define
class Charge:
    """One payment as the sandbox holds it (amounts in minor units)."""

    reference: str
    currency: Currency
    authorized: int
    status: PaymentState
    behaviour: str
    captured: int = 0
    refunded: int = 0
    captures: int = 0
    capture_on_action: bool = False
    authenticated: bool | None = None
    decline: DeclineCode | None = None

    def check_currency(self, amount: Money) -> None:
        """Refuse *amount* in another currency than the payment's."""
        if amount.currency != self.currency:
            raise InvalidInputError(
                f"sandbox: payment {self.reference} is in {self.currency.code}, not "
                f"{amount.currency.code}"
            )


@attrs.frozen
class Logged:
    """One operation the sandbox carried out, under its idempotency key."""

    key: str
    fingerprint: tuple[object, ...]
    result: AnyResult
