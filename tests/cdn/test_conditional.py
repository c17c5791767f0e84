"""Client conditionals and ranges against a full response."""

from __future__ import annotations

import pytest

from commercekit.cdn import Headers, Request, Response
from commercekit.cdn._policy._conditional import apply_range, not_modified_for, parse_range

BODY = bytes(range(100))
FULL = Response(
    200,
    Headers({"etag": '"v1"', "last-modified": "Tue, 14 Nov 2023 22:13:20 GMT", "x": "y"}),
    BODY,
)


def req(**headers: str) -> Request:
    return Request(
        "GET", "http://h/a", Headers({k.replace("_", "-"): v for k, v in headers.items()})
    )


def test_if_none_match_weak_compare() -> None:
    r = not_modified_for(req(if_none_match='W/"v1", "v2"'), FULL)
    assert r is not None
    assert r.status == 304
    assert r.body == b""
    assert r.headers.get("etag") == '"v1"'
    assert "x" not in r.headers


def test_if_none_match_takes_precedence() -> None:
    r = req(if_none_match='"other"', if_modified_since="Wed, 15 Nov 2023 00:00:00 GMT")
    assert not_modified_for(r, FULL) is None


def test_if_modified_since() -> None:
    assert not_modified_for(req(if_modified_since="Wed, 15 Nov 2023 00:00:00 GMT"), FULL)
    assert not not_modified_for(req(if_modified_since="Mon, 13 Nov 2023 00:00:00 GMT"), FULL)


@pytest.mark.parametrize(
    ("field", "expected"),
    [
        ("bytes=0-9", (0, 9)),
        ("bytes=90-", (90, 99)),
        ("bytes=-10", (90, 99)),
        ("bytes=95-200", (95, 99)),
        ("bytes=100-", False),
        ("bytes=-0", False),
        ("bytes=5-1", None),
        ("bytes=0-1,5-6", None),
        ("items=0-1", None),
        ("bytes=a-b", None),
        (None, None),
    ],
)
def test_parse_range(field: str | None, expected: object) -> None:
    assert parse_range(field, 100) == expected


def test_206_and_416() -> None:
    r = apply_range(req(range="bytes=10-19"), FULL)
    assert r.status == 206
    assert r.body == BODY[10:20]
    assert r.headers.get("content-range") == "bytes 10-19/100"
    assert apply_range(req(range="bytes=200-"), FULL).status == 416


def test_if_range_mismatch_gives_the_whole_body() -> None:
    r = apply_range(req(range="bytes=0-1", if_range='"v0"'), FULL)
    assert r.status == 200
    assert apply_range(req(range="bytes=0-1", if_range='"v1"'), FULL).status == 206
