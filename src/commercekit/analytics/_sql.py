"""Batched inserts and upserts (add to counters, keep minima or maxima, replace), per dialect.

SQLite and PostgreSQL use ``INSERT ... ON CONFLICT DO UPDATE``; MySQL and
MariaDB ``INSERT ... ON DUPLICATE KEY UPDATE``. Each statement is compiled
once per dialect and column set, and rows go to the driver's executemany as
they are (plain str and int values need no type processing): several times
faster than SQLAlchemy's per-row parameter handling on the consumer's path.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from operator import itemgetter
from typing import Any

from sqlalchemy import Connection, Table, func
from sqlalchemy.dialects import mysql, postgresql, sqlite

__all__ = ["bulk", "insert_rows", "upsert"]

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

    def build() -> Any:
        if dialect in ("mysql", "mariadb"):
            stmt: Any = mysql.insert(table)
            new = stmt.inserted
        else:
            stmt = (postgresql.insert if dialect == "postgresql" else sqlite.insert)(table)
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
        if dialect in ("mysql", "mariadb"):
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
