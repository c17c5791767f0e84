"""The consumer loop and its metrics.

| name | kind | tags |
| --- | --- | --- |
| ``commercekit_analytics_events_consumed_total`` | counter | log |
| ``commercekit_analytics_duplicates_dropped_total`` | counter | log |
| ``commercekit_analytics_dead_letters_total`` | counter | log |
| ``commercekit_analytics_consumer_lag`` | gauge | log |
| ``commercekit_analytics_consumer_errors_total`` | counter | log |
| ``commercekit_analytics_batch_seconds`` | histogram | log |
"""

from __future__ import annotations

import contextlib
import logging
import threading
import time
from collections.abc import Callable, Sequence

from commercekit.analytics._logs._log import Delivery, EventLog, _limits
from commercekit.analytics._store._store import AnalyticsStore, ApplyResult
from commercekit.errors import (
    CommerceKitError,
    InvalidInputError,
    OutcomeUnknownError,
    ReadOnlyError,
    TransientError,
    UnavailableError,
)
from commercekit.metrics import Metrics, NullMetrics

__all__ = ["AnalyticsConsumer"]

P = "commercekit_analytics_"
_IDLE_LAG_EVERY_S = 5.0  # how often an idle consumer measures its lag
_logger = logging.getLogger("commercekit.analytics")


