"""``SqlCartStore``: carts in the ``ck_carts`` table, written by compare-and-set on a version.

Each write is ``UPDATE ... WHERE id = :id AND version = :seen`` in the unit of
work that read the row, so a writer that lost the race sees no row changed,
rolls back and reads again. Completing a cart is one guarded ``UPDATE`` that
joins the caller's unit of work (the checkout's last transaction); freezing it
joins the checkout's first, and opening it again the one that ends an attempt.
"""

from __future__ import annotations

import time
from collections.abc import Sequence

from sqlalchemy import bindparam, select, update

from commercekit.commerce._shared import conflict_backoff_s, rowcount
from commercekit.errors import (
    ConflictError,
    InvalidStateError,
    NotFoundError,
    TransientError,
    UnavailableError,
)
from commercekit.repository import Database, UnitOfWork

from . import _tables as t
from ._crdt import CartState
from ._store import CartChange, CartRecord, CartStatus

__all__ = ["SqlCartStore"]

# Statements of the hot paths, built once (SQLAlchemy keys its cache once per statement).
_c = t.carts.c
_READ = select(
    _c.customer_id,
    _c.currency,
    _c.state,
    _c.version,
    _c.status,
    _c.voucher,
    _c.created_at,
    _c.updated_at,
).where(_c.id == bindparam("cart_id"))
_LIVE = (CartStatus.OPEN.value, CartStatus.FROZEN.value)
_COMPLETE = (
    update(t.carts)
    .where(_c.id == bindparam("cart_id"), _c.status.in_(_LIVE))
    .values(status=CartStatus.COMPLETED.value, version=_c.version + 1, updated_at=bindparam("now"))
)
_FREEZE = (
    update(t.carts)
    .where(
        _c.id == bindparam("cart_id"),
        _c.version == bindparam("version"),
        _c.status.in_(_LIVE),
    )
    .values(status=CartStatus.FROZEN.value, version=_c.version + 1, updated_at=bindparam("now"))
)
_THAW = (
    update(t.carts)
    .where(_c.id == bindparam("cart_id"), _c.status == CartStatus.FROZEN.value)
    .values(status=CartStatus.OPEN.value, version=_c.version + 1, updated_at=bindparam("now"))
)
_THAW_AT = _THAW.where(_c.version == bindparam("version"))


