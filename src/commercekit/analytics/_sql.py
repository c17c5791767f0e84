"""Batched inserts and upserts (add to counters, keep minima or maxima, replace), per dialect.

SQLite and PostgreSQL use ``INSERT ... ON CONFLICT DO UPDATE``; MySQL and
MariaDB ``INSERT ... ON DUPLICATE KEY UPDATE``. Each statement is compiled
once per dialect and column set, and rows go to the driver's executemany as
they are (plain str and int values need no type processing): several times
faster than SQLAlchemy's per-row parameter handling on the consumer's path.

The dialect modules are imported when a statement or a column type is first
needed on that dialect, never at import time (they cost tens of milliseconds
of every process's start): ``LongText`` and ``LongBlob`` are the column types
that are ``MEDIUMTEXT`` and ``LONGBLOB`` on MySQL and MariaDB.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from operator import itemgetter
from typing import Any

from sqlalchemy import Connection, LargeBinary, Table, Text, func
from sqlalchemy.engine import Dialect
from sqlalchemy.types import TypeDecorator, TypeEngine

from commercekit.repository._runtime._exact import ExactId as ExactString

__all__ = ["ExactString", "LongBlob", "LongText", "bulk", "insert_rows", "upsert"]

_MYSQL = ("mysql", "mariadb")


class LongText(TypeDecorator[str]):
    """``TEXT``; ``MEDIUMTEXT`` on MySQL and MariaDB (their TEXT holds 64 KiB)."""

    impl = Text
    cache_ok = True

    def load_dialect_impl(self, dialect: Dialect) -> TypeEngine[Any]:
        """The dialect's type (MySQL's module is loaded by then: it is the one in use)."""
        if dialect.name in _MYSQL:
            from sqlalchemy.dialects import mysql

            return mysql.MEDIUMTEXT()
        return Text()  # as it is: DDL renders it (the dialect adapts a copy for binding)


class LongBlob(TypeDecorator[bytes]):
    """``LargeBinary``; ``LONGBLOB`` on MySQL and MariaDB (their BLOB holds 64 KiB)."""

    impl = LargeBinary
    cache_ok = True

    def load_dialect_impl(self, dialect: Dialect) -> TypeEngine[Any]:
        """The dialect's type (MySQL's module is loaded by then: it is the one in use)."""
        if dialect.name in _MYSQL:
            from sqlalchemy.dialects import mysql

            return mysql.LONGBLOB()
        return LargeBinary()


_COMPILED: dict[tuple[Any, ...], tuple[str, tuple[str, ...] | None]] = {}


def _compiled(conn: Connection, key: tuple[Any, ...], build: Any, columns: list[str]) -> Any:
    full = (conn.dialect.name, *key, tuple(columns))
    hit = _COMPILED.get(full)
    if hit is None:
        compiled = build().compile(dialect=conn.dialect, column_keys=columns)
        order = tuple(compiled.positiontup or ()) if compiled.positional else None
        hit = _COMPILED[full] = (str(compiled), order)
    return hit


def bulk(
    conn: Connection, key: tuple[Any, ...], build: Any, rows: Sequence[Mapping[str, Any]]
) -> None:
    """Run the statement *build()* makes (cached under *key*) once per row."""
    if not rows:
        return
    sql, order = _compiled(conn, key, build, list(rows[0]))
    params: Any
    if order is None:
        params = rows
    elif len(order) == 1:
        params = [(r[order[0]],) for r in rows]
    else:
        params = list(map(itemgetter(*order), rows))
    conn.exec_driver_sql(sql, params)


def insert_rows(conn: Connection, table: Table, rows: Sequence[Mapping[str, Any]]) -> None:
    """Plain INSERT of *rows* (all with the same keys)."""
    bulk(conn, ("insert", table.name), table.insert, rows)


def upsert(
    conn: Connection,
    table: Table,
    rows: Sequence[Mapping[str, Any]],
    *,
    keys: Sequence[str],
    add: Sequence[str] = (),
    least: Sequence[str] = (),
    greatest: Sequence[str] = (),
    replace: Sequence[str] = (),
) -> None:
    """Insert *rows*; where *keys* exist, add, keep the least/greatest, or replace columns."""
    if not rows:
        return
    dialect = conn.dialect.name

    def build() -> Any:  # once per dialect and statement: only the dialect in use is loaded
        if dialect in _MYSQL:
            from sqlalchemy.dialects import mysql

            stmt: Any = mysql.insert(table)
            new = stmt.inserted
        elif dialect == "postgresql":
            from sqlalchemy.dialects import postgresql

            stmt = postgresql.insert(table)
            new = stmt.excluded
        else:
            from sqlalchemy.dialects import sqlite

            stmt = sqlite.insert(table)
            new = stmt.excluded
        two_arg = dialect == "sqlite"
        sets: dict[str, Any] = {}
        for c in add:
            sets[c] = table.c[c] + new[c]
        for c in least:
            old, incoming = func.coalesce(table.c[c], new[c]), func.coalesce(new[c], table.c[c])
            sets[c] = func.min(old, incoming) if two_arg else func.least(old, incoming)
        for c in greatest:
            old, incoming = func.coalesce(table.c[c], new[c]), func.coalesce(new[c], table.c[c])
            sets[c] = func.max(old, incoming) if two_arg else func.greatest(old, incoming)
        for c in replace:
            sets[c] = new[c]
        if dialect in _MYSQL:
            return stmt.on_duplicate_key_update(sets or {keys[0]: table.c[keys[0]]})
        if sets:
            return stmt.on_conflict_do_update(index_elements=list(keys), set_=sets)
        return stmt.on_conflict_do_nothing(index_elements=list(keys))

    key = (
        "upsert",
        table.name,
        tuple(keys),
        tuple(add),
        tuple(least),
        tuple(greatest),
        tuple(replace),
    )
    bulk(conn, key, build, rows)
