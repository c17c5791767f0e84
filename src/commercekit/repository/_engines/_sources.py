"""Position sources, one per engine kind: PostgreSQL LSNs, MariaDB GTIDs, commit times."""

from __future__ import annotations

import time
from collections.abc import Callable

from sqlalchemy import Connection, text

from commercekit.repository._policy._position import CommitTime, GtidPosition, Lsn, Position, covers
from commercekit.repository._typing import PositionSource, ReplicaStatus
from commercekit.typing import MonotonicClock, WallClock

__all__ = [
    "CommitTimePositions",
    "MariaDbPositions",
    "PostgresPositions",
    "position_source_for",
]

_PG_STATUS = text(
    "select pg_is_in_recovery(), pg_last_wal_replay_lsn()::text, "
    "case when pg_last_wal_receive_lsn() = pg_last_wal_replay_lsn() then 0 "
    "else coalesce(extract(epoch from now() - pg_last_xact_replay_timestamp()), 0) end"
)
_PG_REPLAYED = text("select pg_last_wal_replay_lsn()::text")
_PG_CURRENT = text("select pg_current_wal_lsn()::text")


class PostgresPositions:
    """PostgreSQL streaming replication: tokens are WAL LSNs.

    ``after_commit`` reads ``pg_current_wal_lsn()``, which is at or past the
    commit record; a standby has the commit once ``pg_last_wal_replay_lsn()``
    reaches it. PostgreSQL 15 has no server-side wait, so ``wait`` polls with
    a short, growing sleep (``poll_s`` doubling up to ``max_poll_s``).
    """

    def __init__(
        self,
        *,
        poll_s: float = 0.0005,
        max_poll_s: float = 0.01,
        clock: MonotonicClock = time.monotonic,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self._poll_s = poll_s
        self._max_poll_s = max_poll_s
        self._clock = clock
        self._sleep = sleep

    def after_commit(self, connection: Connection) -> Position:
        return Lsn.parse(str(connection.execute(_PG_CURRENT).scalar_one()))

    def wait(self, connection: Connection, wanted: Position, timeout_s: float) -> Position | None:
        deadline = self._clock() + timeout_s
        pause = self._poll_s
        while True:
            raw = connection.execute(_PG_REPLAYED).scalar_one()
            if raw is None:  # promoted, or not a standby at all
                return None
            replayed = Lsn.parse(str(raw))
            if covers(replayed, wanted):
                return replayed
            left = deadline - self._clock()
            if left <= 0:
                return None
            self._sleep(min(pause, left))
            pause = min(pause * 2, self._max_poll_s)

    def status(self, connection: Connection) -> ReplicaStatus:
        in_recovery, replayed, lag = connection.execute(_PG_STATUS).one()
        if not in_recovery or replayed is None:
            return ReplicaStatus(None, None, replicating=False)
        return ReplicaStatus(Lsn.parse(str(replayed)), float(lag))


class MariaDbPositions:
    """MariaDB GTID replication: tokens are GTID positions.

    ``after_commit`` reads the server's ``@@gtid_binlog_pos`` after the
    commit; ``wait`` uses ``MASTER_GTID_WAIT``, which blocks on the server.
    """

    def after_commit(self, connection: Connection) -> Position:
        # The server-wide position, read after the commit returned: it covers
        # that commit whichever pooled connection reads it (@@last_gtid would
        # only be right on the very connection that committed).
        pos = connection.execute(text("select @@gtid_binlog_pos")).scalar_one()
        return GtidPosition.parse(str(pos or ""))

    def wait(self, connection: Connection, wanted: Position, timeout_s: float) -> Position | None:
        if not isinstance(wanted, GtidPosition):
            return None
        if not wanted.domains:
            return wanted
        outcome = connection.execute(
            text("select master_gtid_wait(:gtid, :timeout)"),
            {"gtid": str(wanted), "timeout": max(timeout_s, 0.0)},
        ).scalar_one()
        return wanted if outcome == 0 else None

    def status(self, connection: Connection) -> ReplicaStatus:
        row = connection.exec_driver_sql("SHOW SLAVE STATUS").mappings().first()
        pos = connection.execute(text("select @@gtid_slave_pos")).scalar_one()
        replayed = GtidPosition.parse(str(pos or ""))
        if row is None:
            return ReplicaStatus(replayed, None, replicating=False)
        behind = row.get("Seconds_Behind_Master")
        # The SQL thread replays; the IO thread may be reconnecting to a dead
        # primary, and the replica still serves what it has (tokens are exact).
        running = row.get("Slave_SQL_Running") == "Yes"
        lag = None if behind is None else float(behind)
        return ReplicaStatus(replayed, lag, replicating=running)


class CommitTimePositions:
    """Engines without positions: the token is the commit's wall-clock time.

    A replica can never prove it has such a token, so reads carrying one go to
    the primary for ``read_your_writes_window_s`` after the commit.
    """

    def __init__(self, wall_clock: WallClock = time.time) -> None:
        self._wall_clock = wall_clock

    def after_commit(self, connection: Connection) -> Position:
        return CommitTime(self._wall_clock())

    def wait(self, connection: Connection, wanted: Position, timeout_s: float) -> Position | None:
        return None

    def status(self, connection: Connection) -> ReplicaStatus:
        return ReplicaStatus(None, None)


def position_source_for(
    connection: Connection,
    *,
    wall_clock: WallClock = time.time,
    sleep: Callable[[float], None] = time.sleep,
) -> PositionSource:
    """The position source for the engine behind *connection* (by its dialect).

    *sleep* is how PostgreSQL's token wait pauses between polls (an
    :class:`~commercekit.repository.AsyncDatabase` passes one that yields to
    the event loop).
    """
    dialect = connection.dialect
    if dialect.name == "postgresql":
        return PostgresPositions(sleep=sleep)
    if dialect.name in {"mysql", "mariadb"} and getattr(dialect, "is_mariadb", False):
        return MariaDbPositions()
    return CommitTimePositions(wall_clock)