class SqlCartStore:
    """The default cart store: the ``ck_carts`` table of the commerce schema on *db*."""

    transactional = True

    def __init__(self, db: Database) -> None:
        self._db = db

    def insert(self, record: CartRecord) -> None:
        """Insert the cart's row (:class:`DuplicateError` when its id is taken)."""
        with self._db.unit_of_work() as uow:
            uow.session.execute(
                t.carts.insert().values(
                    id=record.id,
                    customer_id=record.customer_id,
                    currency=record.currency,
                    state=record.state.to_json(),
                    voucher=record.voucher,
                    version=record.version,
                    status=record.status.value,
                    created_at=record.created_at,
                    updated_at=record.updated_at,
                )
            )

    def get(self, cart_id: str, *, uow: UnitOfWork | None = None) -> CartRecord:
        """The cart's row (in *uow* when given), or :class:`NotFoundError`."""
        if uow is not None:
            return self._read(uow, cart_id)
        return self._db.run(lambda u: self._read(u, cart_id), retry=True).value

    def update(
        self, cart_ids: Sequence[str], change: CartChange, *, max_retries: int
    ) -> tuple[CartRecord, ...]:
        """Read, change and compare-and-set the rows in one unit of work; retry a lost race.

        A lost race, a busy database or an aborted transaction is retried after a
        short jittered wait; the database unreachable is its :class:`UnavailableError`
        at once (:class:`DatabaseUnavailableError`).
        """
        for attempt in range(max_retries):
            try:
                with self._db.unit_of_work() as uow:
                    read = tuple(self._read(uow, i) for i in cart_ids)
                    written = change(read)
                    if written is None:
                        return read
                    seen = {r.id: r.version for r in read}
                    if all(self._cas(uow, seen[r.id], r) for r in written):
                        return tuple(written)
                    uow.rollback()
            except UnavailableError:
                raise  # the database is down: say so now, not as "kept changing" later
            except TransientError:
                pass  # the database was busy or aborted it: read again and reapply
            if attempt + 1 < max_retries:
                time.sleep(conflict_backoff_s(attempt))
        raise ConflictError(f"cart(s) {', '.join(map(repr, cart_ids))} kept changing; retry")

    def complete(
        self,
        cart_id: str,
        now: float,
        *,
        uow: UnitOfWork | None = None,
        stamp: str | None = None,
    ) -> bool:
        """One guarded UPDATE (in *uow* when given, so it commits with the caller's work).

        *stamp* is not looked at: an id in ``ck_carts`` is never freed.
        """

        def work(u: UnitOfWork) -> bool:
            moved = rowcount(u.session.execute(_COMPLETE, {"cart_id": cart_id, "now": now}))
            if moved:
                return True
            cart = self._read(u, cart_id)
            if cart.status is CartStatus.COMPLETED:
                return False
            raise InvalidStateError(f"cart {cart_id!r} is {cart.status.value}, not open")

        return work(uow) if uow is not None else self._db.run(work, retry=True).value

    def freeze(
        self, cart_id: str, version: int, now: float, *, uow: UnitOfWork | None = None
    ) -> bool:
        """One guarded UPDATE on the version (in *uow* when given: the checkout's start)."""

        def work(u: UnitOfWork) -> bool:
            params = {"cart_id": cart_id, "version": version, "now": now}
            if rowcount(u.session.execute(_FREEZE, params)):
                return True
            cart = self._read(u, cart_id)
            if cart.status.value in _LIVE:
                return False  # changed since it was read
            raise InvalidStateError(f"cart {cart_id!r} is {cart.status.value}, not open")

        return work(uow) if uow is not None else self._db.run(work, retry=True).value

    def thaw(
        self,
        cart_id: str,
        now: float,
        *,
        version: int | None = None,
        uow: UnitOfWork | None = None,
    ) -> bool:
        """One guarded UPDATE (in *uow* when given: the transaction that ends the attempt)."""

        def work(u: UnitOfWork) -> bool:
            params: dict[str, object] = {"cart_id": cart_id, "now": now}
            stmt = _THAW
            if version is not None:
                stmt, params["version"] = _THAW_AT, version
            if rowcount(u.session.execute(stmt, params)):
                return True
            self._read(u, cart_id)  # NotFoundError when there is no such cart
            return False

        return work(uow) if uow is not None else self._db.run(work, retry=True).value

    def expire_idle(self, cutoff: float, *, limit: int) -> int:
        """Expire open carts whose last write is older than *cutoff* (guarded per row)."""
        c = t.carts.c
        with self._db.unit_of_work() as uow:
            ids = list(
                uow.session.execute(
                    select(c.id)
                    .where(c.status == CartStatus.OPEN.value, c.updated_at < cutoff)
                    .limit(limit)
                ).scalars()
            )
            done = 0
            for cid in ids:
                done += rowcount(
                    uow.session.execute(
                        update(t.carts)
                        .where(
                            c.id == cid,
                            c.status == CartStatus.OPEN.value,
                            c.updated_at < cutoff,
                        )
                        .values(status=CartStatus.EXPIRED.value, version=c.version + 1)
                    )
                )
        return done

    @staticmethod
    def _cas(uow: UnitOfWork, seen: int, record: CartRecord) -> bool:
        c = t.carts.c
        return bool(
            rowcount(
                uow.session.execute(
                    update(t.carts)
                    .where(c.id == record.id, c.version == seen)
                    .values(
                        state=record.state.to_json(),
                        version=record.version,
                        status=record.status.value,
                        updated_at=record.updated_at,
                        voucher=record.voucher,
                    )
                )
            )
        )

    @staticmethod
    def _read(uow: UnitOfWork, cart_id: str) -> CartRecord:
        row = uow.session.execute(_READ, {"cart_id": cart_id}).first()
        if row is None:
            raise NotFoundError(f"no cart {cart_id!r}")
        return CartRecord(
            id=cart_id,
            customer_id=row[0],
            currency=row[1],
            state=CartState.from_json(row[2]),
            voucher=row[5],
            version=int(row[3]),
            status=CartStatus(row[4]),
            created_at=float(row[6]),
            updated_at=float(row[7]),
        )
