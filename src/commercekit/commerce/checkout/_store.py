"""The checkout rows: start an attempt, move its lease, log its steps (all compare-and-set)."""

from __future__ import annotations

from typing import Any

import attrs
from sqlalchemy import select, update

from commercekit.commerce._shared import Clock, rowcount
from commercekit.repository import Database, UnitOfWork

from . import _tables as t
from ._model import CheckoutStatus

__all__ = ["CheckoutRow", "CheckoutStore"]

_ACTIVE = (CheckoutStatus.RUNNING.value, CheckoutStatus.ACTION_REQUIRED.value)


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
    )


class CheckoutStore:
    """Reads and compare-and-set writes of ``ck_checkouts`` and ``ck_checkout_steps``."""

    def __init__(self, db: Database, clock: Clock) -> None:
        self._db = db
        self._clock = clock

    def latest(self, cart_id: str) -> CheckoutRow | None:
        """The cart's latest attempt."""
        c = t.checkouts.c
        query = select(t.checkouts).where(c.cart_id == cart_id).order_by(c.attempt.desc()).limit(1)
        m = self._db.run(lambda u: u.session.execute(query).mappings().first(), retry=True).value
        return None if m is None else _row(m)

    def get(self, checkout_id: str, *, uow: UnitOfWork | None = None) -> CheckoutRow | None:
        """The attempt *checkout_id*."""
        query = select(t.checkouts).where(t.checkouts.c.id == checkout_id)
        if uow is not None:
            m = uow.session.execute(query).mappings().first()
        else:
            m = self._db.run(
                lambda u: u.session.execute(query).mappings().first(), retry=True
            ).value
        return None if m is None else _row(m)

    def insert(
        self,
        checkout_id: str,
        cart_id: str,
        attempt: int,
        *,
        owner: str,
        lease_s: float,
        customer_id: str | None,
        region: str,
        channel: str,
    ) -> None:
        """Start attempt *attempt* of the cart, leased to *owner* (DuplicateError: taken)."""
        now = self._clock()

        def work(uow: UnitOfWork) -> None:
            uow.session.execute(
                t.checkouts.insert().values(
                    id=checkout_id,
                    cart_id=cart_id,
                    attempt=attempt,
                    status=CheckoutStatus.RUNNING.value,
                    step="started",
                    lease_owner=owner,
                    lease_until=now + lease_s,
                    customer_id=customer_id,
                    region=region,
                    channel=channel,
                    quote=None,
                    order_id=None,
                    error=None,
                    created_at=now,
                    updated_at=now,
                )
            )
            self.log(uow, checkout_id, "started", "done")

        self._db.run(work, retry=True)

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
        c = t.checkouts.c
        now = self._clock()
        stmt = (
            update(t.checkouts)
            .where(c.id == checkout_id, c.lease_owner == owner)
            .values(lease_until=now + lease_s, updated_at=now, **values)
        )
        if uow is not None:
            return bool(rowcount(uow.session.execute(stmt)))
        return bool(self._db.run(lambda u: rowcount(u.session.execute(stmt)), retry=True).value)

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

    def log(
        self, uow: UnitOfWork, checkout_id: str, step: str, outcome: str, detail: str | None = None
    ) -> None:
        """Append one entry to the attempt's step log."""
        uow.session.execute(
            t.checkout_steps.insert().values(
                checkout_id=checkout_id,
                step=step,
                outcome=outcome,
                detail=None if detail is None else detail[:200],
                at=self._clock(),
            )
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
