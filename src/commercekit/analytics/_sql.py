"""Batched upserts that add to counters, keep minima or maxima, or replace, per dialect.

SQLite and PostgreSQL use ``INSERT ... ON CONFLICT DO UPDATE``; MySQL and
MariaDB ``INSERT ... ON DUPLICATE KEY UPDATE``. Rows go in one executemany.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from sqlalchemy import Connection, Table, func
from sqlalchemy.dialects import mysql, postgresql, sqlite

__all__ = ["bulk", "upsert"]


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
    if dialect in ("mysql", "mariadb"):
        stmt: Any = mysql.insert(table)
        new = stmt.inserted
    else:
        stmt = (postgresql.insert if dialect == "postgresql" else sqlite.insert)(table)
        new = stmt.excluded
    two_arg_min = dialect == "sqlite"
    sets: dict[str, Any] = {}
    for c in add:
        sets[c] = table.c[c] + new[c]
    for c in least:
        old, incoming = func.coalesce(table.c[c], new[c]), func.coalesce(new[c], table.c[c])
        sets[c] = func.min(old, incoming) if two_arg_min else func.least(old, incoming)
    for c in greatest:
        old, incoming = func.coalesce(table.c[c], new[c]), func.coalesce(new[c], table.c[c])
        sets[c] = func.max(old, incoming) if two_arg_min else func.greatest(old, incoming)
    for c in replace:
        sets[c] = new[c]
    if dialect in ("mysql", "mariadb"):
        if not sets:
            sets = {keys[0]: table.c[keys[0]]}
        stmt = stmt.on_duplicate_key_update(sets)
    elif sets:
        stmt = stmt.on_conflict_do_update(index_elements=list(keys), set_=sets)
    else:
        stmt = stmt.on_conflict_do_nothing(index_elements=list(keys))
    bulk(conn, stmt, rows)


def bulk(conn: Connection, stmt: Any, rows: Sequence[Mapping[str, Any]]) -> None:
    """Run *stmt* once per row through the driver's executemany.

    The statement is compiled once and the rows go to the driver as they are
    (plain str and int values need no type processing), which is several
    times faster than SQLAlchemy's per-row parameter handling.
    """
    if not rows:
        return
    compiled = stmt.compile(dialect=conn.dialect, column_keys=list(rows[0]))
    if compiled.positional:
        order = compiled.positiontup or []
        params: Any = [tuple(r[k] for k in order) for r in rows]
    else:
        params = [dict(r) for r in rows]
    conn.exec_driver_sql(str(compiled), params)
