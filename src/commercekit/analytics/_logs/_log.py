"""The ``EventLog`` seam (publish, consume, acknowledge) and its two embedded engines.

Delivery through every engine is at least once: a delivery not acknowledged
(the consumer died, or lost its connection) comes again. Consumers make the
effect exactly once by de-duplicating event ids in their own transaction.

* :class:`JsonLinesLog`: one append-only file of JSON lines, and a committed
  byte offset per consumer group beside it (the embedded default).
* :class:`SqlEventLog`: a table of messages and a table of group offsets.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import Any, Protocol, runtime_checkable

import attrs
from sqlalchemy import (
    BigInteger,
    Column,
    Engine,
    Integer,
    MetaData,
    String,
    Table,
    select,
)
from sqlalchemy import exc as sa_exc

from commercekit.analytics._sql import LongBlob
from commercekit.errors import (
    ConfigurationError,
    InvalidInputError,
    RepositoryError,
    UnavailableError,
)

__all__ = ["Delivery", "EventLog", "JsonLinesLog", "LogRecord", "SqlEventLog"]


@attrs.frozen
class LogRecord:
    """One message to publish: its event id (the de-duplication key), key and body."""

    event_id: str
    body: bytes
    key: str | None = None


@attrs.frozen
class Delivery:
    """One delivered message. ``handle`` is the engine's id for it (stream entry, sequence)."""

    handle: str
    body: bytes
    event_id: str | None = None
    deliveries: int = 1
    native: Any = attrs.field(default=None, eq=False, repr=False)


@runtime_checkable
class EventLog(Protocol):
    """An event log one consumer group reads from (each engine's settings name the group)."""

    def publish(self, records: Sequence[LogRecord]) -> None:
        """Append *records* durably, in order; raise UnavailableError if the log is down."""
        ...

    def consume(self, max_messages: int = 500, timeout_s: float = 1.0) -> list[Delivery]:
        """Up to *max_messages* deliveries, waiting at most *timeout_s* for the first."""
        ...

    def acknowledge(self, deliveries: Sequence[Delivery]) -> None:
        """Say these are processed: they are not delivered again to this group."""
        ...

    def close(self) -> None:
        """Release connections and files."""
        ...


_POLL_FIRST_S, _POLL_MAX_S = 0.002, 0.05
"""The embedded logs' wait for a first message: a read, then reads 2 ms apart, doubling to 50 ms."""


def _polled(read: Callable[[], list[Delivery]], timeout_s: float) -> list[Delivery]:
    """*read* until it returns something or *timeout_s* has passed.

    A file or a table gives nothing to block on across processes, so an empty
    log is read again after a pause that doubles up to 50 ms: a
    consumer idle for a second reads ~25 times instead of as fast as the CPU
    allows, and a record published during the wait comes within 50 ms.
    """
    deadline = time.monotonic() + timeout_s
    pause = _POLL_FIRST_S
    while True:
        got = read()
        remaining = deadline - time.monotonic()
        if got or remaining <= 0:
            return got
        time.sleep(min(pause, remaining))
        pause = min(pause * 2, _POLL_MAX_S)


def _limits(max_messages: int, timeout_s: float) -> None:
    if isinstance(max_messages, bool) or not isinstance(max_messages, int) or max_messages < 1:
        raise InvalidInputError(f"max_messages is a positive int, got {max_messages!r}")
    if not 0 <= timeout_s <= 3600:
        raise InvalidInputError(f"timeout_s is 0 to 3600, got {timeout_s!r}")


@contextlib.contextmanager
def _file_errors(path: Path, what: str) -> Iterator[None]:
    """A file that cannot be read or written (a disk error, a full disk): UnavailableError."""
    try:
        yield
    except OSError as exc:
        raise UnavailableError(
            f"could not {what} the event log file {str(path)!r}: {exc.strerror or exc}"
        ) from exc


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