class AnalyticsConsumer:
    """Reads batches from an :class:`EventLog` into an :class:`AnalyticsStore`.

    Each batch is applied in one transaction, then acknowledged: a crash
    between the two redelivers the batch, and the store drops the duplicates.
    A log or database that is down (a :class:`~commercekit.errors.TransientError`),
    a commit whose outcome is unknown and a database that turned read-only (a
    fail-over) hold the batch, which is tried again with a capped backoff
    however long that lasts: applying is idempotent (the event ids are
    de-duplicated in the same transaction). A batch that fails otherwise (the
    store refuses it, or an error that is not commercekit's: a bug in a
    handler, a driver error nobody translated) may hold a poison message or
    meet an outage: a refused batch at once, a batch failing with a foreign
    error after *max_attempts* failures, is applied message by message. A
    message is parked only when it fails alone twice while messages of its
    batch apply alone after it (it is the message, not the store); when no
    message applies alone the batch is held and retried like an outage, and
    nothing is parked.
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
        self._starved = False  # no message of the held batch applied alone: add new ones
        self._carried = 0  # messages of the held batch applied alone before it was held
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

        A batch that failed is held and applied again by the next call before
        anything new is read (the embedded logs redeliver only after a restart,
        Redis and JetStream only after their claim time); the call raises a
        :class:`~commercekit.errors.TransientError` whose ``__cause__`` is the
        store's error. A held batch none of whose messages applied alone gets
        the log's new messages added, so that a good one can show the store
        works and the held message is the poison.
        """
        deliveries = self._deliveries()
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
        except _HOLD as exc:
            raise _held(exc, len(deliveries)) from exc
        except Exception as exc:
            if not isinstance(exc, CommerceKitError):
                self._failed += 1
                if self._failed < self._max_attempts:
                    raise TransientError(
                        f"a batch of {len(deliveries)} failed with {_named(exc)}; it is tried "
                        f"again ({self._failed} of {self._max_attempts} attempts), then "
                        "message by message"
                    ) from exc
            tally = [0]
            try:
                result = self._one_by_one(deliveries, exc, tally)
            except BaseException:
                self._carried += tally[0]  # they come back as duplicates: still counted once
                raise
        try:
            self.log.acknowledge(deliveries)
        except BaseException:
            self._carried += result.applied  # applied again, they come back as duplicates
            raise
        carried, self._carried = self._carried, 0
        result = ApplyResult(
            result.applied + carried,
            max(0, result.duplicates - carried),
            result.dead_lettered,
        )
        self._held, self._failed, self._starved = [], 0, False
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

    def _deliveries(self) -> list[Delivery]:
        """The held batch, with new messages when none of it applied alone; else a new batch."""
        if not self._held:
            return self.log.consume(self._batch, self._poll_s)
        if not self._starved or len(self._held) >= self._batch:
            return self._held
        handles = {d.handle for d in self._held}
        more = self.log.consume(self._batch - len(self._held), 0)
        return [*self._held, *(d for d in more if d.handle not in handles)]

    def _one_by_one(
        self, deliveries: Sequence[Delivery], first: Exception, tally: list[int]
    ) -> ApplyResult:
        """A batch that failed: apply each message alone, and park only proven poison.

        A message that fails alone gets a second try after the others; it is
        parked if it fails again and a message then applies alone after it
        (the store works: the fault is the message's). If no message applies
        alone, or one applies and then the store fails, the batch is held and
        a TransientError raised: nothing is parked during an outage. An error
        that holds a batch (a transient one, an unknown commit outcome, a
        read-only database) ends the narrowing the same way.
        """
        applied = duplicates = 0
        suspects: list[tuple[Delivery, Exception]] = []
        good: Delivery | None = None
        for d in deliveries:
            try:
                r = self._alone(d)
            except _Suspect as s:
                suspects.append((d, s.error))
                continue
            applied, duplicates, good = applied + r.applied, duplicates + r.duplicates, d
            tally[0] = applied
        if good is None:
            self._starved = True
            error = suspects[-1][1] if suspects else first
            raise UnavailableError(
                f"every message of a batch of {len(deliveries)} failed alone (the last with "
                f"{_named(error)}); the store looks unavailable: the batch is held and tried "
                "again, nothing is parked"
            ) from error
        poison: list[tuple[Delivery, Exception]] = []
        for d, _error in suspects:
            try:
                r = self._alone(d)
            except _Suspect as s:
                poison.append((d, s.error))
                continue
            applied, duplicates = applied + r.applied, duplicates + r.duplicates
            tally[0] = applied
        if poison:
            try:
                self._alone(good)  # applied already: a duplicate, proves the store works now
            except _Suspect as s:
                raise UnavailableError(
                    f"the store failed with {_named(s.error)} after {len(poison)} message(s) "
                    "failed alone; the batch is held and tried again, nothing is parked"
                ) from s.error
        for d, error in poison:
            reason = (
                f"the store refused it: {error}"
                if isinstance(error, CommerceKitError)
                else f"applying it failed with {_named(error)}"
            )
            try:
                self.store.park(d, reason)
            except TransientError:
                raise
            except Exception as exc:
                raise UnavailableError(
                    f"could not park event {d.event_id or d.handle} ({_named(exc)}); "
                    "the batch is held and tried again"
                ) from exc
            _logger.warning(
                "parked event %s: applying it alone failed twice with %s while the rest of "
                "its batch applied",
                d.event_id or d.handle,
                _named(error),
                exc_info=error,
            )
        return ApplyResult(applied, duplicates, len(poison))

    def _alone(self, d: Delivery) -> ApplyResult:
        """Apply one message; an error that holds the batch propagates, others are _Suspect."""
        try:
            return self.store.apply([d])
        except TransientError:
            raise
        except _HOLD as exc:
            raise _held(exc, 1) from exc
        except Exception as exc:
            raise _Suspect(exc) from exc

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


# Besides a TransientError, errors after which the same batch is applied again as it is:
# the database is failing over, or a commit's outcome is unknown (the event ids make a
# second apply safe).
_HOLD = (OutcomeUnknownError, ReadOnlyError)


def _held(exc: BaseException, size: int) -> UnavailableError:
    """*exc* as the UnavailableError run() backs off on (raise it ``from`` *exc*)."""
    why = (
        "its commit's outcome is unknown"
        if isinstance(exc, OutcomeUnknownError)
        else "the database is read-only (a fail-over?)"
    )
    return UnavailableError(
        f"a batch of {size} failed: {why} ({_named(exc)}); it is held and applied again, "
        "which skips what committed"
    )


class _Suspect(Exception):
    """A message failed alone with *error* (a poison message, or the store failing)."""

    def __init__(self, error: Exception) -> None:
        super().__init__(str(error))
        self.error = error


def _named(exc: BaseException) -> str:
    """``ZeroDivisionError: division by zero``: the error's type and message, short."""
    text = str(exc)
    name = type(exc).__name__
    return f"{name}: {text[:500]}" if text else name
