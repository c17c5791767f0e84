"""The checkout saga's values: its steps, statuses, results and recovery report."""

from __future__ import annotations

import enum
from collections.abc import Callable
from typing import Final

import attrs

from commercekit.commerce.orders import Order
from commercekit.payments import ActionRequired

__all__ = [
    "STEPS",
    "CheckoutResult",
    "CheckoutStatus",
    "FaultHook",
    "Recovered",
]

STEPS: Final = ("snapshot", "reserve", "authorize", "place_order", "capture", "complete_cart")
"""The saga's steps, in order. Hooks are called before and after each."""

FaultHook = Callable[[str, str, str], None]
"""``hook(phase, step, checkout_id)``, phase ``"before"`` or ``"after"``: raise to fail a step."""


class CheckoutStatus(enum.Enum):
    """Where a checkout attempt is."""

    RUNNING = "running"
    ACTION_REQUIRED = "action_required"
    COMPLETED = "completed"
    FAILED = "failed"
    COMPENSATED = "compensated"


@attrs.frozen
class CheckoutResult:
    """What ``place`` and ``complete_action`` return.

    ``order`` once the order is placed; ``action`` when the customer must act
    (3-D Secure): send them to ``action.redirect_url``, then call
    ``complete_action(checkout_id)``. ``replayed`` is true when this call
    returned what an earlier submission of the same checkout did.
    """

    checkout_id: str
    status: CheckoutStatus
    order: Order | None = None
    action: ActionRequired | None = None
    replayed: bool = False


@attrs.frozen
class Recovered:
    """One stalled checkout that :meth:`Checkout.recover` finished: completed or compensated."""

    checkout_id: str
    outcome: str
