"""An index on the orders' keyset order, for ``Orders.recent``'s pages of everyone's orders.

Revision ID: 0003
Revises: 0002
Create Date: 2026-12-07 06:00:00.000000
"""

from __future__ import annotations

from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("ck_orders", schema=None) as batch_op:
        batch_op.create_index("ix_ck_orders_created", ["created_at", "id"], unique=False)


def downgrade() -> None:
    with op.batch_alter_table("ck_orders", schema=None) as batch_op:
        batch_op.drop_index("ix_ck_orders_created")
