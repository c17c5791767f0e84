"""Allocations: ending a reservation (commit, release, expire, cancel) and shipping its units.

Every end is a compare-and-set on the reservation's status, and only the
transaction that moved it adjusts the stock counters, in (SKU, location)
order, so an end happens once however often it is asked for.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from sqlalchemy import and_, bindparam, update
from sqlalchemy.orm import Session

from commercekit.commerce._shared import check_id, rowcount
from commercekit.errors import ConflictError, InvalidInputError, InvalidStateError
from commercekit.repository import UnitOfWork

from . import _tables as t
from ._levels import StockLevels
from ._model import ReservationLine, ReservationStatus, sum_demand

__all__ = ["Allocations"]

_s, _r = t.stock.c, t.reservations.c
_MOVE = (
    update(t.reservations)
    .where(_r.id == bindparam("b_id"), _r.status == bindparam("b_from"))
    .values(status=bindparam("b_to"))
)
_ALLOCATE = (
    update(t.stock)
    .where(_s.sku == bindparam("b_sku"), _s.location == bindparam("b_location"))
    .values(reserved=_s.reserved - bindparam("b_qty"), allocated=_s.allocated + bindparam("b_qty"))
)


class Allocations(StockLevels):
    """Ending reservations and shipping allocated units (the inventory service's second half)."""

    def cancel_allocation(self, reservation_id: str, *, uow: UnitOfWork | None = None) -> bool:
        """Give back what a committed reservation still holds (an order cancelled); once only."""
        check_id(reservation_id, "reservation_id")

        def work(u: UnitOfWork) -> bool:
            return self._end(u.session, reservation_id, ReservationStatus.CANCELLED)

        return work(uow) if uow is not None else self._db.run(work, retry=True).value

    def ship(
        self, reservation_id: str, quantities: Mapping[str, int], *, uow: UnitOfWork | None = None
    ) -> None:
        """Take shipped units out of stock: on_hand and allocated both fall (partial is fine)."""
        check_id(reservation_id, "reservation_id")
        wanted = sum_demand(quantities)

        def work(u: UnitOfWork) -> None:
            s = u.session
            if self._status(s, reservation_id) is not ReservationStatus.COMMITTED:
                raise InvalidStateError(f"reservation {reservation_id!r} is not an allocation")
            lines = {(ln.sku, ln.location): ln for ln in self._lines(s, reservation_id)}
            rl = t.reservation_lines.c
            for sku, qty in wanted.items():
                left = qty
                for (line_sku, location), line in sorted(lines.items()):
                    if line_sku != sku or left == 0:
                        continue
                    take = min(left, line.qty - line.shipped)
                    if take <= 0:
                        continue
                    moved = rowcount(
                        s.execute(
                            update(t.reservation_lines)
                            .where(
                                rl.reservation_id == reservation_id,
                                rl.sku == sku,
                                rl.location == location,
                                rl.qty - rl.shipped >= take,
                            )
                            .values(shipped=rl.shipped + take)
                        )
                    )
                    if not moved:
                        raise ConflictError(f"{sku!r} of {reservation_id!r} shipped concurrently")
                    c = t.stock.c
                    s.execute(
                        update(t.stock)
                        .where(c.sku == sku, c.location == location)
                        .values(on_hand=c.on_hand - take, allocated=c.allocated - take)
                    )
                    left -= take
                if left:
                    raise InvalidInputError(
                        f"cannot ship {qty} of {sku!r}: only {qty - left} of it is left to ship"
                    )

        if uow is not None:
            work(uow)
        else:
            self._db.run(work, retry=True)

    def _end(
        self,
        s: Session,
        reservation_id: str,
        to: ReservationStatus,
        *,
        lines: Sequence[ReservationLine] | None = None,
    ) -> bool:
        """Move a reservation by compare-and-set and adjust the counters; False if not moved.

        *lines* (committing only): the reservation's lines as the caller holds them
        from :meth:`reserve_in`, which saves reading them back.
        """
        source = (
            ReservationStatus.COMMITTED
            if to is ReservationStatus.CANCELLED
            else ReservationStatus.LIVE
        )
        params = {"b_id": reservation_id, "b_from": source.value, "b_to": to.value}
        if not rowcount(s.execute(_MOVE, params)):
            return False
        held = lines if lines is not None and to is ReservationStatus.COMMITTED else None
        ordered = sorted(
            held if held is not None else self._lines(s, reservation_id),
            key=lambda ln: (ln.sku, ln.location),
        )
        if to is ReservationStatus.COMMITTED:
            # one batch: the rows in (SKU, location) order, as everywhere
            s.execute(
                _ALLOCATE,
                [{"b_sku": ln.sku, "b_location": ln.location, "b_qty": ln.qty} for ln in ordered],
            )
            return True
        c = t.stock.c
        for line in ordered:
            where = and_(c.sku == line.sku, c.location == line.location)
            if to is ReservationStatus.CANCELLED:
                values = {"allocated": c.allocated - (line.qty - line.shipped)}
            else:
                values = {"reserved": c.reserved - line.qty}
            s.execute(update(t.stock).where(where).values(**values))
        return True
