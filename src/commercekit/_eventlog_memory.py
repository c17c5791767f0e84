"""``InMemoryEventLog``: the analytics event log in memory (shipped in ``commercekit.testing``)."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Sequence

import attrs

from commercekit.analytics import Delivery, LogRecord
from commercekit.analytics._logs._log import _limits

__all__ = ["InMemoryEventLog"]


@attrs.define
class _Pending:
    consumer: str
    since: float
    deliveries: int


@attrs.define
class _Group:
    read: int = 0  # entries[:read] were handed out to the group
    pending: dict[int, _Pending] = attrs.Factory(dict)  # entry index -> who holds it


class _Stream:
    """What several :class:`InMemoryEventLog` connections to one log share."""

    def __init__(self, *, deduplicate: bool, clock: Callable[[], float]) -> None:
        self.entries: list[LogRecord] = []
        self.ids: set[str] = set()
        self.groups: dict[str, _Group] = {}
        self.deduplicate = deduplicate
        self.clock = clock
        self.changed = threading.Condition()


class InMemoryEventLog:
    """An :class:`~commercekit.analytics.EventLog` in memory, for tests of consumers.

    It keeps the semantics of :class:`~commercekit.analytics.RedisStreamsLog`:
    entries in publish order, one read position per consumer group, a list of
    pending (delivered, unacknowledged) entries per group. :meth:`consume`
    gives this consumer's own pending entries first after :meth:`connect`
    (a restarted process), then entries idle longer than *claim_idle_s*
    whoever holds them (``XAUTOCLAIM``), then new ones. Acknowledging twice,
    or a delivery this log never handed out, does nothing.

    With *deduplicate*, a second publish of an event id is dropped, as
    JetStream does with ``Nats-Msg-Id``. *clock* (monotonic seconds) measures
    claim idleness, so a test can pass time with a
    :class:`~commercekit.testing.ManualClock` instead of sleeping.
    """

    def __init__(
        self,
        *,
        group: str = "analytics",
        consumer: str = "consumer",
        claim_idle_s: float = 30.0,
        deduplicate: bool = False,
        clock: Callable[[], float] = time.monotonic,
        _stream: _Stream | None = None,
    ) -> None:
        self.group = group
        self.consumer = consumer
        self._claim_idle_s = claim_idle_s
        self._stream = _stream or _Stream(deduplicate=deduplicate, clock=clock)
        self._own_pending = True

    def connect(self, *, consumer: str | None = None, group: str | None = None) -> InMemoryEventLog:
        """Another connection to the same log: a second consumer, or this one restarted."""
        return InMemoryEventLog(
            group=group or self.group,
            consumer=consumer or self.consumer,
            claim_idle_s=self._claim_idle_s,
            _stream=self._stream,
        )

    @property
    def records(self) -> list[LogRecord]:
        """Every record stored, in order (a de-duplicated publish is not there)."""
        with self._stream.changed:
            return list(self._stream.entries)

    def publish(self, records: Sequence[LogRecord]) -> None:
        """Append *records* in order (dropping ids already stored, with *deduplicate*)."""
        s = self._stream
        with s.changed:
            for r in records:
                if s.deduplicate and r.event_id in s.ids:
                    continue
                s.ids.add(r.event_id)
                s.entries.append(r)
            s.changed.notify_all()

    def consume(self, max_messages: int = 500, timeout_s: float = 1.0) -> list[Delivery]:
        """Own pending entries first, then claimed idle ones, then new ones."""
        _limits(max_messages, timeout_s)
        s = self._stream
        deadline = time.monotonic() + timeout_s
        with s.changed:
            g = s.groups.setdefault(self.group, _Group())
            while True:
                taken = self._take(g, max_messages)
                remaining = deadline - time.monotonic()
                if taken or remaining <= 0:
                    return taken
                s.changed.wait(remaining)

    def _take(self, g: _Group, limit: int) -> list[Delivery]:
        s, now = self._stream, self._stream.clock()
        if self._own_pending:
            mine = sorted(i for i, p in g.pending.items() if p.consumer == self.consumer)[:limit]
            if mine:
                return [self._deliver(g, i, now) for i in mine]
            self._own_pending = False
        idle = sorted(i for i, p in g.pending.items() if now - p.since >= self._claim_idle_s)
        if idle:
            return [self._deliver(g, i, now) for i in idle[:limit]]
        new = range(g.read, min(len(s.entries), g.read + limit))
        g.read = new.stop
        return [self._deliver(g, i, now) for i in new]

    def _deliver(self, g: _Group, index: int, now: float) -> Delivery:
        held = g.pending.get(index)
        count = held.deliveries + 1 if held else 1
        g.pending[index] = _Pending(self.consumer, now, count)
        r = self._stream.entries[index]
        return Delivery(str(index + 1), r.body, r.event_id, count)

    def acknowledge(self, deliveries: Sequence[Delivery]) -> None:
        """Take the deliveries off the group's pending list (unknown ones are ignored)."""
        with self._stream.changed:
            g = self._stream.groups.setdefault(self.group, _Group())
            for d in deliveries:
                if d.handle.isdigit():
                    g.pending.pop(int(d.handle) - 1, None)

    def lag(self) -> int:
        """Entries the group has not acknowledged (pending plus unread)."""
        with self._stream.changed:
            g = self._stream.groups.get(self.group, _Group())
            return len(g.pending) + len(self._stream.entries) - g.read

    def close(self) -> None:
        """Nothing to release (the entries stay for other connections)."""
