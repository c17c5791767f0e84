"""What every commerce service shares: the schema's metadata, the clock type, input checks.

Each service declares its own tables on :data:`metadata` (one schema, so one
``create_all`` and one Alembic history), and only that service's modules read
or write them: the others go through its public interface.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable
from typing import Any

from sqlalchemy import MetaData
from sqlalchemy.engine import CursorResult

from commercekit.errors import InvalidInputError, InvalidStateError, UnsupportedTypeError

__all__ = [
    "MAX_QUANTITY",
    "Clock",
    "check_id",
    "check_quantity",
    "metadata",
    "new_id",
    "rowcount",
    "wall_clock",
]

Clock = Callable[[], float]
"""Wall-clock seconds since the epoch (``time.time``); injected so tests never sleep."""

wall_clock: Clock = time.time

MAX_QUANTITY = 10_000
"""The largest quantity of one SKU in one cart line, reservation or order line."""

metadata = MetaData(
    naming_convention={
        "ix": "ix_%(column_0_label)s",
        "uq": "uq_%(table_name)s_%(column_0_name)s",
        "ck": "%(table_name)s_%(constraint_name)s",
        "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
        "pk": "pk_%(table_name)s",
    }
)
"""The commerce schema: every service's tables (``ck_`` prefix), for ``create_all`` and Alembic."""


def new_id() -> str:
    """A fresh random identifier (32 hex digits)."""
    return uuid.uuid4().hex


def check_id(value: object, what: str, *, max_len: int = 64) -> str:
    """Refuse anything but a non-empty printable str of at most *max_len* characters."""
    if not isinstance(value, str):
        raise UnsupportedTypeError(f"{what} must be a str, not {type(value).__name__}")
    if not value or len(value) > max_len or not value.isprintable():
        raise InvalidInputError(
            f"{what} {value[:80]!r} must be 1 to {max_len} printable characters"
        )
    return value


def check_quantity(value: object, what: str = "quantity", *, allow_zero: bool = False) -> int:
    """Refuse a quantity that is not an int in 1..MAX_QUANTITY (0 too when *allow_zero*)."""
    if isinstance(value, bool) or not isinstance(value, int):
        raise UnsupportedTypeError(f"{what} must be an int, not {type(value).__name__}")
    low = 0 if allow_zero else 1
    if value < low or value > MAX_QUANTITY:
        raise InvalidInputError(f"{what} {value} is out of range: use {low} to {MAX_QUANTITY}")
    return value


def rowcount(result: Any) -> int:
    """The number of rows an UPDATE or DELETE matched (changed, on MySQL; we always change)."""
    if not isinstance(result, CursorResult):
        raise InvalidStateError(f"rowcount() needs a CursorResult, not {type(result).__name__}")
    return int(result.rowcount)
