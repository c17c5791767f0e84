"""The money side of orders: capture, payment status moves, refunds, settling a cancel.

Every status change is one ``UPDATE ... WHERE id = :id AND <axis> = :seen``
in the same transaction as its side effects (stock released, lines
fulfilled, an event appended to the order's log, a money event to the
outbox): of two concurrent changes exactly one wins, and the loser gets an
:class:`InvalidTransitionError`. Payment calls (capture, void, refund) go to
:class:`PaymentService` with keys derived from the order, so a retried call
never moves money twice.
"""

from __future__ import annotations

import attrs
from sqlalchemy import bindparam, update

from commercekit.commerce._events import money_text
from commercekit.commerce._shared import check_id, rowcount
from commercekit.commerce.pricing import allocate_refund
from commercekit.errors import (
    InvalidInputError,
    InvalidStateError,
    InvalidTransitionError,
)
from commercekit.money import Money
from commercekit.payments import PaymentState
from commercekit.repository import UnitOfWork

from . import _tables as t
from ._base import OrdersBase
from ._model import Order
from ._status import OrderStatus, PaymentStatus, transition

__all__ = ["OrderPayments"]

_o = t.orders.c
_MOVE_PAYMENT = (  # built once: SQLAlchemy keys its cache once per statement
    update(t.orders)
    .where(_o.id == bindparam("b_id"), _o.payment_status == bindparam("b_from"))
    .values(payment_status=bindparam("b_to"), version=_o.version + 1, updated_at=bindparam("now"))
)
_MOVE_PAYMENT_CAPTURED = _MOVE_PAYMENT.values(captured_minor=bindparam("b_captured"))


