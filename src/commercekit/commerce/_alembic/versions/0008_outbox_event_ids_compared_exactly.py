"""The outbox's event ids compared exactly on MySQL and MariaDB (binary, no padding).

The unique key of ``commercekit_outbox.event_id`` had the server's default
collation, which ignores case and trailing spaces: appending event ``e1``
after ``E1`` found it "stored already" and dropped it. The column is
``utf8mb4_nopad_bin`` on MariaDB and ``utf8mb4_0900_bin`` on MySQL 8, as a new
table has it. PostgreSQL and SQLite compare text exactly already: there this
revision changes nothing.

Revision ID: 0008
Revises: 0007
Create Date: 2026-12-07 17:10:00.000000
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0008"
down_revision = "0007"
branch_labels = None
depends_on = None


def _alter(exact: bool) -> None:
    bind = op.get_bind()
    if bind.dialect.name not in ("mysql", "mariadb"):
        return
    from sqlalchemy.dialects import mysql

    collation: str | None = None  # the character set's default, as the table was made
    if exact:
        mariadb = getattr(bind.dialect, "is_mariadb", False)
        collation = "utf8mb4_nopad_bin" if mariadb else "utf8mb4_0900_bin"
    op.alter_column(
        "commercekit_outbox",
        "event_id",
        type_=mysql.VARCHAR(64, charset="utf8mb4", collation=collation),
        existing_type=sa.String(64),
        existing_nullable=False,
    )


def upgrade() -> None:
    _alter(True)


def downgrade() -> None:
    _alter(False)
