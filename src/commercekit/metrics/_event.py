"""Business events (product viewed, item added to cart, order placed) and their channel.

``EventChannel.emit`` is called on request paths, so it never blocks and never
raises: it appends to a bounded buffer, and a background thread hands batches
to the sink. When the buffer is full the event is dropped and counted.
"""

from __future__ import annotations

import math
import threading
import time
from collections import deque
from collections.abc import Mapping
from types import MappingProxyType, TracebackType
from typing import Final

import attrs

from commercekit.errors import (
    ConfigurationError,
    InvalidInputError,
    InvalidStateError,
    UnsupportedTypeError,
)

from . import _self
from ._typing import EventSink, Metrics

__all__ = ["AttributeValue", "Event", "EventChannel", "check_event"]

AttributeValue = str | int | bool
"""Event attributes are plain values; money travels as minor units plus a currency code."""


_MAX_NAME: Final = 200
_INT_LIMIT: Final = 2**63  # what every sink's integer type holds


def _encodable(text: str) -> bool:
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:  # a lone surrogate: no sink could write it
        return False
    return True


def _freeze(value: Mapping[str, AttributeValue]) -> Mapping[str, AttributeValue]:
    if not isinstance(value, Mapping):
        raise UnsupportedTypeError(
            f"event attributes are a mapping of str to str, int or bool, not {type(value).__name__}"
        )
    for key, item in value.items():
        if not isinstance(key, str) or not key or len(key) > _MAX_NAME or not key.isprintable():
            raise InvalidInputError(
                f"an event attribute name is a non-empty printable str of at most {_MAX_NAME} "
                f"characters, not {type(key).__name__}"
            )
        if isinstance(item, float) or not isinstance(item, str | int | bool):
            raise InvalidInputError(
                f"event attribute {key!r} is a {type(item).__name__}; attributes must be "
                "str, int or bool (send money as amount_minor and currency)"
            )
        if isinstance(item, int) and not -_INT_LIMIT <= item < _INT_LIMIT:
            raise InvalidInputError(
                f"event attribute {key!r} is an int outside the signed 64-bit range"
            )
        if isinstance(item, str) and not _encodable(item):
            raise InvalidInputError(f"event attribute {key!r} holds a lone surrogate")
    return MappingProxyType(dict(value))


def _check_time(_instance: object, _attribute: object, value: float) -> None:
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        raise InvalidInputError(
            f"an event's at_s is finite seconds since the epoch, not {type(value).__name__}"
        )


def check_event(event: object) -> None:
    """Raise :class:`UnsupportedTypeError` unless *event* is an :class:`Event`."""
    if not isinstance(event, Event):
        raise UnsupportedTypeError(
            f"emit() takes an Event, such as Event('checkout.completed', {{...}}), "
            f"not {type(event).__name__}"
        )


@attrs.frozen
class Event:
    """One business event, such as ``Event("cart.item_added", {"sku": "TEE-M", "qty": 1})``.

    ``at_s`` is wall-clock seconds since the epoch; it defaults to now.
    """

    name: str = attrs.field()
    attributes: Mapping[str, AttributeValue] = attrs.field(factory=dict, converter=_freeze)
    at_s: float = attrs.field(factory=time.time, validator=_check_time)

    @name.validator
    def _check_name(self, _attribute: object, value: str) -> None:
        if not isinstance(value, str):
            raise UnsupportedTypeError(
                f"an event name is a str such as 'checkout.completed', not {type(value).__name__}"
            )
        if (
            not value
            or len(value) > _MAX_NAME
            or not value.isascii()
            or not value.replace(".", "").replace("_", "").isalnum()
        ):
            raise InvalidInputError(
                f"event name {value[:60]!r} is not valid; use dotted lower-case words "
                "such as 'checkout.completed'"
            )


