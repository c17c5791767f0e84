"""``ExactId``: a ``VARCHAR`` key compared byte for byte on every engine."""

from __future__ import annotations

from typing import Any

from sqlalchemy import String
from sqlalchemy.engine import Dialect
from sqlalchemy.types import TypeDecorator, TypeEngine

__all__ = ["ExactId"]


class ExactId(TypeDecorator[str]):
    """``VARCHAR`` compared byte for byte, trailing spaces included, on every engine.

    For ids and other keys (the outbox's event ids, the analytics store's and
    SQL event log's keys). SQLite and PostgreSQL compare text that way; MySQL's
    and MariaDB's default collations compare case-insensitively and pad with
    spaces, so ``E1``, ``e1`` and ``e1 `` were one key there: the column is
    ``utf8mb4_nopad_bin`` on MariaDB, ``utf8mb4_0900_bin`` on MySQL 8.
    """

    impl = String
    cache_ok = True

    def __init__(self, length: int) -> None:
        super().__init__(length)
        self.length = length

    def load_dialect_impl(self, dialect: Dialect) -> TypeEngine[Any]:
        """The dialect's type (MySQL's module is loaded by then: it is the one in use)."""
        if dialect.name in ("mysql", "mariadb"):
            from sqlalchemy.dialects import mysql

            mariadb = getattr(dialect, "is_mariadb", False)
            collation = "utf8mb4_nopad_bin" if mariadb else "utf8mb4_0900_bin"
            return mysql.VARCHAR(self.length, charset="utf8mb4", collation=collation)
        return String(self.length)
