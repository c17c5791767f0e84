"""Stock levels: setting, adjusting (once per key) and reading them; shared row helpers."""

from __future__ import annotations

from collections.abc import Iterable, Mapping

from sqlalchemy import bindparam, func, select, update
from sqlalchemy.orm import Session

from commercekit.commerce._instruments import CommerceInstruments
from commercekit.commerce._shared import (
    check_id,
    check_quantity,
    chunked,
    rowcount,
    wall_clock,
)
from commercekit.errors import (
    DuplicateError,
    InvalidInputError,
    InvalidStateError,
    UnknownSkuError,
    UnsupportedTypeError,
)
from commercekit.metrics import Metrics
from commercekit.repository import Database, TokenLike, UnitOfWork
from commercekit.typing import WallClock

from . import _tables as t
from ._model import (
    DEFAULT_LOCATION,
    ReservationLine,
    ReservationStatus,
    StockLevel,
    sum_demand,
)

__all__ = ["StockLevels"]


_AVAILABLE = (  # built once: SQLAlchemy keys its cache once per statement
    select(t.stock.c.sku, func.sum(t.stock.c.on_hand - t.stock.c.allocated - t.stock.c.reserved))
    .where(t.stock.c.sku.in_(bindparam("skus", expanding=True)))
    .group_by(t.stock.c.sku)
)


_AVAILABLE_AT = select(
    t.stock.c.sku, t.stock.c.on_hand - t.stock.c.allocated - t.stock.c.reserved
).where(
    t.stock.c.sku.in_(bindparam("skus", expanding=True)),
    t.stock.c.location == bindparam("location"),
)


