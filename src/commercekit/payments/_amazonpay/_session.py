"""The Checkout Session as the gateway reads it: id, state, redirect, charge, amount.

Amazon's object also carries the buyer (name, e-mail, addresses): it stays in
:attr:`CheckoutSession.data`, out of ``repr``.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

import attrs

from commercekit.errors import OutcomeUnknownError
from commercekit.money import Money
from commercekit.payments._amazonpay._codes import price_money, state_of
from commercekit.payments._redact import redact_provider_text

__all__ = ["CheckoutSession"]

_ID = re.compile(r"[A-Za-z0-9._-]{1,128}")


@attrs.frozen
class CheckoutSession:
    """One Amazon Pay Checkout Session.

    *state* is ``Open``, ``Completed`` or ``Canceled`` (with *reason_code*);
    *redirect_url* is where to send the buyer to pay (``amazonPayRedirectUrl``,
    set once the session has an amount and a result URL and no constraints);
    *charge_id* and *charge_permission_id* are set once it is completed.
    """

    id: str
    state: str
    reason_code: str | None = None
    redirect_url: str | None = None
    payment_intent: str | None = None
    amount: Money | None = None
    charge_id: str | None = None
    charge_permission_id: str | None = None
    constraints: tuple[str, ...] = ()
    data: Mapping[str, Any] = attrs.field(factory=dict, repr=False, eq=False)

    @classmethod
    def from_wire(cls, body: Mapping[str, Any]) -> CheckoutSession:
        """Read Amazon's JSON object."""
        session_id = body.get("checkoutSessionId")
        if not isinstance(session_id, str) or not _ID.fullmatch(session_id):
            raise OutcomeUnknownError("Amazon Pay's answer names no readable checkoutSessionId")
        state, reason = state_of(body)
        web = body.get("webCheckoutDetails")
        details = body.get("paymentDetails")
        web = web if isinstance(web, Mapping) else {}
        details = details if isinstance(details, Mapping) else {}
        wire_amount = details.get("chargeAmount")
        constraints = body.get("constraints")
        return cls(
            id=session_id,
            state=state,
            reason_code=reason,
            redirect_url=_text(web.get("amazonPayRedirectUrl")),
            payment_intent=_text(details.get("paymentIntent")),
            amount=price_money(wire_amount, "checkout session") if wire_amount else None,
            charge_id=_id(body.get("chargeId")),
            charge_permission_id=_id(body.get("chargePermissionId")),
            constraints=tuple(
                redact_provider_text(str(c.get("constraintId")), limit=64)
                for c in (constraints if isinstance(constraints, list) else [])
                if isinstance(c, Mapping)
            ),
            data=dict(body),
        )


def _text(value: object) -> str | None:
    return value if isinstance(value, str) and value else None


def _id(value: object) -> str | None:
    return value if isinstance(value, str) and _ID.fullmatch(value) else None
