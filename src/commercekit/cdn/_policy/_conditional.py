"""A client's conditional and range requests against the response the edge would send.

RFC 9110 13 (``If-None-Match``, ``If-Modified-Since``, ``If-Range``) and 14
(``Range``): pure functions from a request and a full response to the
response to send.
"""

from __future__ import annotations

from typing import Literal

from commercekit.cdn._message._body import STREAM_THRESHOLD_BYTES, BodyStream
from commercekit.cdn._message._dates import parse_http_date
from commercekit.cdn._message._headers import Headers
from commercekit.cdn._message._messages import Request, Response

__all__ = [
    "MAX_RANGE_SPECS",
    "apply_range",
    "not_modified_for",
    "parse_range",
    "plan_range",
    "range_headers",
]

MAX_RANGE_SPECS = 1
"""Only single ranges are answered with 206; several ranges get the whole 200 (allowed)."""

_KEPT_ON_304 = (
    "cache-control",
    "content-location",
    "date",
    "etag",
    "expires",
    "vary",
    "age",
    "last-modified",
    "via",
    "cache-status",
)


def _etags(field: str) -> list[str]:
    return [t.strip() for t in field.split(",") if t.strip()]


def _weak_match(a: str, b: str) -> bool:
    return a.removeprefix("W/") == b.removeprefix("W/")


def not_modified_for(request: Request, response: Response) -> Response | None:
    """Return a 304 for *response* if *request*'s preconditions say the client has it.

    Only for GET and HEAD and a 200 response. ``If-None-Match`` (weak
    comparison) takes precedence over ``If-Modified-Since`` (RFC 9110 13.2.2).
    """
    if request.method not in ("GET", "HEAD") or response.status != 200:
        return None
    inm = request.headers.joined("if-none-match")
    if inm is not None:
        etag = response.headers.get("etag")
        tags = _etags(inm)
        if etag is not None and ("*" in tags or any(_weak_match(t, etag) for t in tags)):
            return _not_modified(response)
        return None
    ims = parse_http_date(request.headers.get("if-modified-since"))
    modified = parse_http_date(response.headers.get("last-modified"))
    if ims is not None and modified is not None and modified <= ims:
        return _not_modified(response)
    return None


def _not_modified(response: Response) -> Response:
    kept = [(k, v) for k, v in response.headers.items() if k in _KEPT_ON_304]
    return Response(304, Headers(kept), b"", response.outcome)


def parse_range(field: str | None, length: int) -> tuple[int, int] | Literal[False] | None:
    """Parse a ``Range`` field against a body of *length* bytes.

    Returns ``(first, last)`` inclusive for one satisfiable range, ``None``
    when the field is absent, not ``bytes=`` or has several ranges (serve the
    whole body), and ``False`` when it is unsatisfiable (416).
    """
    if not field or len(field) > 256:
        return None
    unit, sep, spec = field.partition("=")
    if not sep or unit.strip().lower() != "bytes":
        return None
    specs = [s.strip() for s in spec.split(",") if s.strip()]
    if len(specs) != MAX_RANGE_SPECS:
        return None
    first_s, dash, last_s = specs[0].partition("-")
    first_s, last_s = first_s.strip(), last_s.strip()
    if not dash or not _digits(first_s) or not _digits(last_s):
        return None  # str.isdigit alone takes "²" and "١٢": ASCII digits only (RFC 9110 14.1.1)
    if first_s == "":
        if last_s == "":
            return None
        suffix = int(last_s)
        if suffix == 0 or length == 0:
            return False
        return (max(0, length - suffix), length - 1)
    first = int(first_s)
    if last_s and int(last_s) < first:
        return None  # invalid: ignore the field
    last = int(last_s) if last_s else length - 1
    if first >= length:
        return False
    return (first, min(last, length - 1))


def _if_range_holds(request: Request, response: Response) -> bool:
    condition = request.headers.get("if-range")
    if condition is None:
        return True
    condition = condition.strip()
    if condition.startswith(('"', "W/")):
        etag = response.headers.get("etag")
        # strong comparison only (RFC 9110 13.1.5)
        return etag is not None and not etag.startswith("W/") and etag == condition
    return response.headers.get("last-modified") == condition


def plan_range(
    request: Request, response: Response, length: int | None
) -> tuple[int, int] | Literal[False] | None:
    """Decide *request*'s ``Range`` over a full 200 *response* of *length* bytes.

    ``(first, last)`` for a 206, ``False`` for a 416, ``None`` to send the whole
    body (no range, several ranges, a failed ``If-Range``, or an unknown length).
    """
    if (
        length is None
        or request.method != "GET"
        or response.status != 200
        or "range" not in request.headers
    ):
        return None
    parsed = parse_range(request.headers.get("range"), length)
    if parsed is None or not _if_range_holds(request, response):
        return None
    return parsed


def range_headers(headers: Headers, plan: tuple[int, int] | Literal[False], length: int) -> Headers:
    """Return the headers of the 206 (or 416, for ``False``) that *plan* gives."""
    if plan is False:
        return headers.without("content-length", "content-type").set(
            "content-range", f"bytes */{length}"
        )
    first, last = plan
    return headers.set("content-range", f"bytes {first}-{last}/{length}").set(
        "content-length", str(last - first + 1)
    )


def apply_range(request: Request, response: Response) -> Response:
    """Return the 206 or 416 for *request*'s ``Range`` over the full 200 *response*, or it as is."""
    if request.method != "GET" or response.status != 200 or "range" not in request.headers:
        return response
    length = len(response.body)
    plan = plan_range(request, response, length)
    if plan is None:
        return response
    headers = range_headers(response.headers, plan, length)
    if plan is False:
        return Response(416, headers, b"", response.outcome)
    first, last = plan
    if last - first >= STREAM_THRESHOLD_BYTES:
        # A large part of a stored body goes out in pieces, never copied whole.
        part = BodyStream.of(memoryview(response.body)[first : last + 1])
        return Response(206, headers, b"", response.outcome, part)
    return Response(206, headers, response.body[first : last + 1], response.outcome)


def _digits(text: str) -> bool:
    """Empty, or ASCII digits only (at most 19, so a position stays a sane integer)."""
    return text == "" or (len(text) <= 19 and text.isascii() and text.isdigit())
