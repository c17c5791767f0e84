"""Funnels: typed errors for a bad definition, and the report's conversions."""

from __future__ import annotations

from pathlib import Path

import pytest

from commercekit.analytics import (
    AnalyticsEvent,
    AnalyticsStore,
    Delivery,
    FunnelSpec,
    Reports,
)
from commercekit.analytics.__main__ import parse_funnel
from commercekit.errors import InvalidInputError, UnsupportedTypeError
from commercekit.repository import Database, Node, ReplicatedTopology, sqlite_engine


@pytest.mark.parametrize("steps", [(), []])
def test_a_funnel_with_no_steps_is_refused(steps: tuple[str, ...]) -> None:
    with pytest.raises(InvalidInputError, match="at least one step"):
        FunnelSpec("checkout", steps)
    with pytest.raises(InvalidInputError, match="at least one step"):
        parse_funnel("checkout=@3600")


@pytest.mark.parametrize("window_s", [-1, -86_400, 0])
def test_a_funnel_with_a_negative_or_empty_window_is_refused(window_s: int) -> None:
    with pytest.raises(InvalidInputError, match="window is positive"):
        FunnelSpec("checkout", ("Product Viewed", "Order Completed"), window_s)
    with pytest.raises(InvalidInputError, match="window is positive"):
        parse_funnel(f"checkout=Product Viewed>Order Completed@{window_s}")


def test_other_bad_funnels_get_typed_errors() -> None:
    with pytest.raises(UnsupportedTypeError):
        FunnelSpec("f", "Product Viewed")  # one str, not a sequence of names
    with pytest.raises(UnsupportedTypeError):
        FunnelSpec("f", ("A", "B"), 3600.0)  # type: ignore[arg-type]
    with pytest.raises(InvalidInputError, match="differ"):
        FunnelSpec("f", ("A", "A"))
    with pytest.raises(InvalidInputError):
        FunnelSpec("", ("A",))
    with pytest.raises(InvalidInputError, match="whole seconds"):
        parse_funnel("f=A>B@soon")


def test_the_report_gives_step_and_overall_conversion(tmp_path: Path) -> None:
    spec = FunnelSpec("f", ("A", "B", "C"), 3600)
    store = AnalyticsStore(
        Database(ReplicatedTopology(Node("p", sqlite_engine(tmp_path / "a.db")))), funnels=[spec]
    )
    store.create()
    t = 1_767_225_600_000
    reached = {"c0": 3, "c1": 3, "c2": 2, "c3": 2, "c4": 2, "c5": 1, "c6": 1, "c7": 1}
    events = [
        AnalyticsEvent(step, {}, customer_id=who, timestamp_ms=t + k * 1000)
        for who, n in reached.items()
        for k, step in enumerate(spec.steps[:n])
    ]
    store.apply([Delivery(str(i), e.to_bytes()) for i, e in enumerate(events)])
    total = Reports(store).funnel("f").total
    assert total.counts == (8, 5, 2)
    assert total.conversion == (1.0, 5 / 8, 2 / 8)  # of those who entered
    assert total.step_conversion == (1.0, 5 / 8, 2 / 5)  # of those at the step before
    assert total.overall_conversion == 2 / 8
    assert total.drop_off == (3, 3)
    assert total.median_convert_s == 2.0
    as_json = Reports(store).funnel("f").to_json()["total"]
    assert as_json["step_conversion"] == [1.0, 5 / 8, 2 / 5]
    assert as_json["overall_conversion"] == 2 / 8


def test_report_sizes_must_be_positive(tmp_path: Path) -> None:
    store = AnalyticsStore(
        Database(ReplicatedTopology(Node("p", sqlite_engine(tmp_path / "a.db"))))
    )
    store.create()
    reports = Reports(store)
    for bad in (0, -1, True, 2.5):
        with pytest.raises((InvalidInputError, UnsupportedTypeError)):
            reports.also_bought("tee", k=bad)  # type: ignore[arg-type]
        with pytest.raises((InvalidInputError, UnsupportedTypeError)):
            reports.top_products("viewed", limit=bad)  # type: ignore[arg-type]
        with pytest.raises((InvalidInputError, UnsupportedTypeError)):
            reports.product_revenue(limit=bad)  # type: ignore[arg-type]
        with pytest.raises((InvalidInputError, UnsupportedTypeError)):
            reports.no_result_searches(limit=bad)  # type: ignore[arg-type]
        with pytest.raises((InvalidInputError, UnsupportedTypeError)):
            reports.dead_letters(limit=bad)  # type: ignore[arg-type]
        with pytest.raises((InvalidInputError, UnsupportedTypeError)):
            reports.cohorts(weeks=bad)  # type: ignore[arg-type]
