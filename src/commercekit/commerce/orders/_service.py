"""``Orders``: orders with three status axes, compare-and-set transitions and an event log.

Every status change is one ``UPDATE ... WHERE id = :id AND <axis> = :seen``
in the same transaction as its side effects (stock released, lines
fulfilled, an event appended to the order's log, a money event to the
outbox): of two concurrent changes exactly one wins, and the loser gets an
:class:`InvalidTransitionError`. Payment calls (capture, void, refund) go to
:class:`PaymentService` with keys derived from the order, so a retried call
never moves money twice.
"""

from __future__ import annotations

import decimal
from collections.abc import Callable, Mapping
from fractions import Fraction
from typing import Any, cast

from sqlalchemy import update
from sqlalchemy.orm import Session

from commercekit.commerce._shared import check_id, check_quantity, new_id, rowcount
from commercekit.errors import (
    InvalidInputError,
    InvalidTransitionError,
)
from commercekit.money import Money
from commercekit.repository import UnitOfWork

from . import _tables as t
from ._base import order_from_rows, order_number
from ._model import Order, OrderLine
from ._payments import OrderPayments
from ._refunds import REFUNDABLE, plan_refund
from ._status import FulfilmentStatus, OrderStatus, PaymentStatus, transition

__all__ = ["Orders"]

_INSERT_ORDER = t.orders.insert()  # built once: SQLAlchemy keys its cache once
_INSERT_LINES = t.order_lines.insert()


