"""The payment state machine: one table of legal transitions and one ``transition()``.

A payment moves only along :data:`TRANSITIONS`; anything else raises
:class:`~commercekit.errors.InvalidStateError` naming the state, the event and
what is allowed. The table is pure data, so the rules are read and tested in
one place::

    created ──authorize──> authorized ──capture──> partially_captured ──capture──> captured
       │  └─purchase──────────────────────────────────────────────────────────────────┘
       ├──action─> requires_action ──(complete)──> authorized | captured | failed
       ├──decline─> failed            authorized ──void──> voided
       └──verify (a zero-amount check, released at once)──> voided
    captured | partially_captured ──refund──> partially_refunded ──refund──> refunded
"""

from __future__ import annotations

import enum
from collections.abc import Mapping
from types import MappingProxyType
from typing import Final

from commercekit.errors import InvalidStateError

__all__ = ["TRANSITIONS", "PaymentEvent", "PaymentState", "transition"]


class PaymentState(enum.Enum):
    """Where a payment stands, as the ledger and the provider agree it does."""

    CREATED = "created"
    REQUIRES_ACTION = "requires_action"
    AUTHORIZED = "authorized"
    PARTIALLY_CAPTURED = "partially_captured"
    CAPTURED = "captured"
    PARTIALLY_REFUNDED = "partially_refunded"
    REFUNDED = "refunded"
    VOIDED = "voided"
    FAILED = "failed"

    @property
    def is_terminal(self) -> bool:
        """True when no operation can move the payment on (refunded, voided, failed)."""
        return self in _TERMINAL

    @property
    def is_settled(self) -> bool:
        """True when no money is merely held: terminal, or captured in whole or part."""
        return self in _TERMINAL or self in _MONEY_MOVED


class PaymentEvent(enum.Enum):
    """What happened to a payment, as the ledger names it from a provider's answer."""

    AUTHORIZE = "authorize"
    PURCHASE = "purchase"
    ACTION_REQUIRED = "action_required"
    DECLINE = "decline"
    CAPTURE_PARTIAL = "capture_partial"
    CAPTURE_FULL = "capture_full"
    VOID = "void"
    REFUND_PARTIAL = "refund_partial"
    REFUND_FULL = "refund_full"
    VERIFY = "verify"


_S = PaymentState
_E = PaymentEvent
_TERMINAL: Final = frozenset({_S.REFUNDED, _S.VOIDED, _S.FAILED})
_MONEY_MOVED: Final = frozenset({_S.CAPTURED, _S.PARTIALLY_CAPTURED, _S.PARTIALLY_REFUNDED})
_STARTS: Final = {
    _E.AUTHORIZE: _S.AUTHORIZED,
    _E.PURCHASE: _S.CAPTURED,
    _E.ACTION_REQUIRED: _S.REQUIRES_ACTION,
    _E.DECLINE: _S.FAILED,
}
_REFUNDS: Final = {_E.REFUND_PARTIAL: _S.PARTIALLY_REFUNDED, _E.REFUND_FULL: _S.REFUNDED}
_CAPTURES: Final = {_E.CAPTURE_PARTIAL: _S.PARTIALLY_CAPTURED, _E.CAPTURE_FULL: _S.CAPTURED}

TRANSITIONS: Final[Mapping[PaymentState, Mapping[PaymentEvent, PaymentState]]] = MappingProxyType(
    {
        _S.CREATED: MappingProxyType({**_STARTS, _E.VERIFY: _S.VOIDED}),
        _S.REQUIRES_ACTION: MappingProxyType({**_STARTS, _E.VOID: _S.VOIDED}),
        _S.AUTHORIZED: MappingProxyType({**_CAPTURES, _E.VOID: _S.VOIDED}),
        _S.PARTIALLY_CAPTURED: MappingProxyType({**_CAPTURES, **_REFUNDS}),
        _S.CAPTURED: MappingProxyType(dict(_REFUNDS)),
        _S.PARTIALLY_REFUNDED: MappingProxyType(dict(_REFUNDS)),
        _S.REFUNDED: MappingProxyType({}),
        _S.VOIDED: MappingProxyType({}),
        _S.FAILED: MappingProxyType({}),
    }
)
"""For each state, the events it allows and the state each leads to. Nothing else is legal."""


def transition(state: PaymentState, event: PaymentEvent) -> PaymentState:
    """Return the state *event* moves *state* to.

    Raises:
        InvalidStateError: the table has no such move; the message names
            the state, the event and the events the state allows.
    """
    allowed = TRANSITIONS[state]
    target = allowed.get(event)
    if target is None:
        legal = ", ".join(e.value for e in allowed) or "nothing (the payment is final)"
        raise InvalidStateError(
            f"a payment that is {state.value} cannot take {event.value}; it allows {legal}"
        )
    return target
