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
import json
import secrets
from collections.abc import Mapping
from fractions import Fraction
from typing import Any

from sqlalchemy import exc as sa_exc
from sqlalchemy import select, update
from sqlalchemy.orm import Session

from commercekit.commerce._events import BusinessEvents, money_text
from commercekit.commerce._instruments import CommerceInstruments
from commercekit.commerce._shared import Clock, check_id, check_quantity, new_id, rowcount
from commercekit.commerce.inventory import Inventory
from commercekit.commerce.pricing import Vouchers, allocate_refund
from commercekit.errors import (
    InvalidInputError,
    InvalidStateError,
    InvalidTransitionError,
    NotFoundError,
)
from commercekit.money import Money, currency
from commercekit.payments import PaymentService, PaymentState
from commercekit.repository import Database, UnitOfWork

from . import _tables as t
from ._model import Order, OrderEvent, OrderLine
from ._status import FulfilmentStatus, OrderStatus, PaymentStatus, transition

__all__ = ["Orders", "order_number"]

_ALPHABET = "0123456789ABCDEFGHJKMNPQRSTVWXYZ"  # Crockford's base 32: no I, L, O, U


def order_number() -> str:
    """A human-friendly order number, ``CK-XXXX-XXXX`` (40 random bits, Crockford base 32)."""
    value = secrets.randbits(40)
    chars = "".join(_ALPHABET[(value >> (5 * i)) & 31] for i in range(8))
    return f"CK-{chars[:4]}-{chars[4:]}"


