"""The request and response values that flow through the edge, and how a response was served."""

from __future__ import annotations

import enum

import attrs

from ._body import BodyStream
from ._headers import Headers

__all__ = ["CacheOutcome", "Request", "Response"]


class CacheOutcome(enum.Enum):
    """How the edge produced a response (also sent as the ``Cache-Status`` of RFC 9211)."""

    HIT = "hit"
    """A fresh stored response, the origin untouched."""
    MISS = "miss"
    """Nothing usable was stored; the origin answered (one request per key, shared)."""
    REVALIDATED = "revalidated"
    """A stale stored response the origin confirmed with 304 Not Modified."""
    STALE_WHILE_REVALIDATE = "stale-while-revalidate"
    """A stale stored response served at once while one background refresh runs."""
    STALE_IF_ERROR = "stale-if-error"
    """A stale stored response served because the origin failed."""
    PASS = "pass"  # noqa: S105 - a cache outcome, not a password
    """Not cacheable (an unsafe method, ``no-store``, ``private``): sent straight to the origin."""
    ORIGIN = "origin"
    """A response as the origin produced it, not yet through the edge."""


def _headers(value: Headers | object) -> Headers:
    return value if isinstance(value, Headers) else Headers(value)  # type: ignore[arg-type]


@attrs.frozen(slots=True)
class Request:
    """One HTTP request: method, absolute URL (``https://host/path?q``), headers and body."""

    method: str
    url: str
    headers: Headers = attrs.field(factory=Headers, converter=_headers)
    body: bytes = b""


@attrs.frozen(slots=True)
class Response:
    """One HTTP response and how the edge produced it.

    The body is either whole in *body* (``b""`` for HEAD), or, when it is
    large or of unknown length, arriving in *stream* (then *body* is
    ``b""``). Whoever receives a response with a stream reads it or closes
    it (:meth:`aclose`); :meth:`read` returns the body either way.
    """

    status: int
    headers: Headers = attrs.field(factory=Headers, converter=_headers)
    body: bytes = b""
    outcome: CacheOutcome = CacheOutcome.ORIGIN
    stream: BodyStream | None = None

    async def read(self) -> bytes:
        """Return the whole body, reading the stream if there is one (it must fit in memory)."""
        return self.body if self.stream is None else await self.stream.read()

    async def aclose(self) -> None:
        """Close the stream, if any, without reading the rest."""
        if self.stream is not None:
            await self.stream.aclose()
