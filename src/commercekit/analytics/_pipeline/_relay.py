"""The outbox relay, the EventChannel sink, ``record``, and the relay's metrics.

| name | kind | tags |
| --- | --- | --- |
| ``commercekit_analytics_events_relayed_total`` | counter | relay |
| ``commercekit_analytics_relay_failures_total`` | counter | relay |
"""

from __future__ import annotations

from collections.abc import Sequence

from commercekit.analytics._events._event import AnalyticsEvent
from commercekit.analytics._events._segment import from_metrics_event
from commercekit.analytics._logs._log import EventLog, LogRecord
from commercekit.errors import TransientError
from commercekit.metrics import Event, Metrics, NullMetrics
from commercekit.repository import Database, Outbox, OutboxClaim, UnitOfWork

__all__ = ["LogSink", "OutboxRelay", "record"]

P = "commercekit_analytics_"
ANALYTICS_TOPIC = "analytics"


def record(uow: UnitOfWork, outbox: Outbox, event: AnalyticsEvent) -> bool:
    """Append *event* to *outbox* in *uow*'s transaction (topic ``analytics``, key = who).

    It is published only if the unit of work commits. False if the id was stored already.
    """
    return outbox.append(
        uow, topic=ANALYTICS_TOPIC, key=event.who, payload=event.to_json(), event_id=event.event_id
    )


class OutboxRelay:
    """Moves events from the repository's outbox to an :class:`EventLog`, at least once.

    Each round claims a batch (a lease), publishes it with the events' own ids,
    then marks it sent. A crash between publishing and marking sent publishes
    the batch again after the lease runs out, with the same ids.
    """

    def __init__(
        self,
        db: Database,
        outbox: Outbox,
        log: EventLog,
        *,
        relay: str = "relay",
        batch_size: int = 500,
        lease_s: float = 30.0,
        metrics: Metrics | None = None,
    ) -> None:
        m = metrics or NullMetrics()
        self.db, self.outbox, self.log = db, outbox, log
        self.relay, self._batch, self._lease_s = relay, batch_size, lease_s
        self._relayed = m.counter(
            f"{P}events_relayed_total",
            description="Outbox events published to the event log",
            tags={"relay": relay},
        )
        self._failures = m.counter(
            f"{P}relay_failures_total",
            description="Relay rounds that failed to publish",
            tags={"relay": relay},
        )

    def claim(self) -> OutboxClaim:
        """Lease the next batch (committed before anything is published)."""
        return self.db.run(
            lambda uow: self.outbox.claim(
                uow, relay=self.relay, limit=self._batch, lease_s=self._lease_s
            ),
            retry=True,
        ).value

    def publish(self, claim: OutboxClaim) -> None:
        """Publish a claimed batch; on failure give the lease back and raise."""
        # The payload as stored (canonical JSON); a malformed one is parked by the consumer.
        records = [LogRecord(e.event_id, _raw(e.payload), e.key) for e in claim.events]
        try:
            self.log.publish(records)
        except TransientError:
            self._failures.inc()
            self.db.run(lambda uow: self.outbox.release(uow, claim), retry=True)
            raise

    def mark_sent(self, claim: OutboxClaim) -> int:
        """Mark a published batch sent."""
        done = self.db.run(lambda uow: self.outbox.mark_sent(uow, claim), retry=True).value
        self._relayed.inc(len(claim.events))
        return done

    def run_once(self) -> int:
        """Claim, publish and mark one batch; returns how many events it published."""
        claim = self.claim()
        if not claim.events:
            return 0
        self.publish(claim)
        self.mark_sent(claim)
        return len(claim.events)


def _raw(payload: object) -> bytes:
    import json

    return json.dumps(payload, separators=(",", ":"), sort_keys=True).encode()


class LogSink:
    """An :class:`commercekit.metrics.EventSink` that publishes events to an EventLog.

    Metrics events get an event id when they reach the sink; delivery from the
    channel is best effort (a full channel drops), from the log on at least once.
    """

    def __init__(self, log: EventLog) -> None:
        self.log = log

    def __call__(self, events: Sequence[Event], /) -> None:
        """Publish a batch from the channel."""
        records = []
        for e in events:
            a = from_metrics_event(e)
            records.append(LogRecord(a.event_id, a.to_bytes(), a.who))
        self.log.publish(records)
