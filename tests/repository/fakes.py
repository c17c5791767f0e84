"""A SQLite stand-in for a replicated group: replica files, a controllable position source."""

from __future__ import annotations

import sqlite3
from pathlib import Path

from sqlalchemy import Connection, Engine, event, insert, select
from sqlalchemy.engine import ExceptionContext

from commercekit.repository import Lsn, Position, ReplicaStatus
from commercekit.repository._policy._position import covers

from .models import Base


class FakeClock:
    def __init__(self, now: float = 1000.0) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


class FakePositions:
    """Each commit's token is the next LSN; each replica has replayed what the test says."""

    def __init__(self, names: dict[str, str]) -> None:
        self.by_path = names  # database path -> replica name
        self.committed = 0
        self.replayed: dict[str, int] = {}
        self.lag: dict[str, float | None] = {}
        self.waits: list[str] = []

    def _name(self, connection: Connection) -> str:
        return self.by_path[str(connection.engine.url.database)]

    def after_commit(self, connection: Connection) -> Position:
        self.committed += 1
        return Lsn(self.committed)

    def wait(self, connection: Connection, wanted: Position, timeout_s: float) -> Position | None:
        name = self._name(connection)
        self.waits.append(name)
        have = Lsn(self.replayed.get(name, 0))
        return have if covers(have, wanted) else None

    def status(self, connection: Connection) -> ReplicaStatus:
        name = self._name(connection)
        return ReplicaStatus(Lsn(self.replayed.get(name, 0)), self.lag.get(name, 0.0))


def replicate(primary: Engine, replica: Engine) -> None:
    """Copy every table's rows from *primary* to *replica* (a crude, instant replication)."""
    with primary.connect() as src, replica.begin() as dst:
        for table in reversed(Base.metadata.sorted_tables):
            dst.execute(table.delete())
        for table in Base.metadata.sorted_tables:
            rows = [dict(r._mapping) for r in src.execute(select(table))]
            if rows:
                dst.execute(insert(table), rows)


def dead_path(tmp_path: Path) -> Path:
    return tmp_path / "no-such-dir" / "replica.db"


class Outage:
    """While on, every statement on *engine* fails as a lost connection (connecting still works).

    What a replica that dies between handing out a connection and answering
    its first statement looks like. Takes a sync engine (``sync_engine`` of an
    async one).
    """

    def __init__(self, engine: Engine) -> None:
        self.on = False
        self.failed = 0
        event.listen(engine, "before_cursor_execute", self._before)
        event.listen(engine, "handle_error", self._handle)

    def _before(self, *_args: object) -> None:
        if self.on:
            self.failed += 1
            raise sqlite3.OperationalError("disk I/O error (simulated outage)")

    def _handle(self, context: ExceptionContext) -> None:
        if self.on:
            context.is_disconnect = True