class OrderPayments(OrdersBase):
    """Capture, refund and payment-status changes of orders (through PaymentService)."""

    # -- payment --------------------------------------------------------------------------

    def capture(self, order_id: str) -> Order:
        """Capture the order's authorized payment (at placement or at fulfilment); idempotent."""
        order = self.get(order_id)
        captured = self.capture_payment(order)
        if captured is None:
            return order  # captured already
        self._db.run(lambda uow: self.record_capture(uow, order, captured), retry=True)
        return self.get(order_id)

    def capture_payment(self, order: Order) -> int | None:
        """Capture *order*'s authorized payment at the provider; return the minor units taken.

        None when the order is captured already. The order's row is not changed:
        write the outcome with :meth:`record_capture`, in a unit of work of the
        caller's (the checkout's closing transaction). A retried call captures
        once (the key is derived from the order).
        """
        if order.status is OrderStatus.CANCELLED:
            raise InvalidTransitionError(
                f"order {order.number} is cancelled: its payment cannot be captured"
            )
        if order.payment_status is not PaymentStatus.AUTHORIZED:
            if order.payment_status is PaymentStatus.VOIDED:
                raise InvalidTransitionError(f"order {order.number}'s payment is voided")
            return None
        result = self._payments.capture(order.payment_id, idempotency_key=f"{order.id}:capture")
        if not result.approved:
            raise InvalidStateError(
                f"the capture of order {order.number} was declined ({result.decline_code})"
            )
        return result.amount.amount_minor

    def record_capture(self, uow: UnitOfWork, order: Order, captured_minor: int) -> Order:
        """Mark *order* paid with *captured_minor* in *uow* (compare-and-set); the order after.

        When another writer moved the payment status first, the order is read back.
        """
        if self._move_payment(order, PaymentStatus.PAID, captured=captured_minor, uow=uow):
            return attrs.evolve(
                order,
                payment_status=PaymentStatus.PAID,
                captured=Money.from_minor(captured_minor, order.total.currency),
                version=order.version + 1,
            )
        return self._read(uow.session, order.id)

    def _move_payment(
        self,
        order: Order,
        to: PaymentStatus,
        *,
        captured: int | None = None,
        uow: UnitOfWork | None = None,
    ) -> bool:
        transition(order.payment_status, to)
        params: dict[str, object] = {
            "b_id": order.id,
            "b_from": order.payment_status.value,
            "b_to": to.value,
            "now": self._clock(),
        }
        if captured is not None:
            params["b_captured"] = captured
        stmt = _MOVE_PAYMENT if captured is None else _MOVE_PAYMENT_CAPTURED

        def work(u: UnitOfWork) -> bool:
            moved = rowcount(u.session.execute(stmt, params))
            if moved:
                self._log(u.session, order.id, f"payment_{to.value}", {})
            return bool(moved)

        moved = work(uow) if uow is not None else self._db.run(work, retry=True).value
        if moved:
            self._m.count("order_transitions_total", "payment", to.value)
        return moved

    def refund(self, order_id: str, amount: Money, *, key: str) -> Order:
        """Refund *amount* of a paid order once per *key*, spread over its lines.

        No line ever gets back more than it was paid; the payment is refunded
        through :class:`PaymentService` with a key derived from the order and *key*.
        """
        check_id(key, "refund key")
        order = self.get(order_id)
        if any(e.kind == "refunded" and e.data.get("key") == key for e in self.events(order_id)):
            return order  # done already
        if order.payment_status not in (PaymentStatus.PAID, PaymentStatus.PARTIALLY_REFUNDED):
            raise InvalidTransitionError(
                f"order {order.number} is {order.payment_status.value}: nothing to refund"
            )
        if amount.currency != order.total.currency:
            raise InvalidInputError(f"order {order.number} is in {order.total.currency.code}")
        parts = allocate_refund(
            amount, [ln.gross for ln in order.lines], [ln.refunded for ln in order.lines]
        )
        if order.refunded + amount > order.captured:
            raise InvalidInputError(f"cannot refund {amount}: more than was captured")
        result = self._payments.refund(
            order.payment_id, amount, idempotency_key=f"{order_id}:refund:{key}"
        )
        if not result.approved:
            raise InvalidStateError(f"the refund of order {order.number} was declined")
        full = order.refunded + amount == order.captured
        to = PaymentStatus.REFUNDED if full else PaymentStatus.PARTIALLY_REFUNDED
        transition(order.payment_status, to)

        def work(uow: UnitOfWork) -> None:
            s = uow.session
            o, ol = t.orders.c, t.order_lines.c
            if not rowcount(
                s.execute(
                    update(t.orders)
                    .where(o.id == order_id, o.version == order.version)
                    .values(
                        payment_status=to.value,
                        refunded_minor=o.refunded_minor + amount.amount_minor,
                        version=o.version + 1,
                        updated_at=self._clock(),
                    )
                )
            ):
                raise InvalidTransitionError(f"order {order.number} changed meanwhile; retry")
            for line, part in zip(order.lines, parts, strict=True):
                if part.amount_minor:
                    s.execute(
                        update(t.order_lines)
                        .where(ol.order_id == order_id, ol.line_no == line.line_no)
                        .values(refunded_minor=ol.refunded_minor + part.amount_minor)
                    )
            self._log(s, order_id, "refunded", {"key": key, "amount_minor": amount.amount_minor})
            props = self._order_properties(order) | {"total": money_text(amount)}
            self._events.money(
                uow,
                "Order Refunded",
                f"{order_id}:{key}",
                props,
                customer_id=order.customer_id,
                anonymous_id=order.anonymous_id,
            )

        self._db.run(work)
        self._m.count("order_transitions_total", "payment", to.value)
        return self.get(order_id)

    def _settle_cancelled(self, order: Order) -> None:
        state = self._payments.payment(order.payment_id).state
        if order.payment_status is PaymentStatus.AUTHORIZED:
            if state in (PaymentState.AUTHORIZED, PaymentState.REQUIRES_ACTION):
                self._payments.void(order.payment_id, idempotency_key=f"{order.id}:void")
                self._move_payment(order, PaymentStatus.VOIDED)
                return
            if state is PaymentState.VOIDED:
                self._move_payment(order, PaymentStatus.VOIDED)
                return
            if state in (PaymentState.CAPTURED, PaymentState.PARTIALLY_CAPTURED):
                captured = self._payments.payment(order.payment_id).captured_minor
                self._move_payment(order, PaymentStatus.PAID, captured=captured)
                order = self.get(order.id)
        if order.payment_status in (PaymentStatus.PAID, PaymentStatus.PARTIALLY_REFUNDED):
            left = order.captured - order.refunded
            if left.amount_minor > 0:
                self.refund(order.id, left, key="cancel")
