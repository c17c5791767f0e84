"""Parsing Cache-Control: tolerant of garbage, strict where the RFC asks."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from commercekit.cdn import parse_cache_control
from commercekit.cdn._policy._cache_control import DELTA_SECONDS_MAX, MAX_FIELD_CHARS


def test_common_directives() -> None:
    cc = parse_cache_control('public, max-age=60, s-maxage="120", stale-while-revalidate=30')
    assert cc.public
    assert cc.max_age == 60
    assert cc.s_maxage == 120
    assert cc.stale_while_revalidate == 30
    assert cc.revalidate_when_stale  # s-maxage implies proxy-revalidate


def test_case_and_spaces_do_not_matter() -> None:
    cc = parse_cache_control("  NO-CACHE ,Must-Revalidate,  MAX-AGE = 5")
    assert cc.no_cache
    assert cc.must_revalidate


def test_invalid_numbers_mean_stale() -> None:
    cc = parse_cache_control("max-age=abc")
    assert cc.max_age == 0
    assert cc.malformed


def test_huge_numbers_are_capped() -> None:
    assert parse_cache_control("max-age=99999999999999999999").max_age == DELTA_SECONDS_MAX


def test_first_duplicate_wins() -> None:
    assert parse_cache_control("max-age=10, max-age=1000").max_age == 10


def test_qualified_forms_count_as_unqualified() -> None:
    cc = parse_cache_control('private="set-cookie", no-cache="x, y", max-age=5')
    assert cc.private
    assert cc.no_cache
    assert cc.max_age == 5


def test_huge_field_is_malformed() -> None:
    assert parse_cache_control("a" * (MAX_FIELD_CHARS + 1)).malformed


def test_absent_field() -> None:
    assert not parse_cache_control(None).present


@given(st.text(max_size=300))
def test_never_raises_on_garbage(text: str) -> None:
    cc = parse_cache_control(text)
    assert cc.max_age is None or 0 <= cc.max_age <= DELTA_SECONDS_MAX
