"""Age and freshness arithmetic of RFC 9111 4.2, as pure functions of numbers.

All times are epoch seconds as floats. The edge computes, once, when it
stores a response:

* ``initial_age`` = corrected_initial_age (4.2.3),
* ``fresh_until`` = response_time + freshness_lifetime - initial_age,

so that a lookup later needs one comparison (``now < fresh_until``) and the
``Age`` it sends is ``initial_age + (now - response_time)``.
"""

from __future__ import annotations

import math

from commercekit.cdn._message._dates import parse_http_date

from ._cache_control import DELTA_SECONDS_MAX, CacheControl

__all__ = [
    "HEURISTIC_STATUSES",
    "age_header_value",
    "corrected_initial_age",
    "current_age",
    "freshness_lifetime",
    "parse_age",
]

HEURISTIC_STATUSES = frozenset({200, 203, 204, 206, 300, 301, 308, 404, 405, 410, 414, 501})
"""Status codes cacheable by default, so heuristic freshness applies (RFC 9110 15.1)."""


def parse_age(value: str | None) -> float:
    """Return the ``Age`` field as seconds; an invalid or missing value counts as 0."""
    if value is None:
        return 0.0
    value = value.strip().split(",")[0].strip()
    if not value.isascii() or not value.isdigit():
        return 0.0
    return float(min(int(value[:11]), DELTA_SECONDS_MAX))


def corrected_initial_age(
    *, age_value: float, date_value: float | None, request_time: float, response_time: float
) -> float:
    """Return the corrected initial age of a response (RFC 9111 4.2.3)."""
    apparent_age = max(0.0, response_time - date_value) if date_value is not None else 0.0
    response_delay = max(0.0, response_time - request_time)
    corrected_age_value = age_value + response_delay
    return max(apparent_age, corrected_age_value)


def current_age(initial_age: float, response_time: float, now: float) -> float:
    """Return the current age: the corrected initial age plus the time resident here."""
    return initial_age + max(0.0, now - response_time)


def age_header_value(age_s: float) -> str:
    """Return *age_s* as an ``Age`` field value: whole seconds, rounded down, capped."""
    if age_s <= 0 or math.isnan(age_s):
        return "0"
    return str(min(int(age_s), DELTA_SECONDS_MAX))


def freshness_lifetime(
    cc: CacheControl,
    *,
    status: int,
    date_value: float | None,
    expires: str | None,
    last_modified: str | None,
    response_time: float,
    heuristic_fraction: float = 0.1,
    heuristic_max_s: float = 86_400.0,
) -> float | None:
    """Return the freshness lifetime in seconds for a shared cache (RFC 9111 4.2.1, 4.2.2).

    ``s-maxage`` beats ``max-age`` beats ``Expires``; an ``Expires`` that is not
    a date (``0`` included) means already expired. Without any of them, a
    heuristic of *heuristic_fraction* of the time since ``Last-Modified``
    (capped at *heuristic_max_s*) applies to statuses cacheable by default and
    to ``public`` responses. None means the response has no freshness at all.
    """
    if cc.s_maxage is not None:
        return float(cc.s_maxage)
    if cc.max_age is not None:
        return float(cc.max_age)
    if expires is not None:
        expires_at = parse_http_date(expires)
        if expires_at is None:
            return 0.0
        base = date_value if date_value is not None else response_time
        return max(0.0, expires_at - base)
    if status in HEURISTIC_STATUSES or cc.public:
        modified_at = parse_http_date(last_modified)
        if modified_at is not None:
            base = date_value if date_value is not None else response_time
            return max(0.0, min(heuristic_fraction * (base - modified_at), heuristic_max_s))
    return None
