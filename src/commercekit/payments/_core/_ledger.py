"""The ledger of one payment: what was authorized, captured and refunded, and its state.

:meth:`Payment.check` runs before the provider is called and refuses what the
state table or the amounts forbid (capturing more than was authorized,
refunding more than was captured, a second capture where the provider allows
one, another currency), so a bad request changes nothing anywhere.
:meth:`Payment.apply` folds a provider's answer in. A payment is rebuilt by
folding its recorded results in order (:meth:`Payment.replay`), so the ledger
is never stored apart from the operations that made it.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import attrs

from commercekit.errors import CurrencyMismatchError, InvalidInputError, InvalidStateError
from commercekit.money import Currency, Money
from commercekit.payments._core._results import (
    AnyResult,
    Operation,
    Outcome,
    final_result,
)
from commercekit.payments._core._state import TRANSITIONS, PaymentEvent, PaymentState, transition

__all__ = ["Payment"]

_STARTING = frozenset({Operation.AUTHORIZE, Operation.PURCHASE, Operation.VERIFY})
_EVENTS_OF = {
    Operation.CAPTURE: (PaymentEvent.CAPTURE_PARTIAL, PaymentEvent.CAPTURE_FULL),
    Operation.REFUND: (PaymentEvent.REFUND_PARTIAL, PaymentEvent.REFUND_FULL),
    Operation.VOID: (PaymentEvent.VOID,),
    Operation.COMPLETE_ACTION: (PaymentEvent.AUTHORIZE, PaymentEvent.PURCHASE),
}


@attrs.frozen
class Payment:
    """One payment as the ledger sees it. Amounts are minor units of :attr:`currency`."""

    payment_id: str
    state: PaymentState = PaymentState.CREATED
    currency: Currency | None = None
    authorized_minor: int = 0
    captured_minor: int = 0
    refunded_minor: int = 0
    captures: int = 0
    refunds: int = 0
    reference: str | None = None
    provider: str | None = None

    @classmethod
    def replay(cls, payment_id: str, results: Iterable[AnyResult]) -> Payment:
        """Rebuild a payment by applying its recorded results in order."""
        payment = cls(payment_id)
        for result in results:
            payment = payment.apply(result)
        return payment

    def _money(self, minor: int) -> Money:
        if self.currency is None:
            raise InvalidStateError(f"payment {self.payment_id!r} has no currency yet")
        return Money.from_minor(minor, self.currency)

    @property
    def capturable(self) -> Money | None:
        """What may still be captured (None before an authorization)."""
        if self.currency is None:
            return None
        return self._money(self.authorized_minor - self.captured_minor)

    @property
    def refundable(self) -> Money | None:
        """What may still be refunded (None before an authorization)."""
        if self.currency is None:
            return None
        return self._money(self.captured_minor - self.refunded_minor)

    def check(
        self, operation: Operation, amount: Money | None, *, multiple_captures: bool = True
    ) -> None:
        """Refuse *operation* of *amount* when the state or the amounts forbid it.

        Raises:
            InvalidStateError: the state does not allow the operation (a
                capture of a voided payment, a second capture where the
                provider allows one).
            InvalidInputError: a zero or negative amount, or more than can be
                captured or refunded.
            CurrencyMismatchError: *amount* is in another currency.
        """
        if operation in _STARTING:
            if self.state is not PaymentState.CREATED:
                raise InvalidStateError(
                    f"payment {self.payment_id!r} is already {self.state.value}; "
                    f"{operation.value} starts a payment, so use a new payment id"
                )
            if operation is not Operation.VERIFY:
                _positive(amount, operation)
            return
        events = _EVENTS_OF[operation]
        if not any(event in TRANSITIONS[self.state] for event in events):
            allowed = ", ".join(e.value for e in TRANSITIONS[self.state]) or "nothing"
            raise InvalidStateError(
                f"cannot {operation.value} payment {self.payment_id!r}: it is "
                f"{self.state.value}, which allows {allowed}"
            )
        if operation is Operation.CAPTURE:
            if self.captures and not multiple_captures:
                raise InvalidStateError(
                    f"cannot capture payment {self.payment_id!r} again: the provider allows "
                    "one capture per authorization, and the rest was released"
                )
            self._within(amount, self.authorized_minor - self.captured_minor, "capture", "left")
        elif operation is Operation.REFUND:
            self._within(amount, self.captured_minor - self.refunded_minor, "refund", "refundable")

    def _within(self, amount: Money | None, limit_minor: int, verb: str, what: str) -> None:
        _positive(amount, Operation(verb))
        if amount is None or self.currency is None:
            raise InvalidStateError(
                f"cannot {verb} payment {self.payment_id!r}: no amount or no currency yet"
            )
        if amount.currency != self.currency:
            raise CurrencyMismatchError(
                f"cannot {verb} {amount} on payment {self.payment_id!r}, "
                f"which is in {self.currency.code}"
            )
        if amount.amount_minor > limit_minor:
            raise InvalidInputError(
                f"cannot {verb} {amount} on payment {self.payment_id!r}: only "
                f"{self._money(limit_minor)} is {what}"
            )

    def apply(self, result: AnyResult) -> Payment:
        """Return the payment after the provider's *result*."""
        event = self._event(result)
        if event is None:
            return self
        state = transition(self.state, event)
        minor = result.amount.amount_minor
        changes: dict[str, Any] = {"state": state}
        if event in (PaymentEvent.AUTHORIZE, PaymentEvent.PURCHASE):
            changes |= {
                "currency": result.amount.currency,
                "authorized_minor": minor,
                "reference": result.reference,
                "provider": result.provider,
            }
            if event is PaymentEvent.PURCHASE:
                changes |= {"captured_minor": minor, "captures": 1}
        elif event in (PaymentEvent.ACTION_REQUIRED, PaymentEvent.DECLINE, PaymentEvent.VERIFY):
            changes |= {
                "currency": result.amount.currency,
                "reference": result.reference,
                "provider": result.provider,
            }
        elif event in (PaymentEvent.CAPTURE_PARTIAL, PaymentEvent.CAPTURE_FULL):
            changes |= {
                "captured_minor": self.captured_minor + minor,
                "captures": self.captures + 1,
            }
        elif event in (PaymentEvent.REFUND_PARTIAL, PaymentEvent.REFUND_FULL):
            changes |= {"refunded_minor": self.refunded_minor + minor, "refunds": self.refunds + 1}
        return attrs.evolve(self, **changes)

    def _event(self, result: AnyResult) -> PaymentEvent | None:
        op = result.operation
        if result.outcome is Outcome.ACTION_REQUIRED:
            return PaymentEvent.ACTION_REQUIRED
        result = final_result(result, op)
        if result.outcome is Outcome.DECLINED:
            starting = op in _STARTING or op is Operation.COMPLETE_ACTION
            if op is Operation.VERIFY or starting:
                return PaymentEvent.DECLINE
            return None  # a declined capture, refund or void leaves the payment as it was
        if op is Operation.VERIFY:
            return PaymentEvent.VERIFY
        if op is Operation.AUTHORIZE:
            return PaymentEvent.AUTHORIZE
        if op is Operation.PURCHASE:
            return PaymentEvent.PURCHASE
        if op is Operation.COMPLETE_ACTION:
            if result.status is PaymentState.FAILED:
                return PaymentEvent.DECLINE
            if result.status is PaymentState.CAPTURED:
                return PaymentEvent.PURCHASE
            return PaymentEvent.AUTHORIZE
        if op is Operation.VOID:
            return PaymentEvent.VOID
        minor = result.amount.amount_minor
        if op is Operation.CAPTURE:
            full = self.captured_minor + minor >= self.authorized_minor
            return PaymentEvent.CAPTURE_FULL if full else PaymentEvent.CAPTURE_PARTIAL
        full = self.refunded_minor + minor >= self.captured_minor
        return PaymentEvent.REFUND_FULL if full else PaymentEvent.REFUND_PARTIAL


def _positive(amount: Money | None, operation: Operation) -> None:
    if amount is None:
        raise InvalidInputError(f"{operation.value} needs an amount")
    if amount.amount_minor <= 0:
        raise InvalidInputError(
            f"{operation.value} needs a positive amount, not {amount}; "
            "to check a card without charging it, use verify()"
        )
