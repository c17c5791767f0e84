"""InMemoryMetrics: exact under concurrency, bounded under thread churn, helpful in tests."""

from __future__ import annotations

import threading

import pytest

from commercekit.errors import NotFoundError
from commercekit.metrics import Event, InMemoryMetrics
from commercekit.metrics._shards import Shards


def test_concurrent_increments_are_all_counted() -> None:
    metrics = InMemoryMetrics()
    counter = metrics.counter("ck_test_total", description="x")
    hist = metrics.histogram("ck_test_seconds", description="x")
    start = threading.Barrier(8)

    def work() -> None:
        start.wait()
        for _ in range(20_000):
            counter.inc()
            hist.record(0.01)

    threads = [threading.Thread(target=work) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert metrics.value("ck_test_total") == 160_000
    assert metrics.distribution("ck_test_seconds").count == 160_000


def test_reading_while_writing_never_fails_and_never_goes_backwards() -> None:
    metrics = InMemoryMetrics()
    hist = metrics.histogram("ck_test_seconds", description="x")
    stop = threading.Event()

    def write() -> None:
        v = 1e-6
        while not stop.is_set():
            hist.record(v)  # new buckets all the time: the reader copies a changing dict
            v = v * 1.01 if v < 3600 else 1e-6

    writers = [threading.Thread(target=write) for _ in range(2)]
    for t in writers:
        t.start()
    try:
        seen = 0
        for _ in range(200):
            count = metrics.distribution("ck_test_seconds").count
            assert count >= seen
            seen = count
    finally:
        stop.set()
        for t in writers:
            t.join()


def test_cells_of_finished_threads_are_folded_and_nothing_is_lost() -> None:
    shards: Shards[list[int]] = Shards(
        lambda: [0], lambda into, cell: into.__setitem__(0, into[0] + cell[0])
    )

    def bump() -> None:
        shards.cell()[0] += 1

    for _ in range(1_000):  # a thread per request, as some servers run
        t = threading.Thread(target=bump)
        t.start()
        t.join()
    cells = shards.collect(list.copy)
    assert len(cells) <= 65  # the base cell plus at most one fold's worth of dead ones
    assert sum(c[0] for c in cells) == 1_000


def test_a_missing_series_is_not_found_and_the_error_lists_what_exists() -> None:
    metrics = InMemoryMetrics()
    metrics.counter("ck_test_total", description="x", tags={"a": "1"}).inc()
    with pytest.raises(NotFoundError, match=r"ck_test_total\{'a': '1'\}"):
        metrics.value("ck_test_total", a="2")
    with pytest.raises(NotFoundError, match="no histogram"):
        metrics.distribution("ck_test_seconds")


def test_total_and_series_sum_over_tags() -> None:
    metrics = InMemoryMetrics()
    for node, n in (("a", 2), ("b", 3)):
        metrics.counter("ck_test_total", description="x", tags={"node": node}).inc(n)
    snap = metrics.snapshot()
    assert metrics.total("ck_test_total") == 5
    assert snap.series("ck_test_total") == {(("node", "a"),): 2, (("node", "b"),): 3}


def test_histogram_quantiles_and_extremes() -> None:
    metrics = InMemoryMetrics()
    hist = metrics.histogram("ck_test_seconds", description="x")
    for ms in range(1, 1001):
        hist.record(ms / 1000)
    d = metrics.distribution("ck_test_seconds")
    assert (d.count, d.min, d.max) == (1000, 0.001, 1.0)
    assert d.sum == pytest.approx(500.5)
    assert d.quantile(0.99) == pytest.approx(0.990, rel=0.005)


def test_events_are_kept_up_to_the_bound_then_counted_as_dropped() -> None:
    metrics = InMemoryMetrics(max_events=3)
    for i in range(5):
        metrics.emit(Event("product.viewed", {"sku": f"S{i}"}, at_s=float(i)))
    assert [e.attributes["sku"] for e in metrics.events] == ["S0", "S1", "S2"]
    assert metrics.value("commercekit_metrics_events_dropped_total") == 2
