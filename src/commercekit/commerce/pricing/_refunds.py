"""Spreading a partial refund over an order's lines without losing or inventing a minor unit."""

from __future__ import annotations

from collections.abc import Sequence

from commercekit.errors import CurrencyMismatchError, InvalidInputError
from commercekit.money import Money

__all__ = ["allocate_refund"]


def allocate_refund(
    amount: Money, paid: Sequence[Money], refunded: Sequence[Money] | None = None
) -> tuple[Money, ...]:
    """Split *amount* over lines in proportion to what each can still refund.

    *paid* is what each line was paid (gross); *refunded* what each has had back
    already. The parts add up to *amount* exactly (largest remainder, through
    :meth:`Money.allocate`), and no line gets back more than it has left.
    """
    if not paid:
        raise InvalidInputError("a refund needs at least one line")
    done = list(refunded) if refunded is not None else [Money.zero(amount.currency)] * len(paid)
    if len(done) != len(paid):
        raise InvalidInputError("paid and refunded list the same lines")
    for m in (*paid, *done):
        if m.currency != amount.currency:
            raise CurrencyMismatchError(
                f"a line is in {m.currency.code}, the refund in {amount.currency.code}"
            )
    left = [p.amount_minor - r.amount_minor for p, r in zip(paid, done, strict=True)]
    if min(left) < 0:
        raise InvalidInputError("a line has had more back than it was paid")
    if amount.amount_minor <= 0:
        raise InvalidInputError(f"a refund is positive, not {amount}")
    if amount.amount_minor > sum(left):
        raise InvalidInputError(
            f"cannot refund {amount}: only {Money.from_minor(sum(left), amount.currency)} is left"
        )
    return amount.allocate(left)