class StockLevels:
    """Stock rows of the inventory service; :class:`Inventory` adds reservations."""

    def __init__(
        self,
        db: Database,
        *,
        metrics: Metrics | CommerceInstruments | None = None,
        clock: WallClock = wall_clock,
        reservation_ttl_s: float = 900.0,
    ) -> None:
        if reservation_ttl_s <= 0:
            raise InvalidInputError("reservation_ttl_s must be positive")
        self._db = db
        self._m = (
            metrics if isinstance(metrics, CommerceInstruments) else CommerceInstruments(metrics)
        )
        self._clock = clock
        self._ttl_s = reservation_ttl_s

    # -- stock levels -----------------------------------------------------------------

    def set_stock(self, sku: str, on_hand: int, *, location: str = DEFAULT_LOCATION) -> None:
        """Set what is on hand for *sku* at *location* (creating the row); never below what is held.

        Use :meth:`adjust` for counted receipts and returns (idempotent by key).
        """
        check_id(sku, "sku")
        check_id(location, "location")
        check_quantity(on_hand, "on_hand", allow_zero=True)

        def work(uow: UnitOfWork) -> None:
            s = uow.session
            changed = rowcount(
                s.execute(
                    update(t.stock)
                    .where(
                        t.stock.c.sku == sku,
                        t.stock.c.location == location,
                        t.stock.c.allocated + t.stock.c.reserved <= on_hand,
                    )
                    .values(on_hand=on_hand)
                )
            )
            if changed:
                return
            if self._level(s, sku, location) is not None:
                raise InvalidStateError(
                    f"cannot set {sku!r} at {location!r} to {on_hand}: more than that is "
                    "allocated or reserved"
                )
            s.execute(
                t.stock.insert().values(
                    sku=sku, location=location, on_hand=on_hand, allocated=0, reserved=0
                )
            )

        self._db.run(work, retry=True)

    def adjust(self, sku: str, delta: int, *, key: str, location: str = DEFAULT_LOCATION) -> bool:
        """Add *delta* (negative: take away) to what is on hand, once per *key*.

        For receipts, counts and returns (restock). Returns False when *key* was
        applied already. A negative delta never takes away what is held.
        """
        check_id(sku, "sku")
        check_id(location, "location")
        check_id(key, "key", max_len=128)
        if isinstance(delta, bool) or not isinstance(delta, int) or delta == 0:
            raise InvalidInputError(f"delta must be a non-zero int, not {delta!r}")
        check_quantity(abs(delta), "the size of delta")

        def work(uow: UnitOfWork) -> bool:
            s = uow.session
            if s.execute(select(t.moves.c.key).where(t.moves.c.key == key)).first():
                return False
            s.execute(
                t.moves.insert().values(
                    key=key, sku=sku, location=location, delta=delta, at=self._clock()
                )
            )
            changed = rowcount(
                s.execute(
                    update(t.stock)
                    .where(
                        t.stock.c.sku == sku,
                        t.stock.c.location == location,
                        t.stock.c.on_hand + delta >= t.stock.c.allocated + t.stock.c.reserved,
                    )
                    .values(on_hand=t.stock.c.on_hand + delta)
                )
            )
            if changed:
                return True
            if self._level(s, sku, location) is not None:
                raise InvalidStateError(
                    f"cannot take {-delta} of {sku!r} at {location!r}: it is allocated or reserved"
                )
            if delta < 0:
                raise UnknownSkuError(f"no stock of {sku!r} at {location!r}")
            s.execute(
                t.stock.insert().values(
                    sku=sku, location=location, on_hand=delta, allocated=0, reserved=0
                )
            )
            return True

        try:
            return self._db.run(work, retry=True).value
        except DuplicateError:
            return False  # a concurrent call with the same key applied it

    def level(self, sku: str, *, location: str = DEFAULT_LOCATION) -> StockLevel:
        """The stock row of *sku* at *location* (read on the primary)."""
        check_id(sku, "sku")
        found = self._db.run(lambda u: self._level(u.session, sku, location), retry=True).value
        if found is None:
            raise UnknownSkuError(f"no stock of {sku!r} at {location!r}")
        return found

    def available(self, sku: str) -> int:
        """What can still be reserved of *sku*, summed over locations (0 if none is stocked)."""
        check_id(sku, "sku")
        c = t.stock.c
        query = select(func.coalesce(func.sum(c.on_hand - c.allocated - c.reserved), 0)).where(
            c.sku == sku
        )
        return int(self._db.run(lambda u: u.session.execute(query).scalar_one(), retry=True).value)

    def available_many(
        self,
        skus: Iterable[str],
        *,
        location: str | None = None,
        token: TokenLike = None,
    ) -> dict[str, int]:
        """What can still be reserved of each of *skus*, in one read: ``{sku: quantity}``.

        For catalog and listing pages: one query for up to 500 SKUs (a longer
        list is read 500 at a time, in one unit of work, so the ``IN (...)``
        list stays portable across SQLite, PostgreSQL and MariaDB). Summed
        over locations, or at *location* only. Every asked SKU is a key, in
        the order asked (duplicates once); one with no stock row reads 0.

        The read may be served by a replica (pass the *token* of a stock
        change to read at least that far): it is a display figure, and only
        :meth:`reserve`'s guarded UPDATE decides. Expired reservations not yet
        reclaimed count as held until a reserve or :meth:`sweep` reclaims them.
        """
        if isinstance(skus, str):
            raise UnsupportedTypeError("skus must be an iterable of SKUs, not one str")
        wanted = list(dict.fromkeys(check_id(s, "sku") for s in skus))
        if location is not None:
            check_id(location, "location")
        if not wanted:
            return {}

        got = self._db.run(
            lambda u: self._available(u.session, wanted, location), read_only=True, token=token
        ).value
        return {s: got.get(s, 0) for s in wanted}

    def first_short(
        self,
        demand: Mapping[str, int] | Iterable[tuple[str, int]],
        *,
        uow: UnitOfWork | None = None,
    ) -> str | None:
        """The first SKU of *demand* with less available (summed over locations) than asked.

        A cheap read that lets a checkout refuse a sold-out basket before it
        starts; only :meth:`reserve`'s guarded UPDATE decides.
        """
        wanted = sum_demand(demand)

        def read(u: UnitOfWork) -> dict[str, int]:
            return self._available(u.session, list(wanted), None)

        got = read(uow) if uow is not None else self._db.run(read, retry=True).value
        return next((s for s, q in wanted.items() if got.get(s, 0) < q), None)

    # -- row helpers ---

    @staticmethod
    def _available(s: Session, skus: list[str], location: str | None) -> dict[str, int]:
        """Available per SKU of *skus* that has a stock row, chunked for portable IN lists."""
        got: dict[str, int] = {}
        for part in chunked(sorted(skus)):
            if location is None:
                rows = s.execute(_AVAILABLE, {"skus": list(part)})
            else:
                rows = s.execute(_AVAILABLE_AT, {"skus": list(part), "location": location})
            got.update((sku, int(q or 0)) for sku, q in rows)
        return got

    @staticmethod
    def _status(s: Session, reservation_id: str) -> ReservationStatus | None:
        r = t.reservations.c
        value = s.execute(select(r.status).where(r.id == reservation_id)).scalar_one_or_none()
        return None if value is None else ReservationStatus(value)

    @staticmethod
    def _lines(s: Session, reservation_id: str) -> list[ReservationLine]:
        rl = t.reservation_lines.c
        rows = s.execute(
            select(rl.sku, rl.location, rl.qty, rl.shipped)
            .where(rl.reservation_id == reservation_id)
            .order_by(rl.sku, rl.location)
        ).all()
        return [ReservationLine(a, b, int(q), int(sh)) for a, b, q, sh in rows]

    @staticmethod
    def _level(s: Session, sku: str, location: str) -> StockLevel | None:
        c = t.stock.c
        row = s.execute(
            select(c.on_hand, c.allocated, c.reserved).where(c.sku == sku, c.location == location)
        ).first()
        if row is None:
            return None
        return StockLevel(sku, location, int(row[0]), int(row[1]), int(row[2]))
