"""What every commerce service shares: the schema's metadata, the clock type, input checks.

Each service declares its own tables on :data:`metadata` (one schema, so one
``create_all`` and one Alembic history), and only that service's modules read
or write them: the others go through its public interface.
"""

from __future__ import annotations

import random
import time
import uuid
from collections.abc import Iterator, Sequence
from typing import Any, TypeVar

from sqlalchemy import MetaData
from sqlalchemy.engine import CursorResult

from commercekit._retry import RetryPolicy
from commercekit.errors import InvalidInputError, InvalidStateError, UnsupportedTypeError
from commercekit.typing import WallClock

__all__ = [
    "IN_LIST_MAX",
    "MAX_QUANTITY",
    "Clock",
    "check_id",
    "check_quantity",
    "chunked",
    "conflict_backoff_s",
    "metadata",
    "new_id",
    "rowcount",
    "wall_clock",
]

Clock = WallClock
"""Kept as a name for :data:`commercekit.typing.WallClock`, the one wall-clock type."""

wall_clock: WallClock = time.time

_T = TypeVar("_T")

IN_LIST_MAX = 500
"""The most values one ``IN (...)`` list binds: far below SQLite's 999 bound
parameters (older builds), PostgreSQL's 65,535 and MariaDB's packet limits, so
one statement shape works on all three; longer lists are read in chunks."""

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


_CONFLICT_WAITS = RetryPolicy(initial_wait_s=0.001, max_wait_s=0.05)
_CONFLICT_RNG = random.Random()


def conflict_backoff_s(attempt: int) -> float:
    """A full-jitter wait before retry *attempt* (0-based) of a write that lost a race.

    The project's one retry wait (:meth:`RetryPolicy.wait_s`): at most 1 ms,
    doubling to at most 50 ms, so writers that keep colliding spread out.
    """
    return _CONFLICT_WAITS.wait_s(attempt + 1, None, _CONFLICT_RNG)


def new_id() -> str:
    """A fresh random identifier (32 hex digits)."""
    return uuid.uuid4().hex


def chunked(items: Sequence[_T], size: int | None = None) -> Iterator[Sequence[_T]]:
    """*items* in consecutive slices of at most *size* (default :data:`IN_LIST_MAX`)."""
    if size is None:
        size = IN_LIST_MAX  # read at call time, so a test can make chunks small
    if size < 1:
        raise InvalidInputError(f"chunk size {size} must be at least 1")
    for start in range(0, len(items), size):
        yield items[start : start + size]


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
