"""EventChannel: emit never blocks or raises; drops and sink failures are counted."""

from __future__ import annotations

import threading
import time
from collections.abc import Sequence

import pytest

from commercekit.errors import ConfigurationError, InvalidInputError, InvalidStateError
from commercekit.metrics import Event, EventChannel, InMemoryMetrics


def test_events_reach_the_sink_in_order() -> None:
    got: list[Event] = []
    with EventChannel(got.extend, flush_interval_s=0.01) as channel:
        for i in range(1_000):
            channel.emit(Event("cart.item_added", {"i": i}))
        assert channel.flush()
    assert [e.attributes["i"] for e in got] == list(range(1_000))


def test_a_full_buffer_drops_and_counts_instead_of_blocking() -> None:
    release = threading.Event()
    metrics = InMemoryMetrics()

    def slow_sink(events: Sequence[Event]) -> None:
        release.wait(5)

    channel = EventChannel(slow_sink, capacity=10, batch_size=1, metrics=metrics).start()
    try:
        started = time.perf_counter()
        for _ in range(1_000):
            channel.emit(Event("product.viewed"))
        assert time.perf_counter() - started < 0.5  # never waited on the sink
        dropped = metrics.value("commercekit_metrics_events_dropped_total")
        emitted = metrics.value("commercekit_metrics_events_emitted_total")
        assert dropped >= 1_000 - 11
        assert dropped + emitted == 1_000
    finally:
        release.set()
        channel.close()


def test_a_sink_that_fails_once_loses_nothing() -> None:
    metrics = InMemoryMetrics()
    got: list[Event] = []
    calls = 0

    def flaky(events: Sequence[Event]) -> None:
        nonlocal calls
        calls += 1
        if calls == 1:
            raise ConnectionError("analytics endpoint down")
        got.extend(events)

    with EventChannel(flaky, batch_size=5, metrics=metrics) as channel:
        for i in range(10):
            channel.emit(Event("order.placed", {"i": i}))
        assert channel.flush()
    # The failed batch was tried again in halves.
    assert sorted(int(e.attributes["i"]) for e in got) == list(range(10))
    assert metrics.value("commercekit_metrics_event_batches_failed_total") == 1


def test_a_dead_sink_costs_few_calls_per_batch() -> None:
    calls = 0

    def dead(events: Sequence[Event]) -> None:
        nonlocal calls
        calls += 1
        raise ConnectionError("analytics endpoint down")

    with EventChannel(dead, batch_size=512, flush_interval_s=60) as channel:
        for i in range(512):
            channel.emit(Event("order.placed", {"i": i}))
        assert channel.flush()
    assert calls <= 2 * 9 + 1  # about 2 log2(512), not 512


def test_close_delivers_what_is_queued_then_drops_new_events() -> None:
    metrics = InMemoryMetrics()
    got: list[Event] = []
    channel = EventChannel(got.extend, flush_interval_s=10, metrics=metrics).start()
    for _ in range(3):
        channel.emit(Event("checkout.started"))
    channel.close()
    assert len(got) == 3
    channel.emit(Event("checkout.started"))
    assert metrics.value("commercekit_metrics_events_dropped_total") == 1


def test_misuse_gets_typed_errors() -> None:
    with pytest.raises(ConfigurationError):
        EventChannel(list.append, capacity=0)  # type: ignore[arg-type]
    with pytest.raises(ConfigurationError):
        EventChannel(print, flush_interval_s=0)
    channel = EventChannel(print).start()
    try:
        with pytest.raises(InvalidStateError, match="once"):
            channel.start()
    finally:
        channel.close()


@pytest.mark.parametrize(
    ("name", "attributes"),
    [("", {}), ("has space", {}), ("ok.name", {"price": 9.99}), ("ok.name", {"x": None})],
)
def test_bad_events_are_refused_at_construction(name: str, attributes: dict[str, object]) -> None:
    with pytest.raises(InvalidInputError):
        Event(name, attributes)  # type: ignore[arg-type]


def test_event_attributes_are_frozen() -> None:
    attrs = {"sku": "TEE-M"}
    event = Event("product.viewed", attrs, at_s=1.0)
    attrs["sku"] = "changed"
    assert event.attributes["sku"] == "TEE-M"
    with pytest.raises(TypeError):
        event.attributes["sku"] = "x"  # type: ignore[index]
