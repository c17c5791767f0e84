"""The order service's shared state and reads: construction, row mapping, the event log.

Every status change is one ``UPDATE ... WHERE id = :id AND <axis> = :seen``
in the same transaction as its side effects (stock released, lines
fulfilled, an event appended to the order's log, a money event to the
outbox): of two concurrent changes exactly one wins, and the loser gets an
:class:`InvalidTransitionError`. Payment calls (capture, void, refund) go to
:class:`PaymentService` with keys derived from the order, so a retried call
never moves money twice.
"""

from __future__ import annotations

import json
import math
import secrets
from collections.abc import Mapping, Sequence
from typing import Any

from sqlalchemy import ColumnElement, and_, or_, select
from sqlalchemy.orm import Session

from commercekit.commerce._events import BusinessEvents, money_text
from commercekit.commerce._instruments import CommerceInstruments
from commercekit.commerce._shared import check_id
from commercekit.commerce.catalog._tables import variants
from commercekit.commerce.inventory import Inventory
from commercekit.commerce.pricing import Vouchers
from commercekit.errors import InvalidInputError, NotFoundError
from commercekit.money import Money, currency
from commercekit.payments import PaymentService
from commercekit.repository import (
    Database,
    TokenLike,
    UnitOfWork,
    decode_cursor,
    encode_cursor,
)
from commercekit.typing import WallClock

from . import _tables as t
from ._model import Order, OrderEvent, OrderLine, OrderPage
from ._status import FulfilmentStatus, OrderStatus, PaymentStatus

__all__ = ["OrdersBase", "order_from_rows", "order_number"]

_INSERT_EVENT = t.order_events.insert()  # built once: SQLAlchemy keys its cache once
_MAX_PAGE = 200
_ALPHABET = "0123456789ABCDEFGHJKMNPQRSTVWXYZ"  # Crockford's base 32: no I, L, O, U


def _cursor(text: str, listing: str) -> tuple[float, str]:
    """Read a page cursor: the repository's keyset cursor of ``(created_at, order id)``.

    The ``"<created_at>/<order id>"`` form handed out before is read too, so
    a page link kept across an upgrade goes on working. Anything else is
    :class:`InvalidInputError`.
    """
    bad = InvalidInputError(f"{str(text)[:80]!r} is not a page cursor from {listing}()")
    if not isinstance(text, str):
        raise bad
    if "/" in text:  # the earlier form: "/" is not in the URL-safe base64 alphabet
        at_text, _, oid_text = text.partition("/")
        oid: object = oid_text
        try:
            at: object = float(at_text)
        except ValueError:
            raise bad from None
    else:
        try:
            values = decode_cursor(text)
        except InvalidInputError:
            raise bad from None
        if len(values) != 2:
            raise bad
        at, oid = values
    if isinstance(at, bool) or not isinstance(at, int | float) or not math.isfinite(at):
        raise bad
    if not isinstance(oid, str) or not oid:
        raise bad
    return float(at), check_id(oid, "order id")


def _check_limit(limit: object) -> int:
    """*limit* when it is a page size the listings take (1 to 200), else InvalidInputError."""
    if isinstance(limit, bool) or not isinstance(limit, int) or not 1 <= limit <= _MAX_PAGE:
        raise InvalidInputError(f"limit is 1 to {_MAX_PAGE}, not {limit!r}")
    return limit


def _check_status(status: OrderStatus | str) -> OrderStatus:
    """*status* as an :class:`OrderStatus` (its value is taken too), else InvalidInputError."""
    if isinstance(status, OrderStatus):
        return status
    try:
        return OrderStatus(status)
    except ValueError:
        known = ", ".join(s.value for s in OrderStatus)
        raise InvalidInputError(
            f"{str(status)[:40]!r} is not an order status (one of {known})"
        ) from None


def order_number() -> str:
    """A human-friendly order number, ``CK-XXXX-XXXX`` (40 random bits, Crockford base 32)."""
    value = secrets.randbits(40)
    chars = "".join(_ALPHABET[(value >> (5 * i)) & 31] for i in range(8))
    return f"CK-{chars[:4]}-{chars[4:]}"


