"""``verify_inventory``: check every stock row against the reservation ledger and report drift.

For each (SKU, location) row:

* ``on_hand >= allocated + reserved`` and no counter below zero;
* ``reserved`` equals the sum of the live reservations' lines;
* ``allocated`` equals what committed reservations still hold (quantity less shipped);
* every (SKU, location) the ledger holds stock of has a stock row ("no stock row",
  expecting what is reserved and allocated there).

Run it from a cron job or after every test; it reads, it never repairs.
"""

from __future__ import annotations

from sqlalchemy import func, select

from commercekit.repository import Database

from . import _tables as t
from ._model import Drift, InventoryReport, ReservationStatus

__all__ = ["verify_inventory"]


def verify_inventory(db: Database) -> InventoryReport:
    """Check the invariants of every stock row in *db*; see the module docstring."""
    c, r, rl = t.stock.c, t.reservations.c, t.reservation_lines.c
    with db.unit_of_work() as uow:
        s = uow.session
        rows = s.execute(select(c.sku, c.location, c.on_hand, c.allocated, c.reserved)).all()

        def held(status: ReservationStatus) -> dict[tuple[str, str], int]:
            query = (
                select(rl.sku, rl.location, func.sum(rl.qty - rl.shipped))
                .join(t.reservations, r.id == rl.reservation_id)
                .where(r.status == status.value)
                .group_by(rl.sku, rl.location)
            )
            return {(a, b): int(n) for a, b, n in s.execute(query)}

        reserved = held(ReservationStatus.LIVE)
        allocated = held(ReservationStatus.COMMITTED)
        live = s.execute(
            select(func.count())
            .select_from(t.reservations)
            .where(r.status == ReservationStatus.LIVE.value)
        ).scalar_one()
    drift: list[Drift] = []
    seen: set[tuple[str, str]] = set()
    for sku, location, on_hand, alloc, res in rows:
        key = (sku, location)
        seen.add(key)
        if min(on_hand, alloc, res) < 0 or alloc + res > on_hand:
            drift.append(Drift(sku, location, "oversold", on_hand, alloc + res))
        if res != reserved.get(key, 0):
            drift.append(Drift(sku, location, "reserved", res, reserved.get(key, 0)))
        if alloc != allocated.get(key, 0):
            drift.append(Drift(sku, location, "allocated", alloc, allocated.get(key, 0)))
    for key in sorted((set(reserved) | set(allocated)) - seen):
        held_here = reserved.get(key, 0) + allocated.get(key, 0)  # what the ledger holds
        drift.append(Drift(key[0], key[1], "no stock row", 0, held_here))
    return InventoryReport(rows=len(rows), live_reservations=int(live), drift=tuple(drift))
