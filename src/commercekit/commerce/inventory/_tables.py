"""The inventory service's tables: stock levels, reservations and their lines, stock moves.

Only this package reads or writes them. The CHECK constraint on ``ck_stock``
is the last line of defence: the guarded UPDATEs in ``_service.py`` never let
a row reach it, but if a bug or a hand-written statement tried, the database
refuses the write instead of overselling.
"""

from __future__ import annotations

from sqlalchemy import (
    CheckConstraint,
    Column,
    Double,
    ForeignKey,
    Index,
    Integer,
    PrimaryKeyConstraint,
    String,
    Table,
)

from commercekit.commerce._shared import metadata

__all__ = ["moves", "reservation_lines", "reservations", "stock"]

stock = Table(
    "ck_stock",
    metadata,
    Column("sku", String(64), nullable=False),
    Column("location", String(64), nullable=False),
    Column("on_hand", Integer, nullable=False, default=0),
    Column("allocated", Integer, nullable=False, default=0),
    Column("reserved", Integer, nullable=False, default=0),
    PrimaryKeyConstraint("sku", "location"),
    CheckConstraint(
        "on_hand >= 0 AND allocated >= 0 AND reserved >= 0 AND allocated + reserved <= on_hand",
        name="not_oversold",
    ),
)

reservations = Table(
    "ck_reservations",
    metadata,
    Column("id", String(64), primary_key=True),
    # live -> released | expired | committed; committed -> cancelled (allocation released)
    Column("status", String(16), nullable=False),
    Column("expires_at", Double, nullable=False),
    Column("created_at", Double, nullable=False),
    Index("ix_ck_reservations_status_expires", "status", "expires_at"),
)

reservation_lines = Table(
    "ck_reservation_lines",
    metadata,
    Column("reservation_id", String(64), ForeignKey("ck_reservations.id"), nullable=False),
    Column("sku", String(64), nullable=False),
    Column("location", String(64), nullable=False),
    Column("qty", Integer, nullable=False),
    Column("shipped", Integer, nullable=False, default=0),
    PrimaryKeyConstraint("reservation_id", "sku", "location"),
    CheckConstraint("qty > 0 AND shipped >= 0 AND shipped <= qty", name="line_quantities"),
    Index("ix_ck_reservation_lines_sku", "sku", "location"),
)

moves = Table(
    "ck_stock_moves",
    metadata,
    Column("key", String(128), primary_key=True),
    Column("sku", String(64), nullable=False),
    Column("location", String(64), nullable=False),
    Column("delta", Integer, nullable=False),
    Column("at", Double, nullable=False),
)
