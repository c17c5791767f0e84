"""``SqlEventLog``: the event log in SQL, a table of messages and a table of group offsets."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator, Sequence

from sqlalchemy import BigInteger, Column, Engine, Integer, MetaData, String, Table, select
from sqlalchemy import exc as sa_exc

from commercekit.analytics._sql import ExactString, LongBlob, upsert
from commercekit.errors import ConfigurationError, RepositoryError, UnavailableError

from ._log import Delivery, LogRecord, _limits, _polled

__all__ = ["SqlEventLog"]


@contextlib.contextmanager
def _sql_errors(what: str) -> Iterator[None]:
    """The driver's errors as commercekit's: unreachable is transient, the rest is not."""
    try:
        yield
    except sa_exc.DBAPIError as exc:
        if _no_table(exc):  # no outage: waiting never makes the table
            raise ConfigurationError(
                f"the SQL event log could not {what}: its tables are missing ({exc.orig}); "
                "call SqlEventLog.create() once, or point it at the database that has them"
            ) from exc
        if isinstance(exc, sa_exc.OperationalError | sa_exc.InterfaceError):
            raise UnavailableError(f"the SQL event log could not {what}: {exc}") from exc
        raise RepositoryError(f"the SQL event log could not {what}: {exc}") from exc
    except sa_exc.TimeoutError as exc:  # the pool's: no connection came free in time
        raise UnavailableError(f"the SQL event log could not {what}: {exc}") from exc
    except sa_exc.SQLAlchemyError as exc:
        raise RepositoryError(f"the SQL event log could not {what}: {exc}") from exc


def _no_table(exc: sa_exc.DBAPIError) -> bool:
    """A missing table: PostgreSQL's 42P01, MySQL's 1146, SQLite's "no such table"."""
    orig = exc.orig
    code = getattr(orig, "sqlstate", None) or getattr(orig, "pgcode", None)
    args: tuple[object, ...] = tuple(getattr(orig, "args", ()))
    return (
        code == "42P01" or (bool(args) and args[0] == 1146) or str(orig).startswith("no such table")
    )


class SqlEventLog:
    """An event log in SQL: ``<prefix>messages`` and ``<prefix>offsets`` (one row per group).

    Create the tables with :meth:`create`. Messages are read in sequence
    order; one consumer per group. Publishers take turns on the one row of
    ``<prefix>publisher`` before they insert, so sequence numbers commit in
    order: a reader past sequence *n* never meets a smaller one committed
    later (two transactions inserting at once could commit 6 before 5, and
    the reader that had read 6 skipped 5).
    """

    def __init__(
        self,
        engine: Engine,
        *,
        group: str = "analytics",
        metadata: MetaData | None = None,
        prefix: str = "ck_eventlog_",
    ) -> None:
        self._engine = engine
        self._group = group
        self.metadata = metadata if metadata is not None else MetaData()
        self.messages = Table(
            f"{prefix}messages",
            self.metadata,
            Column("seq", BigInteger().with_variant(Integer, "sqlite"), primary_key=True),
            Column("event_id", String(64), nullable=False),
            Column("key", String(200), nullable=True),
            Column(
                "body",
                LongBlob(),
                nullable=False,
            ),
        )
        self.offsets = Table(
            f"{prefix}offsets",
            self.metadata,
            Column("grp", ExactString(100), primary_key=True),
            Column("seq", BigInteger, nullable=False),
        )
        self.publisher = Table(
            f"{prefix}publisher",
            self.metadata,
            Column("id", Integer, primary_key=True, autoincrement=False),
            Column("batches", BigInteger, nullable=False),
        )
        self._read_pos: int | None = None
        self._acked: set[int] = set()

    def create(self) -> None:
        """Create the tables that are missing (messages, offsets, publisher)."""
        self.metadata.create_all(self._engine)

    def publish(self, records: Sequence[LogRecord]) -> None:
        """Insert *records* in one transaction."""
        if not records:
            return
        # Unreachable is transient (UnavailableError); a record the database refuses for
        # good (an id past 64 characters) is a RepositoryError, never waited out.
        with _sql_errors("publish"), self._engine.begin() as conn:
            # First, a write that waits for a publisher still in its transaction: the
            # sequence numbers are drawn after it committed, so they commit in order.
            upsert(conn, self.publisher, [{"id": 1, "batches": 1}], keys=("id",), add=("batches",))
            conn.execute(
                self.messages.insert(),
                [{"event_id": r.event_id, "key": r.key, "body": r.body} for r in records],
            )

    def _committed(self) -> int:
        with self._engine.connect() as conn:  # the callers translate its errors
            value = conn.scalar(select(self.offsets.c.seq).where(self.offsets.c.grp == self._group))
        return int(value or 0)

    def consume(self, max_messages: int = 500, timeout_s: float = 1.0) -> list[Delivery]:
        """Messages after the last one read by this process (or the group's offset).

        With none there, it reads again until one comes or *timeout_s* passed.
        """
        _limits(max_messages, timeout_s)
        with _sql_errors("read"):
            return _polled(lambda: self._consume(max_messages), timeout_s)

    def _consume(self, max_messages: int) -> list[Delivery]:
        if self._read_pos is None:
            self._read_pos = self._committed()
        m = self.messages
        with self._engine.connect() as conn:
            rows = conn.execute(
                select(m.c.seq, m.c.event_id, m.c.body)
                .where(m.c.seq > self._read_pos)
                .order_by(m.c.seq)
                .limit(max_messages)
            ).all()
        if rows:
            self._read_pos = int(rows[-1][0])
        return [Delivery(str(r[0]), bytes(r[2]), r[1]) for r in rows]

    def acknowledge(self, deliveries: Sequence[Delivery]) -> None:
        """Advance the group's offset over the contiguous acknowledged messages.

        A delivery this log did not hand out (or acknowledged already) is ignored.
        """
        read = self._read_pos or 0
        self._acked.update(
            int(d.handle) for d in deliveries if d.handle.isdigit() and int(d.handle) <= read
        )
        with _sql_errors("commit the offset"):
            self._commit_offset()

    def _commit_offset(self) -> None:
        with self._engine.begin() as conn:
            o, m = self.offsets, self.messages
            current = int(conn.scalar(select(o.c.seq).where(o.c.grp == self._group)) or 0)
            pending = sorted(s for s in self._acked if s > current)
            if not pending:
                return
            seqs = conn.scalars(
                select(m.c.seq).where(m.c.seq > current, m.c.seq <= pending[-1]).order_by(m.c.seq)
            ).all()
            new = current
            for seq in seqs:
                if seq not in self._acked:
                    break
                new = int(seq)
            self._acked = {s for s in self._acked if s > new}
            if new == current:
                return
            if conn.execute(o.update().where(o.c.grp == self._group).values(seq=new)).rowcount == 0:
                conn.execute(o.insert().values(grp=self._group, seq=new))

    def close(self) -> None:
        """Nothing to release (the engine is the caller's)."""
