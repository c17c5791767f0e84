"""The checkout rows: start an attempt, move its lease, log its steps (all compare-and-set)."""

from __future__ import annotations

from typing import Any

import attrs
from sqlalchemy import and_, bindparam, or_, select, update
from sqlalchemy.sql import Update

from commercekit.commerce._shared import rowcount
from commercekit.repository import Database, UnitOfWork
from commercekit.typing import WallClock

from . import _tables as t
from ._model import CheckoutStatus

__all__ = ["CLOSING", "THAWING", "CheckoutRow", "CheckoutStore"]

_ACTIVE = (CheckoutStatus.RUNNING.value, CheckoutStatus.ACTION_REQUIRED.value)

# The saga's statements are built once (bound parameters), so each call skips building
# them and SQLAlchemy's cache key is computed once per statement, not per execution.
_c = t.checkouts.c
_LATEST = (
    select(t.checkouts)
    .where(_c.cart_id == bindparam("cart_id"))
    .order_by(_c.attempt.desc())
    .limit(1)
)
_GET = select(t.checkouts).where(_c.id == bindparam("checkout_id"))
_INSERT = t.checkouts.insert()
_LOG = t.checkout_steps.insert()
_ADVANCE: dict[tuple[str, ...], Update] = {}
_ENDED = (CheckoutStatus.FAILED.value, CheckoutStatus.COMPENSATED.value)
CLOSING = "completed"
"""A completed attempt's step until its cart, kept outside the database, is closed."""
THAWING = "thawing"
"""A failed attempt's step until its cart, kept outside the database, is opened again."""
_UNSETTLED = (
    select(t.checkouts)
    .where(
        or_(
            and_(_c.status == CheckoutStatus.COMPLETED.value, _c.step == CLOSING),
            and_(_c.status.in_(_ENDED), _c.step == THAWING),
        )
    )
    .order_by(_c.updated_at)
    .limit(bindparam("limit"))
)
_SETTLE = (
    update(t.checkouts)
    .where(_c.id == bindparam("checkout_id"), _c.step == bindparam("seen"))
    .values(step=bindparam("step"), updated_at=bindparam("now"))
)


def _advance_statement(names: tuple[str, ...]) -> Update:
    """``UPDATE ... SET <names> WHERE id = :checkout_id AND lease_owner = :owner`` (cached)."""
    stmt = _ADVANCE.get(names)
    if stmt is None:
        stmt = (
            update(t.checkouts)
            .where(_c.id == bindparam("checkout_id"), _c.lease_owner == bindparam("owner"))
            .values({n: bindparam("v_" + n) for n in names})
        )
        _ADVANCE[names] = stmt
    return stmt


@attrs.frozen
class CheckoutRow:
    """One checkout attempt as stored."""

    id: str
    cart_id: str
    attempt: int
    status: CheckoutStatus
    step: str
    lease_owner: str | None
    lease_until: float
    customer_id: str | None
    region: str
    channel: str
    quote: str | None
    order_id: str | None
    error: str | None
    anonymous_id: str | None = None
    cart_stamp: str | None = None
    """The stamp of the cart it checked out (None: an attempt from before stamps)."""

    def of_cart(self, stamp: str) -> bool:
        """True unless the attempt checked out an earlier cart under the same id."""
        return self.cart_stamp is None or self.cart_stamp == stamp


def _row(m: Any) -> CheckoutRow:
    return CheckoutRow(
        id=m["id"],
        cart_id=m["cart_id"],
        attempt=int(m["attempt"]),
        status=CheckoutStatus(m["status"]),
        step=m["step"],
        lease_owner=m["lease_owner"],
        lease_until=float(m["lease_until"]),
        customer_id=m["customer_id"],
        region=m["region"],
        channel=m["channel"],
        quote=m["quote"],
        order_id=m["order_id"],
        error=m["error"],
        anonymous_id=m["anonymous_id"],
        cart_stamp=m["cart_stamp"],
    )


