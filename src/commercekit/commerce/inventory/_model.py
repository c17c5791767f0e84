"""The inventory service's values: stock levels, reservations, the invariant report."""

from __future__ import annotations

import enum
from collections.abc import Iterable, Mapping

import attrs

from commercekit.commerce._shared import check_id, check_quantity
from commercekit.errors import InvalidInputError

__all__ = [
    "DEFAULT_LOCATION",
    "Drift",
    "InventoryReport",
    "Reservation",
    "ReservationLine",
    "ReservationStatus",
    "StockLevel",
    "sum_demand",
]

DEFAULT_LOCATION = "default"
"""The location used when none is named."""


class ReservationStatus(enum.Enum):
    """Where a reservation is: live, then released, expired or committed (then maybe cancelled)."""

    LIVE = "live"
    RELEASED = "released"
    EXPIRED = "expired"
    COMMITTED = "committed"
    CANCELLED = "cancelled"


@attrs.frozen
class StockLevel:
    """One stock row: what is on hand, allocated to orders and reserved by checkouts."""

    sku: str
    location: str
    on_hand: int
    allocated: int
    reserved: int

    @property
    def available(self) -> int:
        """What a new reservation may take: on hand less allocated less reserved."""
        return self.on_hand - self.allocated - self.reserved


@attrs.frozen
class ReservationLine:
    """The quantity of one SKU a reservation holds at one location (and how much has shipped)."""

    sku: str
    location: str
    qty: int
    shipped: int = 0


@attrs.frozen
class Reservation:
    """A reservation (or, once committed, an allocation) of stock for one checkout."""

    id: str
    status: ReservationStatus
    expires_at: float
    lines: tuple[ReservationLine, ...]
    replayed: bool = False

    def quantities(self) -> dict[str, int]:
        """The quantity per SKU, summed over locations."""
        out: dict[str, int] = {}
        for line in self.lines:
            out[line.sku] = out.get(line.sku, 0) + line.qty
        return out


@attrs.frozen
class Drift:
    """One stock row whose counters disagree with the reservation ledger (or break a rule)."""

    sku: str
    location: str
    problem: str
    stored: int
    expected: int


@attrs.frozen
class InventoryReport:
    """What :meth:`Inventory.verify` found: rows checked and every drift."""

    rows: int
    live_reservations: int
    drift: tuple[Drift, ...]

    @property
    def ok(self) -> bool:
        """True when every invariant holds."""
        return not self.drift


def sum_demand(demand: Mapping[str, int] | Iterable[tuple[str, int]]) -> dict[str, int]:
    """Check a basket's demand and sum it per SKU (a bundle of two lines of one SKU is one row).

    Returns the SKUs in sorted order, the order their rows are touched in.
    """
    items = demand.items() if isinstance(demand, Mapping) else demand
    total: dict[str, int] = {}
    for sku, qty in items:
        check_id(sku, "sku")
        check_quantity(qty)
        total[sku] = total.get(sku, 0) + qty
    if not total:
        raise InvalidInputError("a reservation needs at least one line")
    for sku, qty in total.items():
        check_quantity(qty, f"the total quantity of {sku!r}")
    return dict(sorted(total.items()))
