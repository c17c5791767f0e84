"""Amazon Pay's Charge, Refund and refusal answers as PaymentResults.

A Charge answers a capture when it is ``Captured`` (or ``CaptureInitiated``:
settled later), a cancel when it is ``Canceled``, a completed checkout or a
new charge when it is ``Authorized`` or captured; ``Declined`` is a decline
with its reason code. A Refund is approved when ``RefundInitiated`` or
``Refunded``. Anything else (``AuthorizationInitiated``, an unreadable id or
amount) is an :class:`OutcomeUnknownError`: its notification, or a lookup,
tells how it ends.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any, Final

from commercekit.errors import OutcomeUnknownError
from commercekit.money import Money
from commercekit.payments._amazonpay._codes import (
    REFUSED_AS_DECLINE,
    decline_of,
    price_money,
    refused_state,
    state_of,
)
from commercekit.payments._amazonpay._wire import AmazonPayRefusal
from commercekit.payments._core._results import (
    Operation,
    PaymentResult,
    approved_result,
    declined_result,
)
from commercekit.payments._core._state import PaymentState

__all__ = ["ID", "Outcomes"]

ID: Final = re.compile(r"[A-Za-z0-9._-]{1,128}")
"""What an Amazon Pay object id looks like (checked before it enters a result or a path)."""

_CAPTURED: Final = frozenset({"Captured", "CaptureInitiated"})
_REFUNDED: Final = frozenset({"Refunded", "RefundInitiated"})
_S = PaymentState
_ID = ID


class Outcomes:
    """Builds the results of one gateway (named *provider*) from Amazon's objects."""

    def __init__(self, provider: str) -> None:
        self._name = provider

    def charge_result(self, operation: Operation, charge: Mapping[str, Any]) -> PaymentResult:
        """The result of *operation* read from a Charge object."""
        charge_id = charge.get("chargeId")
        if not isinstance(charge_id, str) or not _ID.fullmatch(charge_id):
            raise OutcomeUnknownError("Amazon Pay's charge names no readable chargeId")
        state, reason = state_of(charge)
        permission = charge.get("chargePermissionId")
        readable = isinstance(permission, str) and _ID.fullmatch(permission)
        own = permission if readable and operation is not Operation.CAPTURE else None
        if operation is Operation.CAPTURE and state in _CAPTURED:
            moved = price_money(charge.get("captureAmount"), "capture")
            return self.approved(operation, charge_id, moved, _S.CAPTURED)
        charged = price_money(charge.get("chargeAmount"), "charge")
        if state == "Declined":
            return self.declined(operation, charge_id, charged, reason)
        if operation is Operation.VOID and state == "Canceled":
            return self.approved(operation, charge_id, charged, _S.VOIDED)
        if operation is not Operation.CAPTURE and state in _CAPTURED:
            return self.approved(
                operation, charge_id, charged, _S.CAPTURED, operation_reference=own
            )
        if operation is not Operation.CAPTURE and state == "Authorized":
            return self.approved(
                operation, charge_id, charged, _S.AUTHORIZED, operation_reference=own
            )
        raise OutcomeUnknownError(
            f"Amazon Pay answered {operation.value} of charge {charge_id} with state "
            f"{state or 'none'!r}; its notification will tell how it ends"
        )

    def refused(
        self, exc: AmazonPayRefusal, operation: Operation, reference: str, amount: Money, verb: str
    ) -> PaymentResult:
        """A decline for a refusal that declines the operation; raise for a state refusal."""
        if exc.reason_code in REFUSED_AS_DECLINE:
            return self.declined(operation, reference, amount, exc.reason_code)
        raise refused_state(exc.reason_code, f"{verb} on {reference}") from None

    def approved(
        self,
        operation: Operation,
        reference: str,
        amount: Money,
        status: PaymentState,
        *,
        operation_reference: str | None = None,
    ) -> PaymentResult:
        """An approved result."""
        return approved_result(
            self._name,
            operation,
            reference,
            amount,
            status,
            operation_reference=operation_reference,
        )

    def declined(
        self, operation: Operation, reference: str, amount: Money, reason: str | None
    ) -> PaymentResult:
        """A declined result with Amazon's reason code on the standard set."""
        return declined_result(self._name, operation, reference, amount, decline_of(reason), reason)

    def refund_result(self, reference: str, refund: Mapping[str, Any]) -> PaymentResult:
        """The result of a Refund object made on Charge *reference*."""
        state, reason = state_of(refund)
        moved = price_money(refund.get("refundAmount"), "refund")
        if state in _REFUNDED:
            own = refund.get("refundId")
            return self.approved(
                Operation.REFUND,
                reference,
                moved,
                _S.PARTIALLY_REFUNDED,
                operation_reference=own if isinstance(own, str) and _ID.fullmatch(own) else None,
            )
        if state == "Declined":
            return self.declined(Operation.REFUND, reference, moved, reason)
        raise OutcomeUnknownError(f"Amazon Pay answered a refund with state {state or 'none'!r}")
