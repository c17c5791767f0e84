"""SqlAlchemyIdempotencyStore: idempotency records in SQL (SQLite, PostgreSQL in production).

Atomicity comes from unique constraints and compare-and-set updates, not from
locks or isolation levels, so the same statements are correct on SQLite and
on PostgreSQL at READ COMMITTED:

* a key is claimed by inserting its row (``key`` is unique: one winner);
* a payment (scope) is held by inserting a row into the scopes table
  (``scope`` is the primary key: one operation per payment at a time);
* a lease is taken over, and a result recorded, by an ``UPDATE ... WHERE``
  that names the owner and the status read before (zero rows: someone else
  won, and nothing is overwritten).

Driver errors are translated at this boundary: a lost connection or a locked
database is an :class:`~commercekit.errors.UnavailableError` (nothing was
recorded, safe to retry), raised ``from`` the driver error.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, TypeVar

import sqlalchemy as sa
from sqlalchemy.engine import Connection, Engine

from commercekit.errors import (
    ConflictError,
    NotFoundError,
    OperationInFlightError,
)
from commercekit.payments._core._idempotency import decide_claim, scope_in_flight
from commercekit.payments._core._records import Claim, ClaimKind, IdempotencyRecord, RecordStatus
from commercekit.payments._sql._tx import SqlRunner

__all__ = ["SqlAlchemyIdempotencyStore"]

_T = TypeVar("_T")


class SqlAlchemyIdempotencyStore:
    """An :class:`IdempotencyStore` in two SQL tables, through a SQLAlchemy :class:`Engine`.

    Call :meth:`create_tables` once (or create them with your migrations from
    :attr:`metadata`). *table_prefix* names the tables
    (``<prefix>idempotency`` and ``<prefix>idempotency_scopes``).
    """

    def __init__(
        self,
        engine: Engine,
        *,
        table_prefix: str = "commercekit_payments_",
        _serialize: bool | None = None,
    ) -> None:
        self._engine = engine
        self._sql = SqlRunner(
            engine,
            what="the idempotency store",
            unsaved="nothing was recorded",
            serialize=_serialize,
        )
        self.metadata = sa.MetaData()
        self._records = sa.Table(
            f"{table_prefix}idempotency",
            self.metadata,
            sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
            sa.Column("key", sa.String(255), nullable=False, unique=True),
            sa.Column("scope", sa.String(255), nullable=False, index=True),
            sa.Column("operation", sa.String(32), nullable=False),
            sa.Column("fingerprint", sa.String(64), nullable=False),
            sa.Column("request", sa.Text, nullable=False),
            sa.Column("status", sa.String(16), nullable=False),
            sa.Column("owner", sa.String(64), nullable=True),
            sa.Column("lease_expires_at", sa.Double, nullable=False),
            sa.Column("created_at", sa.Double, nullable=False),
            sa.Column("result", sa.Text, nullable=True),
            sa.Column("completed_at", sa.Double, nullable=True),
        )
        self._scopes = sa.Table(
            f"{table_prefix}idempotency_scopes",
            self.metadata,
            sa.Column("scope", sa.String(255), primary_key=True),
            sa.Column("key", sa.String(255), nullable=False),
        )

    def create_tables(self) -> None:
        """Create the tables if they do not exist."""
        self._guard(lambda: self.metadata.create_all(self._engine))

    def drop_tables(self) -> None:
        """Drop the tables (tests and teardown)."""
        self._guard(lambda: self.metadata.drop_all(self._engine))

    # -- the protocol -------------------------------------------------------------------

    def begin(
        self,
        key: str,
        *,
        scope: str,
        operation: str,
        fingerprint: str,
        request: str,
        owner: str,
        now: float,
        lease_s: float,
    ) -> Claim:
        """Claim *key*; see :meth:`IdempotencyStore.begin`."""
        values: dict[str, Any] = {
            "key": key,
            "scope": scope,
            "operation": operation,
            "fingerprint": fingerprint,
            "request": request,
            "status": RecordStatus.PENDING.value,
            "owner": owner,
            "lease_expires_at": now + lease_s,
            "created_at": now,
        }

        def claim_both(c: Connection) -> None:
            c.execute(self._records.insert().values(**values))
            c.execute(self._scopes.insert().values(scope=scope, key=key))

        try:  # the common case first: a new key on a free payment, in one transaction
            self._tx(claim_both)
        except sa.exc.IntegrityError:
            pass  # the key exists, or the payment is held: both inserts rolled back
        else:
            return Claim(ClaimKind.NEW, _record({**values, "result": None, "completed_at": None}))
        record = self.get(key)
        if record is None:
            return self._blocked(scope, key, now)
        kind = decide_claim(record, fingerprint=fingerprint, owner=owner, now=now)
        if kind is ClaimKind.REPLAY:
            return Claim(kind, record)
        t = self._records
        taken = self._tx(
            lambda c: (
                c.execute(
                    t.update()
                    .where(
                        t.c.key == key,
                        t.c.status == record.status.value,
                        t.c.lease_expires_at == record.lease_expires_at,
                        (t.c.owner == record.owner)
                        if record.owner is not None
                        else t.c.owner.is_(None),
                    )
                    .values(
                        status=RecordStatus.PENDING.value,
                        owner=owner,
                        lease_expires_at=now + lease_s,
                    )
                ).rowcount
            )
        )
        if taken != 1:
            raise OperationInFlightError(
                f"idempotency key {key!r} was just taken by another worker"
            )
        if not self._insert(self._scopes, {"scope": record.scope, "key": key}):
            holder = self._holder(record.scope)
            if holder is not None and holder != key:
                self._tx(
                    lambda c: c.execute(
                        t.update()
                        .where(self._key_is(key, owner))
                        .values(status=RecordStatus.UNKNOWN.value, owner=None, lease_expires_at=0.0)
                    )
                )
                raise OperationInFlightError(
                    f"payment {record.scope!r} is held by key {holder!r}; retry shortly"
                )
        return Claim(ClaimKind.RECOVER, self._require(key))

    def complete(self, key: str, *, owner: str, result: str, now: float) -> None:
        """Record *result*; see :meth:`IdempotencyStore.complete`."""

        def run(c: Connection) -> int:
            done = c.execute(
                self._records.update()
                .where(self._key_is(key, owner))
                .values(
                    status=RecordStatus.COMPLETE.value, result=result, completed_at=now, owner=None
                )
            ).rowcount
            if done == 1:
                c.execute(self._scopes.delete().where(self._scopes.c.key == key))
            return done

        if self._tx(run) != 1:
            self._lost(key)

    def release(self, key: str, *, owner: str, unknown: bool) -> None:
        """Forget *key* or mark it unknown; see :meth:`IdempotencyStore.release`."""

        def run(c: Connection) -> int:
            where = self._key_is(key, owner)
            if unknown:
                return c.execute(
                    self._records.update()
                    .where(where)
                    .values(status=RecordStatus.UNKNOWN.value, owner=None, lease_expires_at=0.0)
                ).rowcount
            gone = c.execute(self._records.delete().where(where)).rowcount
            if gone == 1:
                c.execute(self._scopes.delete().where(self._scopes.c.key == key))
            return gone

        if self._tx(run) != 1:
            self._lost(key)

    def get(self, key: str) -> IdempotencyRecord | None:
        """The record of *key*, or None."""
        rows = self._tx(
            lambda c: c.execute(sa.select(self._records).where(self._records.c.key == key)).all()
        )
        return _record(rows[0]._mapping) if rows else None

    def history(self, scope: str) -> list[IdempotencyRecord]:
        """The completed records of *scope*, oldest first."""
        t = self._records
        rows = self._tx(
            lambda c: c.execute(
                sa.select(t)
                .where(t.c.scope == scope, t.c.status == RecordStatus.COMPLETE.value)
                .order_by(t.c.id)
            ).all()
        )
        return [_record(row._mapping) for row in rows]

    def unresolved(self, now: float) -> list[IdempotencyRecord]:
        """Unknown records, and pending ones whose lease ran out, oldest first."""
        t = self._records
        rows = self._tx(
            lambda c: c.execute(
                sa.select(t)
                .where(
                    sa.or_(
                        t.c.status == RecordStatus.UNKNOWN.value,
                        sa.and_(
                            t.c.status == RecordStatus.PENDING.value, t.c.lease_expires_at <= now
                        ),
                    )
                )
                .order_by(t.c.id)
            ).all()
        )
        return [_record(row._mapping) for row in rows]

    # -- internals ----------------------------------------------------------------------

    def _key_is(self, key: str, owner: str) -> sa.ColumnElement[bool]:
        t = self._records
        return sa.and_(
            t.c.key == key, t.c.owner == owner, t.c.status != RecordStatus.COMPLETE.value
        )

    def _lost(self, key: str) -> None:
        if self.get(key) is None:
            raise NotFoundError(f"no idempotency record for key {key!r}")
        raise ConflictError(
            f"idempotency key {key!r} is no longer held by this attempt "
            "(its lease ran out and another attempt took it over)"
        )

    def _require(self, key: str) -> IdempotencyRecord:
        record = self.get(key)
        if record is None:
            raise OperationInFlightError(f"idempotency key {key!r} changed hands; retry shortly")
        return record

    def _holder(self, scope: str) -> str | None:
        rows = self._tx(
            lambda c: c.execute(
                sa.select(self._scopes.c.key).where(self._scopes.c.scope == scope)
            ).all()
        )
        return str(rows[0][0]) if rows else None

    def _blocked(self, scope: str, key: str, now: float) -> Claim:
        holder_key = self._holder(scope)
        holder = None if holder_key is None else self.get(holder_key)
        if holder is None:
            raise OperationInFlightError(f"payment {scope!r} changed hands; retry shortly")
        if holder.status is RecordStatus.PENDING and holder.lease_expires_at > now:
            raise scope_in_flight(holder, now)
        return Claim(ClaimKind.BLOCKED, holder)

    def _insert(self, table: sa.Table, values: dict[str, Any]) -> bool:
        try:
            self._tx(lambda c: c.execute(table.insert().values(**values)))
        except sa.exc.IntegrityError:
            return False
        return True

    def _tx(self, work: Callable[[Connection], _T]) -> _T:
        return self._sql.tx(work)

    def _guard(self, work: Callable[[], _T]) -> _T:
        return self._sql.guard(work)

    def __repr__(self) -> str:
        return f"SqlAlchemyIdempotencyStore({self._engine.url.render_as_string()!r})"


def _record(row: Any) -> IdempotencyRecord:
    return IdempotencyRecord(
        key=row["key"],
        scope=row["scope"],
        operation=row["operation"],
        fingerprint=row["fingerprint"],
        request=row["request"],
        status=RecordStatus(row["status"]),
        owner=row["owner"],
        lease_expires_at=row["lease_expires_at"],
        created_at=row["created_at"],
        result=row["result"],
        completed_at=row["completed_at"],
    )
