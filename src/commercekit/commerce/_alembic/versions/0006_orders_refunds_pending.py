"""Orders count their refunds decided and not yet paid back (``refunds_pending``).

A refund is decided in one transaction and paid back after it; a crash in
between leaves it pending, and ``Orders.recover_refunds()`` finds such orders
through this column's index. Orders from before have none (0).

Revision ID: 0006
Revises: 0005
Create Date: 2026-12-07 14:30:00.000000
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("ck_orders", schema=None) as batch_op:
        batch_op.add_column(
            sa.Column("refunds_pending", sa.Integer(), nullable=False, server_default="0")
        )
        batch_op.create_index("ix_ck_orders_refunds_pending", ["refunds_pending"], unique=False)


def downgrade() -> None:
    with op.batch_alter_table("ck_orders", schema=None) as batch_op:
        batch_op.drop_index("ix_ck_orders_refunds_pending")
        batch_op.drop_column("refunds_pending")
