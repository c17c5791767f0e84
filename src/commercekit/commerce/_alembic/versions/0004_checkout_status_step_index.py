"""An index on the checkout attempts' (status, step), for ``recover()``'s carts to settle.

With a cart store outside the database (Redis), ``recover()`` looks for ended
attempts whose cart is not closed (completed, step ``completed``) or opened
again (failed or compensated, step ``thawing``) yet.

Revision ID: 0004
Revises: 0003
Create Date: 2026-12-07 14:00:00.000000
"""

from __future__ import annotations

from alembic import op

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("ck_checkouts", schema=None) as batch_op:
        batch_op.create_index("ix_ck_checkouts_status_step", ["status", "step"], unique=False)


def downgrade() -> None:
    with op.batch_alter_table("ck_checkouts", schema=None) as batch_op:
        batch_op.drop_index("ix_ck_checkouts_status_step")