class OrdersBase:
    """What every part of the order service shares: its collaborators, reads, the log."""

    def __init__(
        self,
        db: Database,
        *,
        inventory: Inventory,
        payments: PaymentService,
        vouchers: Vouchers,
        events: BusinessEvents,
        metrics: CommerceInstruments,
        clock: WallClock,
    ) -> None:
        self._db = db
        self._inventory = inventory
        self._payments = payments
        self._vouchers = vouchers
        self._events = events
        self._m = metrics
        self._clock = clock

    # -- reads ----------------------------------------------------------------------------

    def get(self, order_id: str) -> Order:
        """The order, or :class:`NotFoundError`."""
        check_id(order_id, "order_id")
        return self._db.run(lambda u: self._read(u.session, order_id), retry=True).value

    def by_checkout(self, checkout_key: str, *, uow: UnitOfWork | None = None) -> Order | None:
        """The order placed by *checkout_key*, or None."""
        query = select(t.orders.c.id).where(t.orders.c.checkout_key == checkout_key)
        if uow is not None:
            found = uow.session.execute(query).scalar_one_or_none()
            return None if found is None else self._read(uow.session, found)

        def work(own: UnitOfWork) -> Order | None:
            found = own.session.execute(query).scalar_one_or_none()
            return None if found is None else self._read(own.session, found)

        return self._db.run(work, retry=True).value

    def events(self, order_id: str) -> list[OrderEvent]:
        """The order's event log, oldest first."""
        e = t.order_events.c
        query = select(e.id, e.kind, e.data, e.at).where(e.order_id == order_id).order_by(e.id)
        rows = self._db.run(lambda u: u.session.execute(query).all(), retry=True).value
        return [OrderEvent(int(i), k, json.loads(d), float(a)) for i, k, d, a in rows]

    def for_customer(
        self, customer_id: str, *, limit: int = 20, after: str | None = None
    ) -> OrderPage:
        """The customer's orders, newest first, a page at a time (keyset).

        Pass the previous page's ``next_after`` as *after* for the next page
        (None: that was the last). Reads run on the primary (a customer looks
        at their order history right after placing an order).
        """
        check_id(customer_id, "customer_id")
        where = t.orders.c.customer_id == customer_id
        return self._page(where, limit, after, "for_customer", read_only=False, token=None)

    def recent(
        self,
        limit: int = 50,
        *,
        after: str | None = None,
        status: OrderStatus | str | None = None,
        token: TokenLike = None,
    ) -> OrderPage:
        """Every customer's and guest's orders, newest first, a page at a time (keyset).

        The back office's list of latest orders. *status* keeps the orders in
        that :class:`OrderStatus` only. Pass the previous page's ``next_after``
        as *after* for the next page (None: that was the last).
        The read may be served by a replica: pass the *token* of a change
        (an order placed, cancelled, fulfilled) to read at least that far.
        A *limit* outside 1 to 200, a cursor that is not one or an unknown
        status is :class:`InvalidInputError`.
        """
        where = None if status is None else t.orders.c.status == _check_status(status).value
        return self._page(where, limit, after, "recent", read_only=True, token=token)

    def _page(
        self,
        where: ColumnElement[bool] | None,
        limit: int,
        after: str | None,
        listing: str,
        *,
        read_only: bool,
        token: TokenLike,
    ) -> OrderPage:
        """One keyset page of the orders matching *where*, newest first (the listings' one path).

        Orders are keyed ``(created_at, id)`` descending, the id breaking ties
        within one instant, so a page never repeats or skips an order that
        was there when the first page was read.
        """
        limit = _check_limit(limit)
        o = t.orders.c
        query = (
            select(o.id, o.created_at).order_by(o.created_at.desc(), o.id.desc()).limit(limit + 1)
        )
        if where is not None:
            query = query.where(where)
        if after is not None:
            at, oid = _cursor(after, listing)
            query = query.where(or_(o.created_at < at, and_(o.created_at == at, o.id < oid)))

        def work(uow: UnitOfWork) -> tuple[list[Order], list[Any]]:
            keys = list(uow.session.execute(query).all())
            return self._read_many(uow.session, [k[0] for k in keys[:limit]]), keys

        orders, keys = self._db.run(work, retry=True, read_only=read_only, token=token).value
        last = keys[limit - 1] if len(keys) > limit else None
        cursor = None if last is None else encode_cursor([float(last[1]), last[0]])
        return OrderPage(tuple(orders), cursor)

    # -- internals ------------------------------------------------------------------------

    def _log(self, s: Session, order_id: str, kind: str, data: Mapping[str, object]) -> None:
        s.execute(
            _INSERT_EVENT,
            {"order_id": order_id, "kind": kind, "data": json.dumps(data), "at": self._clock()},
        )

    @staticmethod
    def _order_properties(order: Order, s: Session) -> dict[str, object]:
        """Segment's order properties; each line's ``product_id`` is its variant's product.

        The products are read from the catalog in the caller's transaction (one
        indexed read); a SKU the catalog does not know is its own product id.
        """
        skus = sorted({ln.sku for ln in order.lines})
        product_of = (
            dict(
                s.execute(
                    select(variants.c.sku, variants.c.product_id).where(variants.c.sku.in_(skus))
                ).all()
            )
            if skus
            else {}
        )
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
                    "product_id": product_of.get(ln.sku, ln.sku),
                    "sku": ln.sku,
                    "quantity": ln.qty,
                    "price": money_text(ln.unit_price),
                    "position": ln.line_no,
                }
                for ln in order.lines
            ],
        }

    @classmethod
    def _read(cls, s: Session, order_id: str) -> Order:
        found = cls._read_many(s, [order_id])
        if not found:
            raise NotFoundError(f"no order {order_id!r}")
        return found[0]

    @staticmethod
    def _read_many(s: Session, order_ids: list[str]) -> list[Order]:
        """The orders *order_ids* that exist, in that order, with their lines (two queries)."""
        if not order_ids:
            return []
        o, ol = t.orders.c, t.order_lines.c
        rows = {
            r["id"]: r for r in s.execute(select(t.orders).where(o.id.in_(order_ids))).mappings()
        }
        lines: dict[str, list[Any]] = {}
        for r in s.execute(
            select(t.order_lines)
            .where(ol.order_id.in_(list(rows)))
            .order_by(ol.order_id, ol.line_no)
        ).mappings():
            lines.setdefault(r["order_id"], []).append(r)
        return [order_from_rows(rows[i], lines.get(i, [])) for i in order_ids if i in rows]


def order_from_rows(row: Mapping[Any, Any], line_rows: Sequence[Mapping[Any, Any]]) -> Order:
    """An order from its row and its lines' rows (as read, or as just inserted)."""
    unit = currency(row["currency"])

    def m(value: int) -> Money:
        return Money.from_minor(int(value), unit)

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
        lines=tuple(
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
            for r in line_rows
        ),
        anonymous_id=row["anonymous_id"],
    )
