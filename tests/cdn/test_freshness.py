"""Age and freshness arithmetic (RFC 9111 4.2), with properties checked by Hypothesis."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from commercekit.cdn import parse_cache_control
from commercekit.cdn._message._dates import format_http_date
from commercekit.cdn._policy._freshness import (
    age_header_value,
    corrected_initial_age,
    current_age,
    freshness_lifetime,
    parse_age,
)

T0 = 1_700_000_000.0
times = st.floats(min_value=0, max_value=10**6, allow_nan=False)


def lifetime(cc: str, status: int = 200, **headers: str) -> float | None:
    return freshness_lifetime(
        parse_cache_control(cc),
        status=status,
        date_value=T0,
        expires=headers.get("expires"),
        last_modified=headers.get("last_modified"),
        response_time=T0,
    )


def test_s_maxage_beats_max_age_beats_expires() -> None:
    later = format_http_date(T0 + 500)
    assert lifetime("max-age=10, s-maxage=20", expires=later) == 20
    assert lifetime("max-age=10", expires=later) == 10
    assert lifetime("", expires=later) == 500


def test_invalid_expires_means_expired() -> None:
    assert lifetime("", expires="0") == 0
    assert lifetime("", expires="garbage") == 0


def test_heuristic_is_a_tenth_of_last_modified_age_capped() -> None:
    assert lifetime("", last_modified=format_http_date(T0 - 1000)) == 100
    assert lifetime("", last_modified=format_http_date(T0 - 10**9)) == 86_400
    assert lifetime("", status=500, last_modified=format_http_date(T0 - 1000)) is None
    assert lifetime("public", status=500, last_modified=format_http_date(T0 - 1000)) == 100


def test_no_freshness_information() -> None:
    assert lifetime("") is None


def test_parse_age() -> None:
    assert parse_age("30") == 30
    assert parse_age("-3") == 0
    assert parse_age("x") == 0
    assert parse_age(None) == 0


@given(age=times, date_offset=st.floats(-1000, 1000), delay=times, resident=times, later=times)
def test_age_never_decreases_and_never_undercounts(
    age: float, date_offset: float, delay: float, resident: float, later: float
) -> None:
    request_time = T0
    response_time = T0 + delay
    initial = corrected_initial_age(
        age_value=age,
        date_value=response_time + date_offset,
        request_time=request_time,
        response_time=response_time,
    )
    # never less than what upstream said, nor than the time the response spent travelling
    eps = 1e-6  # epoch-second floats carry about 1e-7 s of rounding
    assert initial >= age - eps
    assert initial >= delay - eps
    a1 = current_age(initial, response_time, response_time + resident)
    a2 = current_age(initial, response_time, response_time + resident + later)
    assert abs(a1 - (initial + resident)) < eps
    assert a2 >= a1


@given(st.floats(min_value=-1e12, max_value=1e12, allow_nan=False))
def test_age_header_is_a_whole_non_negative_number(age: float) -> None:
    value = age_header_value(age)
    assert value.isdigit()
    assert int(value) <= max(0, age)
