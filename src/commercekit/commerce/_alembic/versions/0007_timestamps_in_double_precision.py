"""Timestamps in double precision on MySQL and MariaDB (``DOUBLE``, not ``FLOAT``).

The columns holding Unix seconds were SQLAlchemy's ``Float``: ``FLOAT`` on MySQL
and MariaDB is single precision, so a time near 1.8e9 s was stored to the nearest
128 s (a checkout's lease, a reservation's expiry, the age ``recover_refunds``
looks at). PostgreSQL's ``FLOAT`` and SQLite's ``REAL`` are double precision
already: there this revision changes nothing. Times already stored stay as
rounded as they were.

Revision ID: 0007
Revises: 0006
Create Date: 2026-12-07 16:50:00.000000
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0007"
down_revision = "0006"
branch_labels = None
depends_on = None

COLUMNS: dict[str, tuple[tuple[str, bool], ...]] = {
    "ck_carts": (("created_at", False), ("updated_at", False)),
    "ck_checkout_steps": (("at", False),),
    "ck_checkouts": (("lease_until", False), ("created_at", False), ("updated_at", False)),
    "ck_orders": (("created_at", False), ("updated_at", False)),
    "ck_order_events": (("at", False),),
    "ck_products": (("created_at", False),),
    "ck_reservations": (("expires_at", False), ("created_at", False)),
    "ck_stock_moves": (("at", False),),
    "ck_voucher_uses": (("at", False),),
    "ck_vouchers": (("starts_at", True), ("ends_at", True)),
}
"""The time columns, by table, with whether each is nullable."""


def _alter(to: sa.types.TypeEngine[float], was: sa.types.TypeEngine[float]) -> None:
    if op.get_bind().dialect.name not in ("mysql", "mariadb"):
        return
    for table, columns in COLUMNS.items():
        for name, nullable in columns:
            op.alter_column(table, name, type_=to, existing_type=was, existing_nullable=nullable)


def upgrade() -> None:
    _alter(sa.Double(), sa.Float())


def downgrade() -> None:
    _alter(sa.Float(), sa.Double())
