"""QuantileSketch: relative error at every quantile, exact merges, bounded memory."""

from __future__ import annotations

import math
import random

import pytest
from hypothesis import given
from hypothesis import strategies as st

from commercekit.errors import ConfigurationError, InvalidInputError
from commercekit.metrics import QuantileSketch

# Latencies from 1 us to 1 h, the range the sketch is promised over.
latencies = st.floats(min_value=1e-6, max_value=3600.0, allow_nan=False)
quantiles = st.sampled_from([0.0, 0.5, 0.75, 0.9, 0.95, 0.99, 0.995, 0.999, 1.0])


def exact(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[math.floor(q * (len(ordered) - 1))]


@given(st.lists(latencies, min_size=1, max_size=400), quantiles)
def test_every_quantile_is_within_the_relative_accuracy(values: list[float], q: float) -> None:
    sketch = QuantileSketch(0.01)
    for v in values:
        sketch.add(v)
    truth = exact(values, q)
    assert abs(sketch.quantile(q) - truth) <= 0.01 * truth


@given(st.lists(st.floats(-1e6, 1e6, allow_nan=False), min_size=1, max_size=300), quantiles)
def test_mixed_signs_and_zero_keep_the_bound(values: list[float], q: float) -> None:
    sketch = QuantileSketch(0.01)
    for v in values:
        sketch.add(v)
    truth = exact(values, q)
    assert abs(sketch.quantile(q) - truth) <= 0.01 * abs(truth) + 1e-12


def test_lognormal_latencies_stay_within_one_percent_p50_to_p999() -> None:
    rng = random.Random(7)
    values = [rng.lognormvariate(math.log(0.05), 1.2) for _ in range(200_000)]
    sketch = QuantileSketch()  # the default accuracy the histograms use
    for v in values:
        sketch.add(v)
    for q in (0.5, 0.9, 0.99, 0.999):
        truth = exact(values, q)
        assert abs(sketch.quantile(q) - truth) / truth <= 0.01, q


@given(st.lists(latencies, max_size=200), st.lists(latencies, max_size=200), quantiles)
def test_merge_is_exact(left: list[float], right: list[float], q: float) -> None:
    a, b, whole = QuantileSketch(), QuantileSketch(), QuantileSketch()
    for v in left:
        a.add(v)
        whole.add(v)
    for v in right:
        b.add(v)
        whole.add(v)
    a.merge(b)
    assert a.count == whole.count == len(left) + len(right)
    assert a.sum == pytest.approx(whole.sum)
    if a.count:
        assert a.quantile(q) == whole.quantile(q)
    else:
        assert math.isnan(a.quantile(q))


def test_memory_is_bounded_and_upper_quantiles_survive_collapse() -> None:
    sketch = QuantileSketch(0.01, max_buckets=64)
    values = [10 ** (k / 100) for k in range(-600, 400)]  # 1 us to 10^4, 1000 buckets' worth
    for v in values:
        sketch.add(v)
    assert sketch.bucket_count <= 64
    for q in (0.95, 0.99, 1.0):
        truth = exact(values, q)
        assert abs(sketch.quantile(q) - truth) <= 0.01 * truth


def test_full_range_fits_the_default_bucket_budget() -> None:
    sketch = QuantileSketch()
    v = 1e-6
    while v <= 3600:
        sketch.add(v)
        v *= 1.001
    assert sketch.bucket_count <= 4096
    assert abs(sketch.quantile(0.0) - 1e-6) <= 0.005 * 1e-6


def test_copy_is_independent() -> None:
    sketch = QuantileSketch()
    sketch.add(1.0)
    twin = sketch.copy()
    twin.add(2.0)
    assert (sketch.count, twin.count) == (1, 2)


@pytest.mark.parametrize("bad", [math.nan, math.inf, -math.inf])
def test_non_finite_values_are_refused(bad: float) -> None:
    sketch = QuantileSketch()
    with pytest.raises(InvalidInputError):
        sketch.add(bad)
    assert sketch.count == 0


def test_bad_settings_and_queries_are_refused() -> None:
    with pytest.raises(ConfigurationError, match="relative_accuracy"):
        QuantileSketch(1.5)
    with pytest.raises(ConfigurationError, match="max_buckets"):
        QuantileSketch(max_buckets=2)
    with pytest.raises(InvalidInputError, match="same relative_accuracy"):
        QuantileSketch(0.01).merge(QuantileSketch(0.02))
    with pytest.raises(InvalidInputError, match="between 0 and 1"):
        QuantileSketch().quantile(1.5)
    assert math.isnan(QuantileSketch().quantile(0.5))
