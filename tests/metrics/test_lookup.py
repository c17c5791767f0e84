"""The instrument lookup on every call: fast once seen, and checked exactly as the first."""

from __future__ import annotations

import pytest

from commercekit.errors import ConfigurationError
from commercekit.metrics import InMemoryMetrics

NAME = "commercekit_test_lookups_total"


def test_a_repeated_lookup_finds_the_same_series_whatever_the_tag_order() -> None:
    metrics = InMemoryMetrics()
    first = metrics.counter(NAME, description="Lookups.", tags={"a": "1", "b": "2"})
    for _ in range(3):
        metrics.counter(NAME, description="Lookups.", tags={"a": "1", "b": "2"}).inc()
        metrics.counter(NAME, description="Lookups.", tags={"b": "2", "a": "1"}).inc()
    assert metrics.counter(NAME, description="Lookups.", tags={"b": "2", "a": "1"}) is first
    assert metrics.value(NAME, a="1", b="2") == 6


def test_a_lookup_seen_before_still_refuses_another_definition() -> None:
    metrics = InMemoryMetrics()
    metrics.counter(NAME, description="Lookups.", tags={"a": "1"}).inc()
    with pytest.raises(ConfigurationError):
        metrics.counter(NAME, description="Something else.", tags={"a": "1"})
    with pytest.raises(ConfigurationError):
        metrics.gauge(NAME, description="Lookups.", tags={"a": "1"})
    with pytest.raises(ConfigurationError):
        metrics.counter(NAME, description="Lookups.", tags={"a": 1})  # type: ignore[dict-item]
    with pytest.raises(ConfigurationError):
        metrics.counter(NAME, description="Lookups.", tags={"a": ["1"]})  # type: ignore[dict-item]


def test_each_new_tag_set_past_the_cap_still_counts_an_overflow() -> None:
    metrics = InMemoryMetrics(max_series_per_metric=2)
    for value in ("1", "2", "3", "4", "3"):
        metrics.counter(NAME, description="Lookups.", tags={"a": value}).inc()
    snapshot = metrics.snapshot()
    assert snapshot.value(NAME, a="__overflow__") == 3
    overflows = snapshot.value("commercekit_metrics_series_overflow_total", metric=NAME)
    assert overflows == 3
