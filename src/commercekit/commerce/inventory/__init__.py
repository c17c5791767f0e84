"""The inventory service: stock per (SKU, location), reservations with expiry, allocations.

See ``docs/commerce.md`` ("Inventory").
"""

from ._model import (
    DEFAULT_LOCATION,
    Drift,
    InventoryReport,
    Reservation,
    ReservationLine,
    ReservationStatus,
    StockLevel,
    sum_demand,
)
from ._service import Inventory
from ._verify import verify_inventory

__all__ = [
    "DEFAULT_LOCATION",
    "Drift",
    "Inventory",
    "InventoryReport",
    "Reservation",
    "ReservationLine",
    "ReservationStatus",
    "StockLevel",
    "sum_demand",
    "verify_inventory",
]