class CheckoutStore:
    """Reads and compare-and-set writes of ``ck_checkouts`` and ``ck_checkout_steps``."""

    def __init__(self, db: Database, clock: WallClock) -> None:
        self._db = db
        self._clock = clock

    def latest(self, cart_id: str, *, uow: UnitOfWork | None = None) -> CheckoutRow | None:
        """The cart's latest attempt (in *uow* when given)."""
        return self._one(_LATEST, {"cart_id": cart_id}, uow)

    def get(self, checkout_id: str, *, uow: UnitOfWork | None = None) -> CheckoutRow | None:
        """The attempt *checkout_id*."""
        return self._one(_GET, {"checkout_id": checkout_id}, uow)

    def _one(
        self, query: Any, params: dict[str, str], uow: UnitOfWork | None
    ) -> CheckoutRow | None:
        def read(u: UnitOfWork) -> Any:
            return u.session.execute(query, params).mappings().first()

        m = read(uow) if uow is not None else self._db.run(read, retry=True).value
        return None if m is None else _row(m)

    def insert(
        self,
        uow: UnitOfWork,
        row: CheckoutRow,
        *,
        lease_s: float,
    ) -> None:
        """Start attempt *row* in *uow*, leased to ``row.lease_owner`` (DuplicateError: taken).

        The row carries its priced quote (the snapshot) and its final status when
        the attempt ended before anything was held (a refusal recorded for replays).
        """
        now = self._clock()
        uow.session.execute(
            _INSERT,
            {
                "id": row.id,
                "cart_id": row.cart_id,
                "cart_stamp": row.cart_stamp,
                "attempt": row.attempt,
                "status": row.status.value,
                "step": row.step,
                "lease_owner": row.lease_owner,
                "lease_until": now + lease_s,
                "customer_id": row.customer_id,
                "anonymous_id": row.anonymous_id,
                "region": row.region,
                "channel": row.channel,
                "quote": row.quote,
                "order_id": None,
                "error": row.error,
                "created_at": now,
                "updated_at": now,
            },
        )
        self.log(uow, row.id, "started", "done")
        if row.status is not CheckoutStatus.RUNNING:
            self.log(uow, row.id, row.status.value, row.status.value, row.error)

    def advance(
        self,
        checkout_id: str,
        owner: str,
        *,
        lease_s: float,
        uow: UnitOfWork | None = None,
        **values: Any,
    ) -> bool:
        """Write *values* and renew the lease, if *owner* still holds it (the fence)."""
        now = self._clock()
        values["lease_until"] = now + lease_s
        values["updated_at"] = now
        stmt = _advance_statement(tuple(values))
        params = {"v_" + k: v for k, v in values.items()}
        params["checkout_id"] = checkout_id
        params["owner"] = owner
        if uow is not None:
            return bool(rowcount(uow.session.execute(stmt, params)))
        return bool(
            self._db.run(lambda u: rowcount(u.session.execute(stmt, params)), retry=True).value
        )

    def claim(self, row: CheckoutRow, owner: str, lease_s: float) -> bool:
        """Take over a stalled attempt whose lease ran out; exactly one claimant wins."""
        c = t.checkouts.c
        now = self._clock()
        stmt = (
            update(t.checkouts)
            .where(
                c.id == row.id,
                c.status == row.status.value,
                c.lease_until == row.lease_until,
                c.lease_until <= now,
            )
            .values(
                lease_owner=owner,
                lease_until=now + lease_s,
                status=CheckoutStatus.RUNNING.value,
                updated_at=now,
            )
        )
        return bool(self._db.run(lambda u: rowcount(u.session.execute(stmt)), retry=True).value)

    def claim_action(self, row: CheckoutRow, owner: str, lease_s: float) -> bool:
        """Resume an attempt paused for the customer's action; exactly one caller wins."""
        c = t.checkouts.c
        now = self._clock()
        stmt = (
            update(t.checkouts)
            .where(c.id == row.id, c.status == CheckoutStatus.ACTION_REQUIRED.value)
            .values(
                lease_owner=owner,
                lease_until=now + lease_s,
                status=CheckoutStatus.RUNNING.value,
                updated_at=now,
            )
        )
        return bool(self._db.run(lambda u: rowcount(u.session.execute(stmt)), retry=True).value)

    def stalled(self, limit: int) -> list[CheckoutRow]:
        """Active attempts whose lease (or action window) has run out, oldest first."""
        c = t.checkouts.c
        with self._db.unit_of_work() as uow:
            rows = (
                uow.session.execute(
                    select(t.checkouts)
                    .where(c.status.in_(_ACTIVE), c.lease_until <= self._clock())
                    .order_by(c.lease_until)
                    .limit(limit)
                )
                .mappings()
                .all()
            )
        return [_row(m) for m in rows]

    def unsettled(self, limit: int) -> list[CheckoutRow]:
        """Ended attempts whose cart, kept outside the database, is not closed or opened yet."""
        with self._db.unit_of_work() as uow:
            rows = uow.session.execute(_UNSETTLED, {"limit": limit}).mappings().all()
        return [_row(m) for m in rows]

    def settle(self, checkout_id: str, seen: str, step: str) -> bool:
        """Record that the attempt's cart was closed or opened again (step *seen* -> *step*)."""

        def work(uow: UnitOfWork) -> bool:
            now = self._clock()
            params = {"checkout_id": checkout_id, "seen": seen, "step": step, "now": now}
            if not rowcount(uow.session.execute(_SETTLE, params)):
                return False
            self.log(uow, checkout_id, step, "done")
            return True

        return bool(self._db.run(work, retry=True).value)

    def log(
        self, uow: UnitOfWork, checkout_id: str, step: str, outcome: str, detail: str | None = None
    ) -> None:
        """Append one entry to the attempt's step log."""
        uow.session.execute(
            _LOG,
            {
                "checkout_id": checkout_id,
                "step": step,
                "outcome": outcome,
                "detail": None if detail is None else detail[:200],
                "at": self._clock(),
            },
        )

    def steps(self, checkout_id: str) -> list[tuple[str, str, str | None]]:
        """The step log: (step, outcome, detail), oldest first."""
        s = t.checkout_steps.c
        with self._db.unit_of_work() as uow:
            return [
                (a, b, d)
                for a, b, d in uow.session.execute(
                    select(s.step, s.outcome, s.detail)
                    .where(s.checkout_id == checkout_id)
                    .order_by(s.id)
                )
            ]
