"""The money side of orders: capture, payment status moves, refunds, settling a cancel.

Every status change is one ``UPDATE ... WHERE id = :id AND <axis> = :seen``
in the same transaction as its side effects (stock released, lines
fulfilled, an event appended to the order's log, a money event to the
outbox): of two concurrent changes exactly one wins, and the loser gets an
:class:`InvalidTransitionError`. Payment calls (capture, void, refund) go to
:class:`PaymentService` with keys derived from the order, so a retried call
never moves money twice.
"""

# Longer than 400 lines because a refund's three steps (decide, pay back, record), the
# log they read under the order's row lock and the recovery that carries them on are one
# piece: each step's exactly-once guarantee rests on how the others read the log.

from __future__ import annotations

import functools
import json
from collections.abc import Mapping
from typing import cast

import attrs
from sqlalchemy import and_, bindparam, case, select, update
from sqlalchemy.orm import Session

from commercekit.commerce._events import money_text
from commercekit.commerce._shared import check_id, rowcount
from commercekit.errors import (
    CommerceKitError,
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
from ._refunds import REFUNDABLE, RefundPlan, plan_refund
from ._status import OrderStatus, PaymentStatus, transition

__all__ = ["OrderPayments"]

_o = t.orders.c
_MOVE_PAYMENT = (  # built once: SQLAlchemy keys its cache once per statement
    update(t.orders)
    .where(_o.id == bindparam("b_id"), _o.payment_status == bindparam("b_from"))
    .values(payment_status=bindparam("b_to"), version=_o.version + 1, updated_at=bindparam("now"))
)
_MOVE_PAYMENT_CAPTURED = _MOVE_PAYMENT.values(captured_minor=bindparam("b_captured"))
_REFUND_STEPS = ("refund_requested", "refunded", "refund_declined")
Step = tuple[str, str, Mapping[str, object]]
"""A refund step of an order's log: its kind, its refund's key, its data."""
_RESERVED = ("cancel:", "return:")  # with "cancel": the keys of cancels' and returns' refunds


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

    def refund(
        self,
        order_id: str,
        amount: Money | None = None,
        *,
        key: str,
        shipping: bool | Money = False,
    ) -> Order:
        """Refund a paid order once per *key*: *amount* of goods and, if asked, *shipping*.

        *amount* (the goods, with their tax) is spread over the lines, no line
        getting back more than it was paid; *shipping* True adds all the
        shipping left (with its tax), a Money that much of it. With neither
        (``refund(order_id, key=...)``) everything still captured is refunded.
        Asking more than is left is :class:`InvalidInputError`, with nothing
        written.

        The refund is decided in one transaction (the order's amounts and
        payment status, and a ``refund_requested`` entry in its log), then
        sent to :class:`PaymentService` with a key derived from the order and
        *key*, then recorded (``refunded`` in the log, "Order Refunded" to
        the outbox). Calling it again with the same *key* after a crash
        finishes that refund with the amounts first decided; it never pays
        back twice. A declined refund is taken back off the order.

        The keys ``cancel``, ``cancel:...`` and ``return:...`` name the
        refunds of a cancel and of :meth:`return_items`; asked here they are
        :class:`InvalidInputError`.
        """
        check_id(key, "refund key")
        if key == "cancel" or key.startswith(_RESERVED):
            raise InvalidInputError(
                f"refund key {key!r} is reserved: 'cancel', 'cancel:...' and 'return:...' "
                "name the refunds of cancels and returns"
            )
        return self._refund(order_id, amount, key=key, shipping=shipping)

    def _refund(
        self,
        order_id: str,
        amount: Money | None,
        *,
        key: str,
        shipping: bool | Money,
        capped: bool = False,
    ) -> Order:
        """:meth:`refund` with any key (a cancel's and a return's own too).

        *capped* (a return's refund): the goods refunded are *amount* at most,
        cut to what the lines and the capture have left as read under the
        order's row lock, and nothing is refunded when nothing is left; so a
        refund decided beside another (a concurrent return's) is never refused
        after its return was written.
        """

        def decide(uow: UnitOfWork) -> tuple[str, Mapping[str, object]]:
            # one read of the log, under the order's row lock: of two callers with one
            # key, the later one finds the earlier one's decision and finishes it
            steps = self._locked_steps(uow.session, order_id)
            seen = _last_step(steps, key)
            if seen is not None:
                return seen
            order = self._read(uow.session, order_id)
            goods = amount
            if capped and goods is not None:
                goods = _refundable(order, goods)
                if not goods.amount_minor:
                    return "nothing", {}
            plan = plan_refund(order, goods, shipping)
            return "refund_requested", self._decide_refund(uow, order, plan, key, steps)

        state, asked = self._db.run(decide).value
        if state in ("refunded", "nothing"):
            return self.get(order_id)
        elif state == "refund_declined":
            raise InvalidStateError(
                f"the refund {key!r} of order {order_id} was declined; refund with another key"
            )
        return self._finish_refund(order_id, key, asked)

    def _pending_refunds(self, order_id: str) -> list[tuple[str, Mapping[str, object]]]:
        """The order's refunds decided but not yet paid back or declined: (key, decision)."""
        steps = self._db.run(lambda u: self._steps(u.session, order_id), retry=True).value
        return _pending(steps)

    def _decide_refund(
        self, uow: UnitOfWork, order: Order, plan: RefundPlan, key: str, steps: list[Step]
    ) -> Mapping[str, object]:
        """Write the refund *plan* onto the order read in *uow* (compare-and-set on its version).

        *steps* are the order's refund steps read in *uow* since its row was
        locked. Returns the decision as logged (``refund_requested``'s data).
        """
        s = uow.session
        if any(k == key for _, k, _ in steps):
            raise InvalidStateError(f"order {order.number} has had a refund {key!r} already")
        full = order.refunded + plan.amount == order.captured
        to = PaymentStatus.REFUNDED if full else PaymentStatus.PARTIALLY_REFUNDED
        transition(order.payment_status, to)
        o, ol = t.orders.c, t.order_lines.c
        if not rowcount(
            s.execute(
                update(t.orders)
                .where(o.id == order.id, o.version == order.version)
                .values(
                    payment_status=to.value,
                    refunded_minor=o.refunded_minor + plan.amount.amount_minor,
                    version=o.version + 1,
                    updated_at=self._clock(),
                )
            )
        ):
            raise InvalidTransitionError(f"order {order.number} changed meanwhile; retry")
        for line, part in zip(order.lines, plan.lines, strict=True):
            if part.amount_minor:
                s.execute(
                    update(t.order_lines)
                    .where(ol.order_id == order.id, ol.line_no == line.line_no)
                    .values(refunded_minor=ol.refunded_minor + part.amount_minor)
                )
        asked: dict[str, object] = {
            "key": key,
            "amount_minor": plan.amount.amount_minor,
            "shipping_minor": plan.shipping.amount_minor,
            "lines": {
                str(ln.line_no): p.amount_minor
                for ln, p in zip(order.lines, plan.lines, strict=True)
            },
            "from": order.payment_status.value,
            "to": to.value,
        }
        self._log(s, order.id, "refund_requested", asked)
        self._recount(s, order.id, [*steps, ("refund_requested", key, asked)])
        return asked

    def _finish_refund(self, order_id: str, key: str, asked: Mapping[str, object]) -> Order:
        """Pay back the refund *key* decided earlier as *asked* (idempotently); record it once."""
        order = self.get(order_id)
        amount = Money.from_minor(int(cast("int", asked["amount_minor"])), order.total.currency)
        result = self._payments.refund(
            order.payment_id, amount, idempotency_key=f"{order_id}:refund:{key}"
        )
        if not result.approved:
            self._db.run(lambda uow: self._take_back(uow, order_id, key, asked), retry=True)
            raise InvalidStateError(f"the refund of order {order.number} was declined")

        def record(uow: UnitOfWork) -> bool:
            s = uow.session
            steps = self._locked_steps(s, order_id)
            if _logged(steps, ("refunded",), key):
                return False
            done = {"key": key, "amount_minor": amount.amount_minor}
            self._log(s, order_id, "refunded", done)
            self._recount(s, order_id, [*steps, ("refunded", key, done)])
            props = self._order_properties(order, s) | {"total": money_text(amount)}
            self._events.money(
                uow,
                "Order Refunded",
                f"{order_id}:{key}",
                props,
                customer_id=order.customer_id,
                anonymous_id=order.anonymous_id,
            )
            return True

        if self._db.run(record, retry=True).value:
            self._m.count("order_transitions_total", "payment", str(asked.get("to", "refunded")))
        return self.get(order_id)

    def _take_back(
        self, uow: UnitOfWork, order_id: str, key: str, asked: Mapping[str, object]
    ) -> None:
        """Undo a declined refund's amounts on the order (a compensation, not a transition)."""
        s = uow.session
        steps = self._locked_steps(s, order_id)
        if _logged(steps, ("refunded", "refund_declined"), key):
            return
        o, ol = t.orders.c, t.order_lines.c
        back = o.refunded_minor - int(cast("int", asked["amount_minor"]))
        s.execute(
            update(t.orders)
            .where(o.id == order_id)
            .values(
                payment_status=case(
                    (back == 0, PaymentStatus.PAID.value),
                    else_=PaymentStatus.PARTIALLY_REFUNDED.value,
                ),
                refunded_minor=back,
                version=o.version + 1,
                updated_at=self._clock(),
            )
        )
        for line_no, part in cast("Mapping[str, int]", asked["lines"]).items():
            if part:
                s.execute(
                    update(t.order_lines)
                    .where(ol.order_id == order_id, ol.line_no == int(line_no))
                    .values(refunded_minor=ol.refunded_minor - int(part))
                )
        self._log(s, order_id, "refund_declined", {"key": key})
        self._recount(s, order_id, [*steps, ("refund_declined", key, {"key": key})])

    def _locked_steps(self, s: Session, order_id: str, *, also: tuple[str, ...] = ()) -> list[Step]:
        """The order's refund steps (kind, key, data), oldest first, its row locked first.

        The lock (a write of the row's ``updated_at``) makes two concurrent
        deciders or finishers of one order take turns: the second sees the
        first's entries. *also* adds entries of other kinds to the one read.
        """
        o = t.orders.c
        s.execute(update(t.orders).where(o.id == order_id).values(updated_at=self._clock()))
        return self._steps(s, order_id, also=also)

    @staticmethod
    def _steps(s: Session, order_id: str, *, also: tuple[str, ...] = ()) -> list[Step]:
        """The order's refund steps (kind, key, data), oldest first, read in *s* (and *also*)."""
        e = t.order_events.c
        rows = s.execute(
            select(e.kind, e.data)
            .where(e.order_id == order_id, e.kind.in_((*_REFUND_STEPS, *also)))
            .order_by(e.id)
        ).all()
        steps: list[Step] = []
        for kind, text in rows:
            data = json.loads(text)
            steps.append((str(kind), str(data.get("key")), data))
        return steps

    def _recount(self, s: Session, order_id: str, steps: list[Step]) -> None:
        """Set the order's ``refunds_pending`` from its *steps* and row, in *s* (row locked).

        *steps* are the order's refund steps as of now: read in *s* under the
        row lock, with the entries *s* has logged since.

        The refunds decided and not yet paid back or declined, plus one for a
        cancelled order still holding captured money no refund covers (a
        cancel's refund the provider declined): the work
        :meth:`recover_refunds` finds through the column's index.
        """
        o = t.orders.c
        owed = case(
            (
                and_(
                    o.status == OrderStatus.CANCELLED.value,
                    o.payment_status.in_([p.value for p in REFUNDABLE]),
                    o.captured_minor > o.refunded_minor,
                ),
                1,
            ),
            else_=0,
        )
        pending = len(_pending(steps))
        s.execute(update(t.orders).where(o.id == order_id).values(refunds_pending=owed + pending))

    @staticmethod
    def _cancel_key(steps: list[Step]) -> str:
        """A key for a cancel's refund that the order's refund *steps* have not used.

        ``cancel`` first, then ``cancel:1``, ``cancel:2``...: each attempt to
        settle a cancel gets a fresh one, as does an order whose log holds a
        caller's ``cancel`` from before the keys were reserved.
        """
        used = {k for _, k, _ in steps}
        key, n = "cancel", 0
        while key in used:
            n += 1
            key = f"cancel:{n}"
        return key

    def recover_refunds(self, *, older_than_s: float = 60.0, limit: int = 100) -> list[str]:
        """Finish refunds a crash left decided but not paid back; the ids of their orders.

        Looks at orders whose last change is at least *older_than_s* old (a
        refund in flight is left to its caller) with a refund pending, at most
        *limit* of them, and carries each pending refund on exactly as a
        second call with its key would: paid back once, recorded once. A
        cancelled order still holding captured money (its refund declined) is
        settled as ``cancel()`` again would, under a fresh key. Run it beside
        ``Checkout.recover()``. An order whose refund fails again is left for
        the next run, behind the others (its ``updated_at`` moves on), and
        the others are still finished; an order found with nothing to do has
        its count set back from its log, so none holds a place in the queue.
        """
        if older_than_s < 0 or limit < 1:
            raise InvalidInputError("older_than_s is >= 0 and limit >= 1")
        o = t.orders.c
        query = (
            select(o.id)
            .where(o.refunds_pending > 0, o.updated_at <= self._clock() - older_than_s)
            .order_by(o.updated_at)
            .limit(limit)
        )
        ids = list(
            self._db.run(lambda u: u.session.execute(query).scalars().all(), retry=True).value
        )
        done: list[str] = []
        for order_id in ids:
            try:
                order = self.get(order_id)
                if order.status is OrderStatus.CANCELLED:
                    self._settle_cancelled(order)
                else:
                    for key, asked in self._pending_refunds(order_id):
                        self._finish_refund(order_id, key, asked)
            except CommerceKitError:  # declined, provider down: the next run tries again
                self._db.run(functools.partial(self._recount_locked, order_id=order_id), retry=True)
                continue
            self._db.run(functools.partial(self._recount_locked, order_id=order_id), retry=True)
            done.append(order_id)
        return done

    def _recount_locked(self, uow: UnitOfWork, order_id: str) -> None:
        """Lock the order's row (its ``updated_at`` moves to now) and :meth:`_recount` it."""
        self._recount(uow.session, order_id, self._locked_steps(uow.session, order_id))

    def _settle_cancelled(self, order: Order) -> None:
        """Finish the payment side of a cancelled order: pending refunds, a void, what is left.

        Every pending refund is tried (the first failure raised after the
        others); what the capture still holds is then refunded under a fresh
        ``cancel:<n>`` key, so a declined attempt never blocks the next one.
        """
        failed: CommerceKitError | None = None
        for key, asked in self._pending_refunds(order.id):
            try:
                self._finish_refund(order.id, key, asked)
            except CommerceKitError as e:
                failed = failed or e
        if failed is not None:
            raise failed
        order = self.get(order.id)
        if order.payment_status is PaymentStatus.AUTHORIZED:
            state = self._payments.payment(order.payment_id).state
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
        if order.payment_status in REFUNDABLE and order.captured > order.refunded:
            steps = self._db.run(lambda u: self._steps(u.session, order.id), retry=True).value
            self._refund(order.id, None, key=self._cancel_key(steps), shipping=False)


def _refundable(order: Order, goods: Money) -> Money:
    """*goods*, at most what *order*'s lines and capture have left to refund (zero: none)."""
    zero = Money.zero(goods.currency)
    if order.payment_status not in REFUNDABLE:
        return zero
    on_lines = sum((ln.gross - ln.refunded for ln in order.lines), zero)
    return max(zero, min(goods, on_lines, order.captured - order.refunded))


def _pending(steps: list[Step]) -> list[tuple[str, Mapping[str, object]]]:
    """The refunds of *steps* decided but not yet paid back or declined: (key, decision)."""
    pending: dict[str, Mapping[str, object]] = {}
    for kind, key, data in steps:
        if kind == "refund_requested":
            pending[key] = data
        elif kind in ("refunded", "refund_declined"):
            pending.pop(key, None)
    return list(pending.items())


def _last_step(steps: list[Step], key: str) -> tuple[str, Mapping[str, object]] | None:
    """The last step the refund *key* reached and its decision (None: not asked yet)."""
    last: str | None = None
    asked: Mapping[str, object] = {}
    for kind, k, data in steps:
        if k == key:
            last = kind
            if kind == "refund_requested":
                asked = data
    return None if last is None else (last, asked)


def _logged(steps: list[Step], kinds: tuple[str, ...], key: str) -> bool:
    """Whether *steps* hold one of *kinds* for *key*."""
    return any(k == key and kind in kinds for kind, k, _ in steps)
