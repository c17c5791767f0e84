"""A guest's anonymous id on checkout attempts and orders (carried into the order's events).

Revision ID: 0002
Revises: 0001
Create Date: 2026-12-07 04:30:00.000000
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    for table in ("ck_checkouts", "ck_orders"):
        with op.batch_alter_table(table, schema=None) as batch_op:
            batch_op.add_column(sa.Column("anonymous_id", sa.String(length=64), nullable=True))


def downgrade() -> None:
    for table in ("ck_orders", "ck_checkouts"):
        with op.batch_alter_table(table, schema=None) as batch_op:
            batch_op.drop_column("anonymous_id")
