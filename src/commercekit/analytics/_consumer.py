"""The consumer loop, the outbox relay, the EventChannel sink, and their metrics.

| name | kind | tags |
| --- | --- | --- |
| ``commercekit_analytics_events_consumed_total`` | counter | log |
| ``commercekit_analytics_duplicates_dropped_total`` | counter | log |
| ``commercekit_analytics_dead_letters_total`` | counter | log |
| ``commercekit_analytics_consumer_lag`` | gauge | log |
| ``commercekit_analytics_consumer_errors_total`` | counter | log |
| ``commercekit_analytics_batch_seconds`` | histogram | log |
| ``commercekit_analytics_events_relayed_total`` | counter | relay |
| ``commercekit_analytics_relay_failures_total`` | counter | relay |
"""

from __future__ import annotations

import contextlib
import logging
import threading
import time
from collections.abc import Callable, Sequence

from commercekit.errors import CommerceKitError, InvalidInputError, TransientError
from commercekit.metrics import Event, Metrics, NullMetrics
from commercekit.repository import Database, Outbox, OutboxClaim, UnitOfWork

from ._events import AnalyticsEvent, from_metrics_event
from ._log import Delivery, EventLog, LogRecord, _limits
from ._store import AnalyticsStore, ApplyResult

__all__ = ["AnalyticsConsumer", "LogSink", "OutboxRelay", "record"]

P = "commercekit_analytics_"
ANALYTICS_TOPIC = "analytics"
_IDLE_LAG_EVERY_S = 5.0  # how often an idle consumer measures its lag
_logger = logging.getLogger("commercekit.analytics")


def record(uow: UnitOfWork, outbox: Outbox, event: AnalyticsEvent) -> bool:
    """Append *event* to *outbox* in *uow*'s transaction (topic ``analytics``, key = who).

    It is published only if the unit of work commits. False if the id was stored already.
    """
    return outbox.append(
        uow, topic=ANALYTICS_TOPIC, key=event.who, payload=event.to_json(), event_id=event.event_id
    )


