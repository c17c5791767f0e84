"""The ``EventLog`` seam: publish, consume, acknowledge, and what goes through it.

Delivery through every engine is at least once: a delivery not acknowledged
(the consumer died, or lost its connection) comes again. Consumers make the
effect exactly once by de-duplicating event ids in their own transaction.

The engines: :class:`JsonLinesLog` (``_jsonl``) and :class:`SqlEventLog`
(``_sql_table``), embedded; :class:`RedisStreamsLog` (``_redis``) and
:class:`JetStreamLog` (``_nats``), on a server.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from typing import Any, Protocol, runtime_checkable

import attrs

from commercekit.errors import InvalidInputError

__all__ = ["Delivery", "EventLog", "LogRecord"]


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
