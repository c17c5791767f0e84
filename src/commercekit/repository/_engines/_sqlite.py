"""SQLite engines whose transactions really begin, in WAL mode.

Python's ``sqlite3`` (legacy transaction control, the default before 3.16)
emits no ``BEGIN`` before a SELECT, so reads in a "transaction" are not
repeatable and SAVEPOINTs escape it. SQLAlchemy's documented recipe fixes
that: a ``connect`` listener sets ``isolation_level = None`` (the driver stops
managing transactions) and a ``begin`` listener emits ``BEGIN`` itself. A unit
of work that writes asks for ``BEGIN IMMEDIATE`` (execution option
``commercekit_sqlite_begin``), so two writers queue on the lock instead of
deadlocking when both upgrade from a read.
"""

from __future__ import annotations

import os
from typing import Any

from sqlalchemy import Connection, Engine, create_engine, event
from sqlalchemy.pool import StaticPool

__all__ = ["BEGIN_OPTION", "configure_sqlite", "sqlite_engine"]

BEGIN_OPTION = "commercekit_sqlite_begin"
"""Execution option naming the BEGIN variant (``DEFERRED``, ``IMMEDIATE``, ``EXCLUSIVE``)."""

_BEGINS = {"DEFERRED": "BEGIN", "IMMEDIATE": "BEGIN IMMEDIATE", "EXCLUSIVE": "BEGIN EXCLUSIVE"}


def configure_sqlite(engine: Engine, *, wal: bool = True, busy_timeout_s: float = 5.0) -> Engine:
    """Install the BEGIN fix (and WAL, foreign keys, a busy timeout) on a SQLite *engine*."""
    if engine.dialect.name != "sqlite":
        return engine
    if getattr(engine, "_commercekit_sqlite", False):
        return engine
    memory = engine.url.database in (None, "", ":memory:")

    def on_connect(dbapi_connection: Any, _record: object) -> None:
        dbapi_connection.isolation_level = None
        cursor = dbapi_connection.cursor()
        try:
            cursor.execute(f"PRAGMA busy_timeout = {int(busy_timeout_s * 1000)}")
            cursor.execute("PRAGMA foreign_keys = ON")
            if wal and not memory:
                cursor.execute("PRAGMA journal_mode = WAL")
                cursor.execute("PRAGMA synchronous = NORMAL")
        finally:
            cursor.close()

    def on_begin(connection: Connection) -> None:
        mode = connection.get_execution_options().get(BEGIN_OPTION, "DEFERRED")
        connection.exec_driver_sql(_BEGINS.get(str(mode).upper(), "BEGIN"))

    event.listen(engine, "connect", on_connect)
    event.listen(engine, "begin", on_begin)
    engine._commercekit_sqlite = True  # type: ignore[attr-defined]
    return engine


def sqlite_engine(
    path: str | os.PathLike[str] | None = None,
    *,
    wal: bool = True,
    busy_timeout_s: float = 5.0,
    **engine_options: Any,
) -> Engine:
    """Create a SQLite engine for *path* (None or ``":memory:"``: one in-memory database).

    An in-memory database is shared by every session of the engine (one
    connection, ``StaticPool``), so data outlives each unit of work.
    """
    if path is None or str(path) == ":memory:":
        engine = create_engine(
            "sqlite://",
            poolclass=StaticPool,
            connect_args={"check_same_thread": False},
            **engine_options,
        )
    else:
        engine = create_engine(f"sqlite:///{os.fspath(path)}", **engine_options)
    return configure_sqlite(engine, wal=wal, busy_timeout_s=busy_timeout_s)