class Orders(OrderPayments):
    """The order service. See the module docstring."""

    # -- placing --------------------------------------------------------------------------

    def create(
        self,
        uow: UnitOfWork,
        *,
        checkout_key: str,
        customer_id: str | None,
        quote: Mapping[str, Any],
        payment_id: str,
        reservation_id: str,
        anonymous_id: str | None = None,
    ) -> Order:
        """Create an order in the caller's unit of work (the checkout's placement transaction).

        *quote* is a pricing snapshot (:meth:`Quote.snapshot`). The checkout key
        is unique: a second order for one checkout is a :class:`DuplicateError`
        when the unit of work ends, as is (once in 2**40 pairs) a drawn order
        number that is taken: when :meth:`by_checkout` finds no order, run the
        unit of work again and a new number is drawn.
        *anonymous_id* (a guest's analytics id) is kept on the order and carried
        by its money events beside the customer id.
        """
        s = uow.session
        order_id = new_id()
        now = self._clock()
        code = str(quote["currency"])
        row = {
            "id": order_id,
            "checkout_key": checkout_key,
            "customer_id": customer_id,
            "anonymous_id": anonymous_id,
            "currency": code,
            "status": OrderStatus.PLACED.value,
            "payment_status": PaymentStatus.AUTHORIZED.value,
            "fulfilment_status": FulfilmentStatus.UNFULFILLED.value,
            "subtotal_minor": quote["subtotal_minor"],
            "discount_minor": quote["discount_minor"],
            "shipping_minor": quote["shipping_minor"],
            "tax_minor": quote["tax_minor"],
            "total_minor": quote["total_minor"],
            "captured_minor": 0,
            "refunded_minor": 0,
            "payment_id": payment_id,
            "reservation_id": reservation_id,
            "voucher": quote.get("voucher"),
            "version": 1,
            "created_at": now,
            "updated_at": now,
        }
        row["number"] = order_number()
        # No savepoint around it (one round trip less per order): a collision of the
        # checkout key, or of the number (1 in 2**40 per pair), fails the unit of work
        # with DuplicateError; the caller looks which it was and runs it again.
        s.execute(_INSERT_ORDER, row)
        lines = [
            {
                "order_id": order_id,
                "line_no": i,
                "sku": ln["sku"],
                "qty": ln["qty"],
                "unit_price_minor": ln["unit_price_minor"],
                "discount_minor": ln["discount_minor"],
                "tax_minor": ln["tax_minor"],
                "gross_minor": ln["gross_minor"],
                "fulfilled": 0,
                "returned": 0,
                "refunded_minor": 0,
            }
            for i, ln in enumerate(quote["lines"], start=1)
        ]
        s.execute(_INSERT_LINES, lines)
        self._log(s, order_id, "placed", {"checkout_key": checkout_key})
        # The order as written, built from what was inserted (no read back).
        order = order_from_rows(row, lines)
        self._events.money(
            uow,
            "Order Completed",
            order_id,
            self._order_properties(order, s),
            customer_id=order.customer_id,
            anonymous_id=anonymous_id,
        )
        self._m.count("order_transitions_total", "order", OrderStatus.PLACED.value)
        return order

    # -- cancelling -----------------------------------------------------------------------

    def cancel(self, order_id: str, *, reason: str = "customer") -> Order:
        """Cancel an unfulfilled order: stock goes back once, the payment is voided or refunded.

        A paid order gets back everything still captured, shipping and taxes
        included. The cancel, the stock and voucher released and the refund's
        decision (its amounts on the order, ``refund_requested`` in its log)
        are one transaction; the refund is sent to the payment service after
        it, idempotently. Calling it again on a cancelled order finishes a
        refund or a void a crash left open (exactly once) and returns the
        order. A fulfilled order cannot be cancelled
        (:class:`InvalidTransitionError`): return its items instead.
        """
        order = self.get(order_id)
        if order.status is not OrderStatus.CANCELLED:
            transition(order.status, OrderStatus.CANCELLED)

            def work(uow: UnitOfWork) -> bool:
                o = t.orders.c
                moved = rowcount(
                    uow.session.execute(
                        update(t.orders)
                        .where(
                            o.id == order_id,
                            o.status == OrderStatus.PLACED.value,
                            o.fulfilment_status == FulfilmentStatus.UNFULFILLED.value,
                        )
                        .values(
                            status=OrderStatus.CANCELLED.value,
                            version=o.version + 1,
                            updated_at=self._clock(),
                        )
                    )
                )
                if not moved:
                    return False
                # the order as the cancel left it, read in this transaction
                now = self._read(uow.session, order_id)
                if now.payment_status in REFUNDABLE and now.captured > now.refunded:
                    steps = self._steps(uow.session, order_id)  # the row is locked (moved above)
                    key = self._cancel_key(steps)
                    self._decide_refund(uow, now, plan_refund(now, None, False), key, steps)
                self._inventory.cancel_allocation(order.reservation_id, uow=uow)
                if order.voucher:
                    self._vouchers.release(order.voucher, order.checkout_key, uow=uow)
                self._log(uow.session, order_id, "cancelled", {"reason": reason})
                props = self._order_properties(order, uow.session) | {"reason": reason}
                self._events.money(
                    uow,
                    "Order Cancelled",
                    order_id,
                    props,
                    customer_id=order.customer_id,
                    anonymous_id=order.anonymous_id,
                )
                return True

            if not self._db.run(work, retry=True).value:
                now = self.get(order_id)
                raise InvalidTransitionError(
                    f"order {now.number} is {now.status.value} and "
                    f"{now.fulfilment_status.value}: it cannot be cancelled"
                )
            self._m.count("order_transitions_total", "order", OrderStatus.CANCELLED.value)
        self._settle_cancelled(self.get(order_id))
        return self.get(order_id)

    # -- fulfilment and returns -----------------------------------------------------------

    def fulfil(self, order_id: str, quantities: Mapping[str, int]) -> Order:
        """Ship *quantities* (SKU -> qty) of the order; partial fulfilment is fine."""
        wanted = {check_id(s, "sku"): check_quantity(q) for s, q in quantities.items()}
        if not wanted:
            raise InvalidInputError("nothing to fulfil")

        def work(uow: UnitOfWork) -> None:
            s = uow.session
            order = self._read(s, order_id)
            transition(order.status, OrderStatus.COMPLETED)  # only a placed order ships
            done = 0
            _add_to_lines(
                s,
                order,
                wanted,
                "fulfilled",
                "qty",
                lambda sku, qty, line: (
                    f"cannot ship {qty} of {sku!r}: {line.qty - line.fulfilled} left to ship"
                ),
            )
            for line in order.lines:
                done += line.fulfilled + wanted.get(line.sku, 0) == line.qty
            full = done == len(order.lines)
            to = FulfilmentStatus.FULFILLED if full else FulfilmentStatus.PARTIALLY_FULFILLED
            transition(order.fulfilment_status, to)
            o = t.orders.c
            values: dict[str, object] = {
                "fulfilment_status": to.value,
                "version": o.version + 1,
                "updated_at": self._clock(),
            }
            if full:
                values["status"] = OrderStatus.COMPLETED.value
            if not rowcount(
                s.execute(
                    update(t.orders)
                    .where(
                        o.id == order_id,
                        o.status == OrderStatus.PLACED.value,
                        o.fulfilment_status == order.fulfilment_status.value,
                    )
                    .values(**values)
                )
            ):
                raise InvalidTransitionError(f"order {order.number} changed meanwhile; reload")
            self._inventory.ship(order.reservation_id, wanted, uow=uow)
            self._log(s, order_id, to.value, {"quantities": wanted})
            self._m.count("order_transitions_total", "fulfilment", to.value)

        self._db.run(work)
        return self.get(order_id)

    def return_items(
        self, order_id: str, quantities: Mapping[str, int], *, key: str, refund: bool = True
    ) -> Order:
        """Take back shipped items: restock them (once per *key*) and refund their share.

        Calling it again with the same *key* changes nothing more, and finishes
        a restock or refund that a crash after recording the return left undone
        (with the quantities first recorded).
        """
        check_id(key, "return key")
        wanted = {check_id(s, "sku"): check_quantity(q) for s, q in quantities.items()}
        order = self.get(order_id)
        lines = {ln.sku: ln for ln in order.lines}
        owed = Money.zero(order.total.currency)
        if refund and order.payment_status not in (*REFUNDABLE, PaymentStatus.REFUNDED):
            # refused before the return is written, not after (a replay would fail alike)
            raise InvalidTransitionError(
                f"order {order.number} is {order.payment_status.value}: its returns cannot be "
                "refunded (pass refund=False to take the items back without a refund)"
            )

        def work(uow: UnitOfWork) -> tuple[dict[str, int] | None, str]:
            nonlocal order
            s = uow.session
            o = t.orders.c
            # the row locked first: of two calls with one key, the later finds the earlier's;
            # one read of the log gives the refunds' keys and the returns recorded
            entries = self._locked_steps(s, order_id, also=("returned",))
            used = {k for kind, k, _ in entries if kind != "returned"}
            for kind, _, done in entries:
                if kind != "returned":
                    continue
                their = str(done.get("refund_key", f"return:{done.get('key')}"))
                if done.get("key") == key:
                    quantities = cast("Mapping[str, int]", done["quantities"])
                    return {str(k): int(v) for k, v in quantities.items()}, their
                used.add(their)
            # return:<key>, or a fresh return:<key>:<n> when an older log used it
            refund_key, n = f"return:{key}", 0
            while refund_key in used:
                n += 1
                refund_key = f"return:{key}:{n}"
            order = self._read(s, order_id)  # in this transaction: the status counts every return
            returned_all = True
            _add_to_lines(
                s,
                order,
                wanted,
                "returned",
                "fulfilled",
                lambda sku, qty, line: f"cannot return {qty} of {sku!r}: not shipped",
            )
            for line in order.lines:
                if line.returned + wanted.get(line.sku, 0) < line.qty:
                    returned_all = False
            to = FulfilmentStatus.RETURNED if returned_all else FulfilmentStatus.PARTIALLY_RETURNED
            transition(order.fulfilment_status, to)
            s.execute(
                update(t.orders)
                .where(o.id == order_id)
                .values(fulfilment_status=to.value, version=o.version + 1)
            )
            record = {"key": key, "quantities": wanted, "refund_key": refund_key}
            self._log(s, order_id, "returned", record)
            return None, refund_key

        # A replay of *key* finishes what a crash after the record left undone:
        # the restock and the refund below are each idempotent by their key.
        recorded, refund_key = self._db.run(work).value
        if recorded is not None:
            wanted = recorded
        for sku, qty in sorted(wanted.items()):
            self._inventory.adjust(sku, qty, key=f"{order_id}:return:{key}:{sku}")
            line = lines[sku]
            owed += line.gross.multiply(Fraction(qty, line.qty), rounding=decimal.ROUND_HALF_EVEN)
        if refund and owed.amount_minor:
            # capped at what the lines and the capture have left (goodwill refunds, a
            # concurrent return took some), as read under the order's lock: never more,
            # so the refund cannot be refused after the return and its restock are written
            return self._refund(order_id, owed, key=refund_key, shipping=False, capped=True)
        return self.get(order_id)


def _add_to_lines(
    s: Session,
    order: Order,
    wanted: Mapping[str, int],
    counter: str,
    bound: str,
    refusal: Callable[[str, int, OrderLine], str],
) -> None:
    """Add each wanted quantity to its line's *counter*, never past its *bound* column.

    One compare-and-set ``UPDATE`` per line (in SKU order, so concurrent calls
    lock lines in the same order); a SKU not on *order* or a line whose
    *counter* would pass *bound* raises :class:`InvalidInputError`.
    """
    lines = {ln.sku: ln for ln in order.lines}
    ol = t.order_lines.c
    for sku, qty in sorted(wanted.items()):
        line = lines.get(sku)
        if line is None:
            raise InvalidInputError(f"order {order.number} has no line {sku!r}")
        if not rowcount(
            s.execute(
                update(t.order_lines)
                .where(
                    ol.order_id == order.id,
                    ol.line_no == line.line_no,
                    ol[counter] + qty <= ol[bound],
                )
                .values({counter: ol[counter] + qty})
            )
        ):
            raise InvalidInputError(refusal(sku, qty, line))
