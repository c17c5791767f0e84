"""The HTTP transport seam of the HTTP gateways, and two transports.

:class:`UrllibTransport` sends over the standard library's ``http.client``
(no dependency) and sorts failures by what they mean for a payment: a failure
to connect is an :class:`~commercekit.errors.UnavailableError` (the request
never left, so it is safe to retry), while a timeout or a reset *after* the
request was written is an :class:`~commercekit.errors.OutcomeUnknownError`
(the provider may have acted; look it up before trying again). It opens one
connection per request, so a stale keep-alive connection can never turn a
request that was never read into an unknown outcome.

:class:`MockTransport` takes a plain function from request to response, for
wire-format tests and in-process fakes.
"""

from __future__ import annotations

import functools
import http.client
import ssl
import urllib.parse
from collections.abc import Callable, Mapping
from types import MappingProxyType
from typing import ParamSpec, TypeVar

import attrs

from commercekit.errors import (
    CommerceKitError,
    ConfigurationError,
    InvalidInputError,
    OutcomeUnknownError,
    UnavailableError,
)

__all__ = [
    "HttpRequest",
    "HttpResponse",
    "MockTransport",
    "UrllibTransport",
    "path_segment",
    "unreadable_answers",
]

_P = ParamSpec("_P")
_R = TypeVar("_R")

#: What reading a malformed answer raises: a missing key, a wrong type, a bad number.
UNREADABLE = (KeyError, IndexError, TypeError, ValueError, AttributeError, ArithmeticError)


def unreadable_answers(provider: str) -> Callable[[Callable[_P, _R]], Callable[_P, _R]]:
    """Turn a gateway method's failure to read *provider*'s answer into OutcomeUnknownError.

    A 2xx body without the fields it should have (no ``id``, an ``amount``
    that is not a number, a list where an object belongs) means the call may
    well have taken effect while its answer cannot be used: the caller must
    look it up, not retry blindly. commercekit errors pass through as they are.
    """

    def decorate(method: Callable[_P, _R]) -> Callable[_P, _R]:
        @functools.wraps(method)
        def read(*args: _P.args, **kwargs: _P.kwargs) -> _R:
            try:
                return method(*args, **kwargs)
            except CommerceKitError:
                raise
            except UNREADABLE as exc:
                raise OutcomeUnknownError(
                    f"{provider}'s answer to {method.__name__} could not be read "
                    f"({type(exc).__name__}); the call may have taken effect: look it up "
                    "before trying again"
                ) from exc

        return read

    return decorate


def path_segment(value: object) -> str:
    """*value* (a provider reference) as one URL path segment: ``/``, ``?``, ``..`` escaped.

    Raises:
        InvalidInputError: not a non-empty str, or a lone surrogate in it.
    """
    if not isinstance(value, str) or not value:
        raise InvalidInputError(
            f"a provider reference is a non-empty str, not {type(value).__name__}"
        )
    try:
        return urllib.parse.quote(value, safe="")
    except UnicodeEncodeError:
        raise InvalidInputError("a provider reference holds a lone surrogate") from None


def _headers(value: Mapping[str, str]) -> Mapping[str, str]:
    return MappingProxyType(dict(value))


@attrs.frozen
class HttpRequest:
    """One HTTP request. Headers and body stay out of ``repr`` (they carry keys and cards)."""

    method: str
    url: str
    headers: Mapping[str, str] = attrs.field(factory=dict, converter=_headers, repr=False)
    body: bytes = attrs.field(default=b"", repr=False)
    timeout_s: float = 30.0


@attrs.frozen
class HttpResponse:
    """One HTTP response."""

    status: int
    headers: Mapping[str, str] = attrs.field(factory=dict, converter=_headers)
    body: bytes = attrs.field(default=b"", repr=False)

    def header(self, name: str) -> str | None:
        """The value of header *name*, matched without regard to case."""
        lower = name.lower()
        for key, value in self.headers.items():
            if key.lower() == lower:
                return value
        return None


class MockTransport:
    """A transport that hands each request to *handler* and returns its response."""

    def __init__(self, handler: Callable[[HttpRequest], HttpResponse]) -> None:
        self._handler = handler

    def handle(self, request: HttpRequest) -> HttpResponse:
        """Return ``handler(request)``."""
        return self._handler(request)

    def __repr__(self) -> str:
        return f"MockTransport({getattr(self._handler, '__name__', 'handler')})"


class UrllibTransport:
    """A transport over ``http.client``: one connection per request, failures sorted by meaning.

    *ssl_context* defaults to the system's verified context for ``https``.
    """

    def __init__(self, *, ssl_context: ssl.SSLContext | None = None) -> None:
        self._ssl_context = ssl_context

    def handle(self, request: HttpRequest) -> HttpResponse:
        """Send *request* and read the whole response."""
        parts = urllib.parse.urlsplit(request.url)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise ConfigurationError(f"cannot send to {parts.scheme}://{parts.hostname}")
        target = parts.path or "/"
        if parts.query:
            target += "?" + parts.query
        conn: http.client.HTTPConnection
        if parts.scheme == "https":
            context = self._ssl_context or ssl.create_default_context()
            conn = http.client.HTTPSConnection(
                parts.hostname, parts.port, timeout=request.timeout_s, context=context
            )
        else:
            conn = http.client.HTTPConnection(parts.hostname, parts.port, timeout=request.timeout_s)
        try:
            try:
                conn.connect()
            except (OSError, http.client.HTTPException) as exc:
                raise UnavailableError(
                    f"could not connect to {parts.hostname}:{parts.port or ''} "
                    f"({type(exc).__name__}); nothing was sent, safe to retry"
                ) from exc
            try:
                conn.request(
                    request.method, target, body=request.body, headers=dict(request.headers)
                )
                response = conn.getresponse()
                body = response.read()
            except (TimeoutError, OSError, http.client.HTTPException) as exc:
                raise OutcomeUnknownError(
                    f"{request.method} {parts.path} failed after the request was sent "
                    f"({type(exc).__name__}); the provider may have acted: look it up first"
                ) from exc
            return HttpResponse(response.status, dict(response.getheaders()), body)
        finally:
            conn.close()

    def __repr__(self) -> str:
        return "UrllibTransport()"
