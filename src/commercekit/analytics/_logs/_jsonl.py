"""``JsonLinesLog``: the event log as one append-only file of JSON lines (the embedded default).

A committed byte offset per consumer group is kept in a file beside it.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import threading
from collections.abc import Iterator, Sequence
from pathlib import Path

from commercekit.errors import InvalidInputError, UnavailableError

from ._log import Delivery, LogRecord, _limits, _polled

__all__ = ["JsonLinesLog"]


@contextlib.contextmanager
def _file_errors(path: Path, what: str) -> Iterator[None]:
    """A file that cannot be read or written (a disk error, a full disk): UnavailableError."""
    try:
        yield
    except OSError as exc:
        raise UnavailableError(
            f"could not {what} the event log file {str(path)!r}: {exc.strerror or exc}"
        ) from exc


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
