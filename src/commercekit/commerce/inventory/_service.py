"""``Inventory``: stock per (SKU, location), reservations with expiry, allocations.

The oversell guard is one guarded conditional UPDATE per stock row::

    UPDATE ck_stock SET reserved = reserved + :q
     WHERE sku = :sku AND location = :loc AND on_hand - allocated - reserved >= :q

It is atomic on every engine (PostgreSQL re-checks the WHERE after waiting for
the row lock, InnoDB evaluates it on the latest committed row, SQLite runs
writers one at a time with ``BEGIN IMMEDIATE``), so no read-then-write window
exists, and the CHECK constraint backs it. Demand is summed per SKU first, and
rows are always touched in (SKU, location) order after the reservation's own
row, so two baskets never wait on each other in a cycle. Reserve, release and
commit are idempotent per reservation id: the reservation row's status moves
by compare-and-set, and only the transaction that moved it touches the
counters.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence

from sqlalchemy import bindparam, select, update
from sqlalchemy.orm import Session

from commercekit.commerce._shared import check_id, chunked, rowcount
from commercekit.errors import (
    ConflictError,
    DuplicateError,
    InvalidInputError,
    InvalidStateError,
    NotFoundError,
    OutOfStockError,
    UnknownSkuError,
    UnsupportedTypeError,
)
from commercekit.repository import UnitOfWork

from . import _tables as t
from ._allocations import Allocations
from ._model import (
    InventoryReport,
    Reservation,
    ReservationLine,
    ReservationStatus,
    sum_demand,
)
from ._verify import verify_inventory

__all__ = ["Inventory"]

_LIVE = ReservationStatus.LIVE.value

# The checkout's statements, built once (bound parameters; SQLAlchemy keys its cache once).
_s, _r = t.stock.c, t.reservations.c
_INSERT_RESERVATION = t.reservations.insert()
_INSERT_LINES = t.reservation_lines.insert()
_LOCATIONS = (
    select(_s.sku, _s.location)
    .where(_s.sku.in_(bindparam("skus", expanding=True)))
    .order_by(_s.sku, _s.location)
)
_TAKE = (
    update(t.stock)
    .where(
        _s.sku == bindparam("b_sku"),
        _s.location == bindparam("b_location"),
        _s.on_hand - _s.allocated - _s.reserved >= bindparam("b_qty"),
    )
    .values(reserved=_s.reserved + bindparam("b_qty"))
)


class Inventory(Allocations):
    """The inventory service. See the module docstring.

    *reservation_ttl_s* is how long a reservation holds stock unless it is
    committed or released; expired ones are reclaimed lazily (when a reserve
    finds a SKU short) and by :meth:`sweep`.
    """

    # -- reservations -----------------------------------------------------------------

    def reserve(
        self,
        reservation_id: str,
        demand: Mapping[str, int] | Iterable[tuple[str, int]],
        *,
        ttl_s: float | None = None,
    ) -> Reservation:
        """Reserve *demand* (SKU -> quantity) under *reservation_id*, all or nothing.

        Raises :class:`OutOfStockError` (nothing reserved) when a SKU is short,
        :class:`UnknownSkuError` when a SKU has no stock row. Calling it again
        with the same id and demand returns the same reservation
        (``replayed=True``); with another demand, :class:`ConflictError`.
        """
        check_id(reservation_id, "reservation_id")
        wanted = sum_demand(demand)
        ttl = self._ttl_s if ttl_s is None else ttl_s
        if ttl <= 0:
            raise InvalidInputError("ttl_s must be positive")
        for attempt in range(2):
            try:
                reservation = self._db.run(
                    lambda uow: self._reserve(uow.session, reservation_id, wanted, ttl),
                    retry=True,
                ).value
            except DuplicateError:
                reservation = None  # another call with this id won the insert: replay it
            except OutOfStockError:
                if attempt == 0 and self.sweep(skus=list(wanted)):
                    continue  # expired reservations gave stock back: try once more
                self._m.count("reservations_total", "refused")
                self._m.count("oversell_refusals_total")
                raise
            if reservation is None:
                return self._replay(reservation_id, wanted)
            self._m.count("reservations_total", "made")
            return reservation
        raise AssertionError("unreachable")  # pragma: no cover

    def reserve_in(
        self,
        uow: UnitOfWork,
        reservation_id: str,
        demand: Mapping[str, int] | Iterable[tuple[str, int]],
        *,
        ttl_s: float | None = None,
    ) -> Reservation:
        """Reserve *demand* under a new *reservation_id* in the caller's unit of work.

        For a caller whose own row starts in the same transaction (the checkout's
        attempt): the reservation commits or rolls back with it. Raises
        :class:`OutOfStockError` (roll the unit of work back; after :meth:`sweep`
        gave stock back, a new one may try again), :class:`DuplicateError` when
        the id is taken, :class:`UnknownSkuError` for a SKU with no stock row.
        """
        check_id(reservation_id, "reservation_id")
        wanted = sum_demand(demand)
        ttl = self._ttl_s if ttl_s is None else ttl_s
        if ttl <= 0:
            raise InvalidInputError("ttl_s must be positive")
        try:
            reservation = self._reserve(uow.session, reservation_id, wanted, ttl, fresh=True)
        except OutOfStockError:
            self._m.count("reservations_total", "refused")
            self._m.count("oversell_refusals_total")
            raise
        if reservation is None:  # pragma: no cover - fresh=True never replays
            raise DuplicateError(f"reservation {reservation_id!r} exists already")
        self._m.count("reservations_total", "made")
        return reservation

    def _replay(self, reservation_id: str, wanted: dict[str, int]) -> Reservation:
        found = self.reservation(reservation_id)
        if found is None:  # pragma: no cover - the winner's row is committed
            raise ConflictError(f"reservation {reservation_id!r} is being written; retry")
        if found.quantities() != wanted:
            raise ConflictError(
                f"reservation {reservation_id!r} exists with other quantities; "
                "use a new reservation id for a new basket"
            )
        self._m.count("reservations_total", "replayed")
        return Reservation(found.id, found.status, found.expires_at, found.lines, replayed=True)

    def _reserve(
        self,
        s: Session,
        reservation_id: str,
        wanted: dict[str, int],
        ttl_s: float,
        *,
        fresh: bool = False,
    ) -> Reservation | None:
        # *fresh*: the id is new (the caller's own row is written in this transaction;
        # a taken id fails the insert below with DuplicateError), so skip the lookup.
        if (
            not fresh
            and s.execute(
                select(t.reservations.c.id).where(t.reservations.c.id == reservation_id)
            ).first()
        ):
            return None
        now = self._clock()
        # The reservation's own row first: a second caller with the same id waits
        # here (unique key), before it touches any stock row.
        s.execute(
            _INSERT_RESERVATION,
            {"id": reservation_id, "status": _LIVE, "expires_at": now + ttl_s, "created_at": now},
        )
        locations: dict[str, list[str]] = {}
        for part in chunked(list(wanted)):  # a wholesale basket: portable IN lists
            for sku, location in s.execute(_LOCATIONS, {"skus": list(part)}):
                locations.setdefault(sku, []).append(location)
        lines: list[ReservationLine] = []
        for sku, qty in wanted.items():  # sorted by SKU; locations sorted within
            if sku not in locations:
                raise UnknownSkuError(f"no stock row for SKU {sku!r}: it cannot be reserved")
            for location in locations[sku]:
                if self._take(s, sku, location, qty):
                    lines.append(ReservationLine(sku, location, qty))
                    break
            else:
                raise OutOfStockError(
                    f"{sku!r} is sold out: fewer than {qty} left at every location", sku=sku
                )
        s.execute(
            _INSERT_LINES,
            [
                {
                    "reservation_id": reservation_id,
                    "sku": ln.sku,
                    "location": ln.location,
                    "qty": ln.qty,
                    "shipped": 0,
                }
                for ln in lines
            ],
        )
        return Reservation(reservation_id, ReservationStatus.LIVE, now + ttl_s, tuple(lines))

    @staticmethod
    def _take(s: Session, sku: str, location: str, qty: int) -> bool:
        params = {"b_sku": sku, "b_location": location, "b_qty": qty}
        return bool(rowcount(s.execute(_TAKE, params)))

    def release(self, reservation_id: str, *, uow: UnitOfWork | None = None) -> bool:
        """Give a live reservation's stock back; False if it was not live (idempotent).

        Pass *uow* to do it inside the caller's transaction.
        """
        check_id(reservation_id, "reservation_id")

        def work(u: UnitOfWork) -> bool:
            return self._end(u.session, reservation_id, ReservationStatus.RELEASED)

        done = work(uow) if uow is not None else self._db.run(work, retry=True).value
        if done:
            self._m.count("reservation_releases_total", "released")
        return done

    def commit(
        self,
        reservation_id: str,
        *,
        uow: UnitOfWork | None = None,
        lines: Sequence[ReservationLine] | None = None,
    ) -> bool:
        """Turn a live reservation into an allocation (its stock stays held for the order).

        Pass *uow* to do it inside the caller's transaction (the order's).
        Returns False when it is committed already; raises
        :class:`InvalidStateError` when it was released or expired meanwhile.
        """
        check_id(reservation_id, "reservation_id")

        def work(u: UnitOfWork) -> bool:
            if self._end(u.session, reservation_id, ReservationStatus.COMMITTED, lines=lines):
                return True
            status = self._status(u.session, reservation_id)
            if status is ReservationStatus.COMMITTED:
                return False
            raise InvalidStateError(
                f"reservation {reservation_id!r} is {status.value if status else 'unknown'}: "
                "its stock is no longer held, reserve again"
            )

        done = work(uow) if uow is not None else self._db.run(work, retry=True).value
        if done:
            self._m.count("reservation_releases_total", "committed")
        return done

    # -- expiry ------------------------------------------------------------------------

    def sweep(self, *, limit: int = 500, skus: Sequence[str] | None = None) -> int:
        """Expire up to *limit* live reservations past their time; return how many were reclaimed.

        Safe to run from several workers at once: each reservation is expired
        by one compare-and-set, in its own short transaction. With *skus*,
        only reservations holding one of them, the oldest first; a long list
        is read 500 SKUs a statement, in one unit of work, so the ``IN (...)``
        list stays portable across SQLite, PostgreSQL and MariaDB.
        """
        if isinstance(skus, str):
            raise UnsupportedTypeError("skus must be a sequence of SKUs, not one str")
        r = t.reservations.c
        query = select(r.id, r.expires_at).where(r.status == _LIVE, r.expires_at < self._clock())
        parts: list[Sequence[str]] = [()]
        if skus:
            rl = t.reservation_lines.c
            wanted = sorted({check_id(s, "sku") for s in skus})
            held = select(rl.reservation_id).where(rl.sku.in_(bindparam("skus", expanding=True)))
            query = query.where(r.id.in_(held))
            parts = list(chunked(wanted))
        query = query.order_by(r.expires_at, r.id).limit(limit)

        def oldest(uow: UnitOfWork) -> list[str]:
            found: dict[str, float] = {}
            for part in parts:  # each chunk's oldest *limit*: the oldest overall are among them
                params = {"skus": list(part)} if part else {}
                found.update((rid, float(at)) for rid, at in uow.session.execute(query, params))
            return sorted(found, key=lambda rid: (found[rid], rid))[:limit]

        ids = self._db.run(oldest, retry=True).value
        done = 0
        for reservation_id in ids:
            if self._expire(reservation_id):
                done += 1
        if done:
            self._m.count("reservation_releases_total", "expired", amount=done)
        return done

    def _expire(self, reservation_id: str) -> bool:
        def work(uow: UnitOfWork) -> bool:
            return self._end(uow.session, reservation_id, ReservationStatus.EXPIRED)

        return self._db.run(work, retry=True).value

    # -- reads -------------------------------------------------------------------------

    def reservation(self, reservation_id: str) -> Reservation | None:
        """The reservation with its lines, or None."""
        check_id(reservation_id, "reservation_id")
        r = t.reservations.c

        def work(uow: UnitOfWork) -> Reservation | None:
            row = uow.session.execute(
                select(r.status, r.expires_at).where(r.id == reservation_id)
            ).first()
            if row is None:
                return None
            lines = tuple(self._lines(uow.session, reservation_id))
            return Reservation(reservation_id, ReservationStatus(row[0]), float(row[1]), lines)

        return self._db.run(work, retry=True).value

    def require_reservation(self, reservation_id: str) -> Reservation:
        """The reservation, or :class:`NotFoundError`."""
        found = self.reservation(reservation_id)
        if found is None:
            raise NotFoundError(f"no reservation {reservation_id!r}")
        return found

    def verify(self) -> InventoryReport:
        """Check every invariant and report drift (see :func:`verify_inventory`)."""
        return verify_inventory(self._db)