class JsonLinesLog:
    """An append-only JSON-lines file; each consumer group keeps a committed byte offset.

    Lines are ``{"event_id": ..., "key": ..., "body": ...}``. A line cut short
    by a crash is never delivered (only lines ending in a newline are read).
    Several processes may publish at once (``flock``); one process per group
    consumes. An unacknowledged delivery comes again after a restart.
    """

    def __init__(self, path: str | os.PathLike[str], *, group: str = "analytics") -> None:
        self.path = Path(path)
        if not group.replace("-", "").replace("_", "").isalnum():
            raise InvalidInputError(f"a group name is letters, digits, - and _; got {group!r}")
        self._offset_path = self.path.with_name(f"{self.path.name}.{group}.offset")
        self._read_pos: int | None = None
        self._handed: dict[int, int] = {}  # start -> end offset of lines read, not committed
        self._acked: dict[int, int] = {}  # start offset -> end offset of acked lines
        self._lock = threading.Lock()

    def publish(self, records: Sequence[LogRecord]) -> None:
        """Append *records* (one write and one fsync per call)."""
        if not records:
            return
        with _file_errors(self.path, "publish to"):
            self._publish(records)

    def _publish(self, records: Sequence[LogRecord]) -> None:
        lines = "".join(
            json.dumps(
                {
                    "event_id": r.event_id,
                    "key": r.key,
                    "body": r.body.decode("utf-8", errors="replace"),
                },
                separators=(",", ":"),
            )
            + "\n"
            for r in records
        ).encode()
        self.path.parent.mkdir(parents=True, exist_ok=True)
        with open(self.path, "ab") as f:
            fcntl.flock(f, fcntl.LOCK_EX)
            try:
                f.write(lines)
                f.flush()
                os.fsync(f.fileno())
            finally:
                fcntl.flock(f, fcntl.LOCK_UN)

    def _committed(self) -> int:
        try:
            return int(self._offset_path.read_text() or 0)
        except FileNotFoundError:
            return 0

    def consume(self, max_messages: int = 500, timeout_s: float = 1.0) -> list[Delivery]:
        """Complete lines after what this process has read (from the committed offset).

        With none there, it reads again until one comes or *timeout_s* passed.
        """
        _limits(max_messages, timeout_s)
        return _polled(lambda: self._read(max_messages), timeout_s)

    def _read(self, max_messages: int) -> list[Delivery]:
        with self._lock, _file_errors(self.path, "read"):
            if self._read_pos is None:
                self._read_pos = self._committed()
            out: list[Delivery] = []
            if not self.path.exists():
                return out
            with open(self.path, "rb") as f:
                f.seek(self._read_pos)
                while len(out) < max_messages:
                    start = f.tell()
                    line = f.readline()
                    if not line.endswith(b"\n"):
                        break
                    end = f.tell()
                    out.append(self._delivery(start, end, line))
                    self._handed[start] = end
                    self._read_pos = end
        return out

    @staticmethod
    def _delivery(start: int, end: int, line: bytes) -> Delivery:
        handle = f"{start}-{end}"
        try:
            data = json.loads(line)
            body = str(data["body"]).encode()  # past this, data is an object
            event_id = data.get("event_id")
            return Delivery(handle, body, event_id if isinstance(event_id, str) else None)
        except (ValueError, KeyError, TypeError, RecursionError):  # nested past the decoder
            return Delivery(handle, line.rstrip(b"\n"))  # parked by the consumer

    def acknowledge(self, deliveries: Sequence[Delivery]) -> None:
        """Advance the committed offset over every contiguous acknowledged line.

        A delivery this log did not hand out (or acknowledged already) is ignored.
        """
        with self._lock, _file_errors(self._offset_path, "commit the offset to"):
            for d in deliveries:
                start, _, end = d.handle.partition("-")
                if start.isdigit() and end.isdigit() and self._handed.get(int(start)) == int(end):
                    self._acked[int(start)] = int(end)
            committed = start_of = self._committed()
            while committed in self._acked:
                self._handed.pop(committed, None)
                committed = self._acked.pop(committed)
            if committed != start_of:
                tmp = self._offset_path.with_suffix(".tmp")
                tmp.write_text(str(committed))
                os.replace(tmp, self._offset_path)

    def close(self) -> None:
        """Nothing to release (files are opened per call)."""


class SqlEventLog:
    """An event log in SQL: ``<prefix>messages`` and ``<prefix>offsets`` (one row per group).

    Create the tables with :meth:`create`. Messages are read in sequence
    order; one consumer per group.
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
            Column("grp", String(100), primary_key=True),
            Column("seq", BigInteger, nullable=False),
        )
        self._read_pos: int | None = None
        self._acked: set[int] = set()

    def create(self) -> None:
        """Create the two tables if they are missing."""
        self.metadata.create_all(self._engine)

    def publish(self, records: Sequence[LogRecord]) -> None:
        """Insert *records* in one transaction."""
        if not records:
            return
        # Unreachable is transient (UnavailableError); a record the database refuses for
        # good (an id past 64 characters) is a RepositoryError, never waited out.
        with _sql_errors("publish"), self._engine.begin() as conn:
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