class EventChannel:
    """A bounded, non-blocking queue of events drained into *sink* by one background thread.

    ``emit`` appends and returns; it never waits for the sink, and a full buffer
    (or a closed channel) drops the event and counts it in
    ``commercekit_metrics_events_dropped_total``. A sink that raises loses that
    batch, which is counted in ``commercekit_metrics_event_batches_failed_total``;
    the channel goes on. Use it as a context manager, or call :meth:`start` and
    :meth:`close`.
    """

    def __init__(
        self,
        sink: EventSink,
        *,
        capacity: int = 10_000,
        batch_size: int = 500,
        flush_interval_s: float = 0.05,
        metrics: Metrics | None = None,
    ) -> None:
        if capacity < 1 or batch_size < 1:
            raise ConfigurationError(
                f"capacity ({capacity}) and batch_size ({batch_size}) must both be at least 1"
            )
        if flush_interval_s <= 0:
            raise ConfigurationError(f"flush_interval_s must be positive, not {flush_interval_s}")
        from ._null import NullMetrics

        metrics = metrics if metrics is not None else NullMetrics()
        self._sink = sink
        self._capacity = capacity
        self._batch_size = batch_size
        self._interval_s = flush_interval_s
        self._buffer: deque[Event] = deque()
        self._wake = threading.Event()
        self._stopping = False
        self._delivering = False
        self._thread: threading.Thread | None = None
        self._emitted = _self.events_emitted(metrics)
        self._dropped = _self.events_dropped(metrics)
        self._failed = _self.event_batches_failed(metrics)
        self._depth = _self.events_queued(metrics)

    def start(self) -> EventChannel:
        """Start the delivery thread; return self."""
        if self._thread is not None:
            raise InvalidStateError("this EventChannel was started already; start it once")
        self._thread = threading.Thread(target=self._run, name="commercekit-events", daemon=True)
        self._thread.start()
        return self

    def emit(self, event: Event, /) -> None:
        """Queue *event* for delivery; drop and count it if the buffer is full or closed.

        Raises:
            UnsupportedTypeError: *event* is not an :class:`Event` (checked
                here, so one bad call cannot cost the sink a whole batch).
        """
        if not isinstance(event, Event):
            check_event(event)  # type: ignore[unreachable]  # for callers without a type checker
        buffer = self._buffer
        if self._stopping or len(buffer) >= self._capacity:
            self._dropped.inc()
            return
        buffer.append(event)
        self._emitted.inc()

    def flush(self, timeout_s: float = 5.0) -> bool:
        """Wait until everything emitted so far reached the sink; False on timeout."""
        deadline = time.monotonic() + timeout_s
        while (self._buffer or self._delivering) and time.monotonic() < deadline:
            self._wake.set()
            time.sleep(min(0.001, self._interval_s))
        return not (self._buffer or self._delivering)

    def close(self, timeout_s: float = 5.0) -> None:
        """Stop accepting events, deliver what is queued, and stop the thread."""
        self._stopping = True
        self._wake.set()
        if self._thread is not None:
            self._thread.join(timeout_s)

    def __enter__(self) -> EventChannel:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    def _run(self) -> None:
        while True:
            stopping = self._stopping
            self._drain()
            if stopping:
                return
            self._wake.wait(self._interval_s)
            self._wake.clear()

    def _drain(self) -> None:
        buffer = self._buffer
        self._delivering = True
        while buffer:
            batch: list[Event] = []
            while buffer and len(batch) < self._batch_size:
                batch.append(buffer.popleft())
            self._depth.set(len(buffer))
            self._deliver(batch)
        self._delivering = False

    def _deliver(self, batch: list[Event]) -> bool:
        """Hand *batch* to the sink; say whether any of it got through.

        A sink that raises loses the batch only if the batch was one event:
        a larger one is tried again in halves, so one event the sink cannot
        take (it cannot serialize it, say) costs only itself. When a whole
        half of two or more events fails, the sink is taken to be down and
        the other half is not tried, so a dead sink costs about 2 log2(n)
        calls per batch, not n. Anything the sink raises is caught, even
        ``SystemExit``: the delivery thread must outlive a sink's bug.
        """
        try:
            self._sink(batch)
        except BaseException:  # see the docstring: the delivery thread must go on
            self._failed.inc()
        else:
            return True
        if len(batch) == 1:
            return False
        middle = len(batch) // 2
        first = self._deliver(batch[:middle])
        if not first and middle > 1:
            return False
        return self._deliver(batch[middle:]) or first
