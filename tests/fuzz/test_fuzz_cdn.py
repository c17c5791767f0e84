"""Fuzzing the edge's outside input: Cache-Control, Expires, Age, Vary, URLs, signed URLs.

Origins and clients send anything: every parser answers or raises a
``commercekit.errors`` error within a time bound, parsed values stay in their
ranges, and a URL with a control character is never keyed, fetched or
accepted as signed.
"""

from __future__ import annotations

import asyncio
import time

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from commercekit.cdn import (
    EdgeCache,
    Headers,
    HmacUrlSigner,
    MemoryStore,
    MockOrigin,
    Request,
    Response,
    normalize_url,
    parse_cache_control,
    store_decision,
)
from commercekit.cdn._message._dates import format_http_date, parse_http_date
from commercekit.cdn._policy._cache_control import DELTA_SECONDS_MAX, parse_targeted
from commercekit.cdn._policy._freshness import parse_age
from commercekit.cdn._policy._vary import variant_of, vary_names
from commercekit.errors import SignatureError
from tests.fuzz.hostile import control, hostile_text, only_ours

FUZZ = settings(max_examples=40)  # the default run's budget; CI's profile does not raise it

directive = st.sampled_from(
    [
        "max-age",
        "s-maxage",
        "no-store",
        "no-cache",
        "private",
        "public",
        "stale-if-error",
        "stale-while-revalidate",
        "must-revalidate",
        "Max-Age",
        "max-stale",
    ]
)
separator = st.sampled_from(["=", "", '="'])
one_directive = st.builds(lambda d, sep, v: f"{d}{sep}{v}", directive, separator, hostile_text)
cache_control_like = st.lists(one_directive, max_size=5).map(", ".join) | hostile_text
response_field = st.tuples(
    st.sampled_from(
        ["vary", "expires", "age", "cache-control", "cdn-cache-control", "date", "last-modified"]
    ),
    hostile_text,
)
request_field = st.tuples(
    st.sampled_from(["accept", "user-agent", "accept-encoding", "cache-control", "range"]),
    hostile_text,
)


@FUZZ
@given(cache_control_like)
def test_cache_control_parses_within_range(field: str) -> None:
    for parse in (parse_cache_control, parse_targeted):
        cc = only_ours(parse, field)
        if cc is None:
            continue
        for value in (cc.max_age, cc.s_maxage, cc.stale_if_error, cc.stale_while_revalidate):
            assert value is None or 0 <= value <= DELTA_SECONDS_MAX


@FUZZ
@given(hostile_text | st.builds(lambda d: format_http_date(d), st.integers(0, 2**33)))
def test_dates_parse_strictly_and_round_trip(value: str) -> None:
    parsed = only_ours(parse_http_date, value)
    if parsed is not None:
        assert parse_http_date(format_http_date(parsed)) == parsed


@FUZZ
@given(hostile_text)
def test_age_is_a_bounded_number(value: str) -> None:
    age = only_ours(parse_age, value)
    assert age is not None
    assert 0 <= age <= DELTA_SECONDS_MAX


@FUZZ
@given(st.lists(response_field, max_size=6), st.lists(request_field, max_size=3))
def test_store_decision_takes_any_response_headers(
    fields: list[tuple[str, str]], request_fields: list[tuple[str, str]]
) -> None:
    request = Request("GET", "http://shop.test/a", Headers(request_fields))
    response = Response(200, Headers(fields), b"x")
    stored = only_ours(store_decision, "k", request, response, request_time=1e9, response_time=1e9)
    if stored is not None:
        assert stored.fresh_until <= 1e9 + DELTA_SECONDS_MAX
        names = only_ours(vary_names, Headers(fields))
        assert names is not None
        assert only_ours(variant_of, names, Headers(request_fields)) is not None


url_like = st.builds(
    lambda a, b: f"http://shop.test/{a}{b}", hostile_text, st.sampled_from(["", "?q=1", "#f"])
)


@FUZZ
@given(url_like)
def test_normalized_urls_hold_no_controls(url: str) -> None:
    normalized = only_ours(normalize_url, url)
    if normalized is not None:
        assert not any(ord(c) <= 0x20 or c == "\x7f" for c in normalized)


@FUZZ
@given(url_like, st.lists(response_field | request_field, max_size=4))
def test_the_edge_answers_any_request_or_refuses_it(
    url: str, fields: list[tuple[str, str]]
) -> None:
    seen: list[str] = []

    def answer(request: Request) -> Response:
        seen.append(request.url)
        return Response(200, Headers([("cache-control", "max-age=60"), *fields]), b"body")

    async def main() -> object:
        async with EdgeCache(MockOrigin(answer), MemoryStore(1 << 20)) as edge:
            await edge.handle(Request("GET", url, Headers(fields)))
            return await edge.handle(Request("GET", url, Headers(fields)))

    only_ours(lambda: asyncio.run(main()))
    for fetched in seen:
        assert not any(ord(c) <= 0x20 or c == "\x7f" for c in fetched)


_signer = HmacUrlSigner(b"k" * 32)


@FUZZ
@given(st.integers(0, 60), st.text(control | st.just(" "), min_size=1, max_size=3), hostile_text)
def test_signed_urls_with_anything_inserted_are_refused(at: int, inserted: str, junk: str) -> None:
    url = _signer.sign("https://cdn.test/img/a.jpg?w=100", expires_at=time.time() + 600)
    start = url.index("/", len("https://"))  # the signature covers the path and the query
    at = min(start + 1 + at, len(url))
    for bad in (url[:at] + inserted + url[at:], junk):
        only_ours(_signer.verify, bad)
        with pytest.raises(SignatureError):
            _signer.verify(bad)