class Orders:
    """The order service. See the module docstring."""

    def __init__(
        self,
        db: Database,
        *,
        inventory: Inventory,
        payments: PaymentService,
        vouchers: Vouchers,
        events: BusinessEvents,
        metrics: CommerceInstruments,
        clock: Clock,
    ) -> None:
        self._db = db
        self._inventory = inventory
        self._payments = payments
        self._vouchers = vouchers
        self._events = events
        self._m = metrics
        self._clock = clock

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
    ) -> Order:
        """Create an order in the caller's unit of work (the checkout's placement transaction).

        *quote* is a pricing snapshot (:meth:`Quote.snapshot`). The checkout key
        is unique: a second order for one checkout is a :class:`DuplicateError`.
        """
        s = uow.session
        order_id = new_id()
        now = self._clock()
        code = str(quote["currency"])
        row = {
            "id": order_id,
            "checkout_key": checkout_key,
            "customer_id": customer_id,
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
        for _ in range(5):  # a number collision (1 in 2**40 per pair) draws again
            row["number"] = order_number()
            try:
                with s.begin_nested():
                    s.execute(t.orders.insert().values(**row))
                break
            except sa_exc.IntegrityError as exc:
                taken = s.execute(
                    select(t.orders.c.id).where(t.orders.c.number == row["number"])
                ).first()
                if taken is None:
                    raise  # the checkout key: the caller's unit of work translates it
                del exc
        s.execute(
            t.order_lines.insert(),
            [
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
            ],
        )
        self._log(s, order_id, "placed", {"checkout_key": checkout_key})
        order = self._read(s, order_id)
        self._events.money(
            uow,
            "Order Completed",
            order_id,
            self._order_properties(order),
            customer_id=order.customer_id,
        )
        self._m.count("order_transitions_total", "order", OrderStatus.PLACED.value)
        return order

    # -- reads ----------------------------------------------------------------------------

    def get(self, order_id: str) -> Order:
        """The order, or :class:`NotFoundError`."""
        check_id(order_id, "order_id")
        with self._db.unit_of_work() as uow:
            return self._read(uow.session, order_id)

    def by_checkout(self, checkout_key: str, *, uow: UnitOfWork | None = None) -> Order | None:
        """The order placed by *checkout_key*, or None."""
        query = select(t.orders.c.id).where(t.orders.c.checkout_key == checkout_key)
        if uow is not None:
            found = uow.session.execute(query).scalar_one_or_none()
            return None if found is None else self._read(uow.session, found)
        with self._db.unit_of_work() as own:
            found = own.session.execute(query).scalar_one_or_none()
            return None if found is None else self._read(own.session, found)

    def events(self, order_id: str) -> list[OrderEvent]:
        """The order's event log, oldest first."""
        e = t.order_events.c
        with self._db.unit_of_work() as uow:
            rows = uow.session.execute(
                select(e.id, e.kind, e.data, e.at).where(e.order_id == order_id).order_by(e.id)
            ).all()
        return [OrderEvent(int(i), k, json.loads(d), float(a)) for i, k, d, a in rows]

    # -- payment --------------------------------------------------------------------------

    def capture(self, order_id: str) -> Order:
        """Capture the order's authorized payment (at placement or at fulfilment); idempotent."""
        order = self.get(order_id)
        if order.status is OrderStatus.CANCELLED:
            raise InvalidTransitionError(
                f"order {order.number} is cancelled: its payment cannot be captured"
            )
        if order.payment_status is not PaymentStatus.AUTHORIZED:
            if order.payment_status is PaymentStatus.VOIDED:
                raise InvalidTransitionError(f"order {order.number}'s payment is voided")
            return order  # captured already
        result = self._payments.capture(order.payment_id, idempotency_key=f"{order_id}:capture")
        if not result.approved:
            raise InvalidStateError(
                f"the capture of order {order.number} was declined ({result.decline_code})"
            )
        self._move_payment(order, PaymentStatus.PAID, captured=result.amount.amount_minor)
        return self.get(order_id)

    def _move_payment(
        self, order: Order, to: PaymentStatus, *, captured: int | None = None
    ) -> bool:
        transition(order.payment_status, to)
        o = t.orders.c
        values: dict[str, object] = {
            "payment_status": to.value,
            "version": o.version + 1,
            "updated_at": self._clock(),
        }
        if captured is not None:
            values["captured_minor"] = captured

        def work(uow: UnitOfWork) -> bool:
            moved = rowcount(
                uow.session.execute(
                    update(t.orders)
                    .where(o.id == order.id, o.payment_status == order.payment_status.value)
                    .values(**values)
                )
            )
            if moved:
                self._log(uow.session, order.id, f"payment_{to.value}", {})
            return bool(moved)

        moved = self._db.run(work, retry=True).value
        if moved:
            self._m.count("order_transitions_total", "payment", to.value)
        return moved

    # -- cancelling -----------------------------------------------------------------------

    def cancel(self, order_id: str, *, reason: str = "customer") -> Order:
        """Cancel an unfulfilled order: stock goes back once, the payment is voided or refunded.

        Calling it again on a cancelled order settles a payment left open by a
        crash and returns the order. A fulfilled order cannot be cancelled
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
                self._inventory.cancel_allocation(order.reservation_id, uow=uow)
                if order.voucher:
                    self._vouchers.release(order.voucher, order.checkout_key, uow=uow)
                self._log(uow.session, order_id, "cancelled", {"reason": reason})
                props = self._order_properties(order) | {"reason": reason}
                self._events.money(
                    uow, "Order Cancelled", order_id, props, customer_id=order.customer_id
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
            lines = {ln.sku: ln for ln in order.lines}
            ol = t.order_lines.c
            done = 0
            for sku, qty in sorted(wanted.items()):
                line = lines.get(sku)
                if line is None:
                    raise InvalidInputError(f"order {order.number} has no line {sku!r}")
                if not rowcount(
                    s.execute(
                        update(t.order_lines)
                        .where(
                            ol.order_id == order_id,
                            ol.line_no == line.line_no,
                            ol.fulfilled + qty <= ol.qty,
                        )
                        .values(fulfilled=ol.fulfilled + qty)
                    )
                ):
                    raise InvalidInputError(
                        f"cannot ship {qty} of {sku!r}: {line.qty - line.fulfilled} left to ship"
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
                uow, "Order Refunded", f"{order_id}:{key}", props, customer_id=order.customer_id
            )

        self._db.run(work)
        self._m.count("order_transitions_total", "payment", to.value)
        return self.get(order_id)

    def return_items(
        self, order_id: str, quantities: Mapping[str, int], *, key: str, refund: bool = True
    ) -> Order:
        """Take back shipped items: restock them (once per *key*) and refund their share."""
        check_id(key, "return key")
        wanted = {check_id(s, "sku"): check_quantity(q) for s, q in quantities.items()}
        order = self.get(order_id)
        lines = {ln.sku: ln for ln in order.lines}
        owed = Money.zero(order.total.currency)

        def work(uow: UnitOfWork) -> bool:
            s = uow.session
            if any(
                e.kind == "returned" and e.data.get("key") == key for e in self.events(order_id)
            ):
                return False
            ol, o = t.order_lines.c, t.orders.c
            returned_all = True
            for sku, qty in sorted(wanted.items()):
                line = lines.get(sku)
                if line is None:
                    raise InvalidInputError(f"order {order.number} has no line {sku!r}")
                if not rowcount(
                    s.execute(
                        update(t.order_lines)
                        .where(
                            ol.order_id == order_id,
                            ol.line_no == line.line_no,
                            ol.returned + qty <= ol.fulfilled,
                        )
                        .values(returned=ol.returned + qty)
                    )
                ):
                    raise InvalidInputError(f"cannot return {qty} of {sku!r}: not shipped")
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
            self._log(s, order_id, "returned", {"key": key, "quantities": wanted})
            return True

        if not self._db.run(work).value:
            return order
        for sku, qty in sorted(wanted.items()):
            self._inventory.adjust(sku, qty, key=f"{order_id}:return:{key}:{sku}")
            line = lines[sku]
            owed += line.gross.multiply(Fraction(qty, line.qty), rounding=decimal.ROUND_HALF_EVEN)
        if refund and owed.amount_minor:
            left = self.get(order_id)
            owed = min(owed, left.captured - left.refunded)
            if owed.amount_minor:
                return self.refund(order_id, owed, key=f"return:{key}")
        return self.get(order_id)

    # -- internals ------------------------------------------------------------------------

    def _log(self, s: Session, order_id: str, kind: str, data: Mapping[str, object]) -> None:
        s.execute(
            t.order_events.insert().values(
                order_id=order_id, kind=kind, data=json.dumps(data), at=self._clock()
            )
        )

    @staticmethod
    def _order_properties(order: Order) -> dict[str, object]:
        return {
            "order_id": order.id,
            "checkout_id": order.checkout_key,
            "order_number": order.number,
            "total": money_text(order.total),
            "revenue": money_text(order.subtotal - order.discount),
            "shipping": money_text(order.shipping),
            "tax": money_text(order.tax),
            "discount": money_text(order.discount),
            "coupon": order.voucher,
            "currency": order.total.currency.code,
            "products": [
                {
                    "product_id": ln.sku,
                    "sku": ln.sku,
                    "quantity": ln.qty,
                    "price": money_text(ln.unit_price),
                    "position": ln.line_no,
                }
                for ln in order.lines
            ],
        }

    @staticmethod
    def _read(s: Session, order_id: str) -> Order:
        o, ol = t.orders.c, t.order_lines.c
        row = s.execute(select(t.orders).where(o.id == order_id)).mappings().first()
        if row is None:
            raise NotFoundError(f"no order {order_id!r}")
        unit = currency(row["currency"])

        def m(value: int) -> Money:
            return Money.from_minor(int(value), unit)

        lines = tuple(
            OrderLine(
                int(r["line_no"]),
                r["sku"],
                int(r["qty"]),
                m(r["unit_price_minor"]),
                m(r["discount_minor"]),
                m(r["tax_minor"]),
                m(r["gross_minor"]),
                int(r["fulfilled"]),
                int(r["returned"]),
                m(r["refunded_minor"]),
            )
            for r in s.execute(
                select(t.order_lines).where(ol.order_id == order_id).order_by(ol.line_no)
            ).mappings()
        )
        return Order(
            id=row["id"],
            number=row["number"],
            checkout_key=row["checkout_key"],
            customer_id=row["customer_id"],
            status=OrderStatus(row["status"]),
            payment_status=PaymentStatus(row["payment_status"]),
            fulfilment_status=FulfilmentStatus(row["fulfilment_status"]),
            subtotal=m(row["subtotal_minor"]),
            discount=m(row["discount_minor"]),
            shipping=m(row["shipping_minor"]),
            tax=m(row["tax_minor"]),
            total=m(row["total_minor"]),
            captured=m(row["captured_minor"]),
            refunded=m(row["refunded_minor"]),
            payment_id=row["payment_id"],
            reservation_id=row["reservation_id"],
            voucher=row["voucher"],
            version=int(row["version"]),
            lines=lines,
        )
