"""What a refund of an order pays back: goods spread over the lines, and shipping.

Pure: the plan is decided from the order as read, before anything is written,
so a refund that asks too much is refused with nothing changed. An order's
shipping is what its total holds beyond its lines (``total - sum(line
gross)``: the shipping fee with its tax, as the quote priced it), and the
shipping refunded so far is what its refunds hold beyond its lines'
(``refunded - sum(line refunded)``); both come from the columns every order
already has.
"""

from __future__ import annotations

import attrs

from commercekit.commerce.pricing import allocate_refund
from commercekit.errors import CurrencyMismatchError, InvalidInputError, InvalidTransitionError
from commercekit.money import Money

from ._model import Order
from ._status import PaymentStatus

__all__ = ["RefundPlan", "plan_refund"]

REFUNDABLE = (PaymentStatus.PAID, PaymentStatus.PARTIALLY_REFUNDED)


@attrs.frozen
class RefundPlan:
    """One refund: *lines* (one part per order line, in line order) plus *shipping*."""

    amount: Money
    lines: tuple[Money, ...]
    shipping: Money


def _check(order: Order, what: str, money: Money) -> Money:
    if money.currency != order.total.currency:
        raise CurrencyMismatchError(
            f"order {order.number} is in {order.total.currency.code}, {what} in "
            f"{money.currency.code}"
        )
    if money.amount_minor <= 0:
        raise InvalidInputError(f"{what} to refund is positive, not {money}")
    return money


def plan_refund(order: Order, goods: Money | None, shipping: bool | Money) -> RefundPlan:
    """Plan a refund of *goods* (over the lines) and *shipping* of *order*, or raise.

    *goods* None and *shipping* False: everything still captured (lines and
    shipping; of a partial capture, what it holds, spread over both in
    proportion to what each has left). *shipping* True: all the shipping left; a Money: that much of
    it. Asking more than a line, the shipping or the capture has left is
    :class:`InvalidInputError`; an order that is not paid,
    :class:`InvalidTransitionError`.
    """
    if order.payment_status not in REFUNDABLE:
        raise InvalidTransitionError(
            f"order {order.number} is {order.payment_status.value}: nothing to refund"
        )
    zero = Money.zero(order.total.currency)
    lines_left = sum((ln.gross - ln.refunded for ln in order.lines), zero)
    ship_left = order.shipping_paid - order.shipping_refunded
    if goods is None and shipping is False:  # a full refund: what is left of both ...
        capture_left = order.captured - order.refunded
        if zero < capture_left < lines_left + ship_left:  # ... that the capture holds
            parts = capture_left.allocate(
                [(ln.gross - ln.refunded).amount_minor for ln in order.lines]
                + [ship_left.amount_minor]
            )
            return RefundPlan(capture_left, parts[:-1], parts[-1])
        goods_part, ship_part = lines_left, ship_left
    else:
        goods_part = zero if goods is None else _check(order, "the goods", goods)
        if shipping is True:
            ship_part = ship_left
        elif shipping is False:
            ship_part = zero
        else:
            ship_part = _check(order, "the shipping", shipping)
        if goods_part > lines_left:
            raise InvalidInputError(
                f"cannot refund {goods_part} of goods on order {order.number}: only "
                f"{lines_left} is left on its lines ({ship_left} of shipping: pass shipping=)"
            )
        if ship_part > ship_left:
            raise InvalidInputError(
                f"cannot refund {ship_part} of shipping on order {order.number}: "
                f"{order.shipping_paid} was paid, {ship_left} is left"
            )
    amount = goods_part + ship_part
    if not amount.amount_minor:
        raise InvalidInputError(f"order {order.number} has nothing left to refund")
    if order.refunded + amount > order.captured:
        raise InvalidInputError(
            f"cannot refund {amount} on order {order.number}: "
            f"only {order.captured - order.refunded} of the capture is left"
        )
    if goods_part.amount_minor:
        parts = allocate_refund(
            goods_part, [ln.gross for ln in order.lines], [ln.refunded for ln in order.lines]
        )
    else:
        parts = tuple(zero for _ in order.lines)
    return RefundPlan(amount, parts, ship_part)