class AnalyticsConsumer:
    """Reads batches from an :class:`EventLog` into an :class:`AnalyticsStore`.

    Each batch is applied in one transaction, then acknowledged: a crash
    between the two redelivers the batch, and the store drops the duplicates.
    A log or database that is down (a :class:`~commercekit.errors.TransientError`)
    is waited out with a capped backoff, however long it lasts. A batch the
    store refuses with another commercekit error is applied again message by
    message, and the refused message is parked in the dead letters. A batch
    that fails with an error that is not commercekit's (a bug in a handler, a
    driver error nobody translated) may be a passing fault or a poison
    message: it is tried again, backed off, until it has failed
    *max_attempts* times, then narrowed message by message like a refused
    batch, and the failing message is parked with the error as its reason.
    """

    def __init__(
        self,
        log: EventLog,
        store: AnalyticsStore,
        *,
        batch_size: int = 1000,
        poll_timeout_s: float = 0.5,
        metrics: Metrics | None = None,
        name: str = "default",
        sleep: Callable[[float], None] = time.sleep,
        max_attempts: int = 3,
    ) -> None:
        for what, value in (("max_attempts", max_attempts), ("batch_size", batch_size)):
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise InvalidInputError(f"{what} must be a whole number >= 1, got {value!r}")
        _limits(batch_size, poll_timeout_s)  # what every log's consume() accepts
        m = metrics or NullMetrics()
        tags = {"log": name}
        self.log, self.store = log, store
        self._batch, self._poll_s, self._sleep = batch_size, poll_timeout_s, sleep
        self._max_attempts = max_attempts
        self._held: list[Delivery] = []  # a batch to apply again after a failure
        self._lag_at = time.monotonic()  # when the lag gauge was last set
        self._failed = 0  # times the held batch failed with an error that is not ours
        self._consumed = m.counter(
            f"{P}events_consumed_total", description="Events applied to the aggregates", tags=tags
        )
        self._dups = m.counter(
            f"{P}duplicates_dropped_total",
            description="Redelivered events skipped by event id",
            tags=tags,
        )
        self._dead = m.counter(
            f"{P}dead_letters_total",
            description="Malformed messages parked with a reason",
            tags=tags,
        )
        self._errors = m.counter(
            f"{P}consumer_errors_total",
            description="Batches that failed and were retried",
            tags=tags,
        )
        self._lag = m.gauge(
            f"{P}consumer_lag",
            description="Messages in the log not yet acknowledged by this group",
            tags=tags,
        )
        self._seconds = m.histogram(
            f"{P}batch_seconds", description="Time to apply and acknowledge one batch", tags=tags
        )

    def run_once(self) -> ApplyResult:
        """Consume, apply and acknowledge one batch (empty when the log had nothing).

        A batch that failed with a transient error is applied again by the next
        call before anything new is read: the embedded logs redeliver only after
        a restart, Redis and JetStream only after their claim time. A batch that
        failed with an error that is not commercekit's raises a
        :class:`~commercekit.errors.TransientError` (the error is its
        ``__cause__``) and is held the same way, until it has failed
        *max_attempts* times: then it is applied message by message, and the
        message that fails is parked.
        """
        deliveries = self._held or self.log.consume(self._batch, self._poll_s)
        if not deliveries:
            if time.monotonic() - self._lag_at >= _IDLE_LAG_EVERY_S:
                self._measure_lag()  # an idle consumer's gauge must not keep an old backlog
            return ApplyResult(0, 0, 0)
        self._held = deliveries
        started = time.perf_counter()
        try:
            result = self.store.apply(deliveries)
        except TransientError:
            raise
        except CommerceKitError:
            result = self._one_by_one(deliveries)
        except Exception as exc:
            self._failed += 1
            if self._failed < self._max_attempts:
                raise TransientError(
                    f"a batch of {len(deliveries)} failed with {_named(exc)}; it is tried "
                    f"again ({self._failed} of {self._max_attempts} attempts), then message "
                    "by message, parking the message that fails"
                ) from exc
            _logger.warning(
                "a batch of %d failed %d times with %s; applying it message by message",
                len(deliveries),
                self._failed,
                _named(exc),
            )
            result = self._one_by_one(deliveries)
        self.log.acknowledge(deliveries)
        self._held, self._failed = [], 0
        self._seconds.record(time.perf_counter() - started)
        self._consumed.inc(result.applied)
        self._dups.inc(result.duplicates)
        self._dead.inc(result.dead_lettered)
        self._measure_lag()  # after every batch, of duplicates too: it ends at 0 when done
        return result

    def _measure_lag(self) -> None:
        """Set the lag gauge from the log (Redis' group lag, JetStream's pending count)."""
        self._lag_at = time.monotonic()
        lag = getattr(self.log, "lag", None) or getattr(self.log, "pending", None)
        if lag is not None:
            with contextlib.suppress(TransientError):  # the gauge waits for the next batch
                self._lag.set(lag())

    def _one_by_one(self, deliveries: Sequence[Delivery]) -> ApplyResult:
        """A batch that failed for good: apply each message alone, parking those that fail.

        A transient error stops the narrowing (the batch is held and tried
        again, and the messages applied already come back as duplicates).
        """
        applied = duplicates = parked = 0
        for d in deliveries:
            try:
                r = self.store.apply([d])
            except TransientError:
                raise
            except CommerceKitError as exc:
                self.store.park(d, f"the store refused it: {exc}")
                parked += 1
                continue
            except Exception as exc:  # not ours: a handler's bug, an untranslated driver error
                _logger.warning(
                    "parked event %s: applying it alone failed with %s",
                    d.event_id or d.handle,
                    _named(exc),
                    exc_info=exc,
                )
                self.store.park(d, f"applying it failed with {_named(exc)}")
                parked += 1
                continue
            applied, duplicates = applied + r.applied, duplicates + r.duplicates
            parked += r.dead_lettered
        return ApplyResult(applied, duplicates, parked)

    def run(
        self,
        *,
        stop: threading.Event | None = None,
        idle_exit_s: float | None = None,
        max_backoff_s: float = 2.0,
    ) -> int:
        """Loop until *stop* is set or the log stayed empty *idle_exit_s*; return events applied."""
        stop = stop or threading.Event()
        applied, idle_since, backoff = 0, time.monotonic(), 0.05
        while not stop.is_set():
            try:
                result = self.run_once()
            except TransientError:
                self._errors.inc()
                self._sleep(backoff)
                backoff = min(backoff * 2, max_backoff_s)
                continue
            backoff = 0.05
            handled = result.applied + result.duplicates + result.dead_lettered
            applied += result.applied
            if handled:
                idle_since = time.monotonic()
            elif idle_exit_s is not None and time.monotonic() - idle_since >= idle_exit_s:
                break
        return applied


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


def _named(exc: BaseException) -> str:
    """``ZeroDivisionError: division by zero``: the error's type and message, short."""
    text = str(exc)
    name = type(exc).__name__
    return f"{name}: {text[:500]}" if text else name


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
