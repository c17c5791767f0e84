"""SqlAlchemyVaultStore: the card vault's encrypted records in SQL (SQLite, PostgreSQL).

One row per token: the key id, the nonce and the AES-256-GCM ciphertext as
binary columns, and the masked number, brand and expiry that may be shown.
The clear number and the security code never reach the database: the vault
encrypts before it calls :meth:`SqlAlchemyVaultStore.put`, and a
:class:`VaultRecord` has no field for either.

Writes are single statements or one short transaction, so a failed write
leaves the stored row as it was. Re-encryption after a key rotation is a
compare-and-set (``UPDATE ... WHERE`` every column still holds the old
value), so two rotating workers never overwrite each other, and neither
overwrites a card replaced meanwhile. Driver errors are translated at this
boundary (see ``_sqltx.py``).
"""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection, Engine

from commercekit.payments._sql._tx import SqlRunner
from commercekit.payments._typing import VaultRecord
from commercekit.payments._vault._card_vault import check_replacement, check_vault_record

__all__ = ["SqlAlchemyVaultStore"]


class SqlAlchemyVaultStore:
    """A :class:`VaultStore` in one SQL table, through a SQLAlchemy :class:`Engine`.

    Call :meth:`create_tables` once (or create the table with your migrations
    from :attr:`metadata`). *table_prefix* names the table (``<prefix>vault``).
    Grant the application no more than it needs on it, and keep the key ring
    out of this database.
    """

    def __init__(self, engine: Engine, *, table_prefix: str = "commercekit_payments_") -> None:
        self._sql = SqlRunner(engine, what="the card vault store", unsaved="nothing was written")
        self.metadata = sa.MetaData()
        self._table = sa.Table(
            f"{table_prefix}vault",
            self.metadata,
            sa.Column("token", sa.String(64), primary_key=True),
            sa.Column("key_id", sa.String(64), nullable=False, index=True),
            sa.Column("nonce", sa.LargeBinary(12), nullable=False),
            sa.Column("ciphertext", sa.LargeBinary, nullable=False),
            sa.Column("masked", sa.String(19), nullable=False),
            sa.Column("brand", sa.String(16), nullable=False),
            sa.Column("exp_month", sa.SmallInteger, nullable=False),
            sa.Column("exp_year", sa.SmallInteger, nullable=False),
        )

    @property
    def table(self) -> sa.Table:
        """The table the records live in (for migrations and audits)."""
        return self._table

    def create_tables(self) -> None:
        """Create the table if it does not exist."""
        self._sql.guard(lambda: self.metadata.create_all(self._sql.engine))

    def drop_tables(self) -> None:
        """Drop the table (tests and teardown)."""
        self._sql.guard(lambda: self.metadata.drop_all(self._sql.engine))

    # -- the protocol -------------------------------------------------------------------

    def put(self, record: VaultRecord) -> None:
        """Insert or replace the record of ``record.token``."""
        values = _values(check_vault_record(record))
        t = self._table

        def upsert(c: Connection) -> None:
            if c.execute(t.update().where(t.c.token == record.token).values(values)).rowcount:
                return
            c.execute(t.insert().values(token=record.token, **values))

        try:
            self._sql.tx(upsert)
        except sa.exc.IntegrityError:  # inserted by another writer meanwhile: replace it
            self._sql.tx(
                lambda c: c.execute(t.update().where(t.c.token == record.token).values(values))
            )

    def get(self, token: str) -> VaultRecord | None:
        """The record of *token*, or None."""
        t = self._table
        rows = self._sql.tx(lambda c: c.execute(sa.select(t).where(t.c.token == token)).all())
        return _record(rows[0]._mapping) if rows else None

    def delete(self, token: str) -> bool:
        """Remove *token*; say whether it was there."""
        t = self._table
        gone = self._sql.tx(lambda c: c.execute(t.delete().where(t.c.token == token)).rowcount)
        return bool(gone)

    def stale(self, current_key_id: str, limit: int) -> list[VaultRecord]:
        """Up to *limit* records encrypted under another key than *current_key_id*."""
        t = self._table
        rows = self._sql.tx(
            lambda c: c.execute(
                sa.select(t).where(t.c.key_id != current_key_id).order_by(t.c.token).limit(limit)
            ).all()
        )
        return [_record(row._mapping) for row in rows]

    def replace(self, old: VaultRecord, new: VaultRecord) -> bool:
        """Swap *old* for *new* only if the stored row still holds *old*; say whether it did."""
        check_replacement(old, new)
        t = self._table
        same = [t.c.token == old.token] + [
            t.c[name] == value for name, value in _values(old).items()
        ]
        done = self._sql.tx(
            lambda c: c.execute(t.update().where(*same).values(_values(new))).rowcount
        )
        return done == 1

    def __repr__(self) -> str:
        return f"SqlAlchemyVaultStore({self._sql.engine.url.render_as_string()!r})"


def _values(record: VaultRecord) -> dict[str, Any]:
    return {
        "key_id": record.key_id,
        "nonce": record.nonce,
        "ciphertext": record.ciphertext,
        "masked": record.masked,
        "brand": record.brand,
        "exp_month": record.exp_month,
        "exp_year": record.exp_year,
    }


def _record(row: Any) -> VaultRecord:
    return VaultRecord(
        token=row["token"],
        key_id=row["key_id"],
        nonce=bytes(row["nonce"]),
        ciphertext=bytes(row["ciphertext"]),
        masked=row["masked"],
        brand=row["brand"],
        exp_month=row["exp_month"],
        exp_year=row["exp_year"],
    )
