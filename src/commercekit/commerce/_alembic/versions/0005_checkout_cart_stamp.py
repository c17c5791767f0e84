"""The checkout attempts keep the stamp of the cart they checked out (``cart_stamp``).

A cart store that frees the id of a cart it dropped (Redis, by its time to
live) lets a new cart take that id; the stamp tells the new cart from the one
an earlier attempt ordered. Attempts from before have none (NULL).

Revision ID: 0005
Revises: 0004
Create Date: 2026-12-07 14:30:00.000000
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("ck_checkouts", schema=None) as batch_op:
        batch_op.add_column(sa.Column("cart_stamp", sa.String(length=32), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("ck_checkouts", schema=None) as batch_op:
        batch_op.drop_column("cart_stamp")
