"""Pooled transports over httpx, sync and async: the HTTP gateways' default with the [http] extra.

:class:`HttpxTransport` and :class:`AsyncHttpxTransport` keep connections to a
provider open between calls (a TLS handshake costs a round trip or two, and
CPU on both sides), and sort failures as the transport seam promises:

- nothing was sent (the connection or TLS handshake failed, or no pooled
  connection freed up in time): :class:`~commercekit.errors.UnavailableError`,
  safe to retry;
- the request may have reached the provider (a timeout or a reset while
  writing or reading, a connection closed without an answer):
  :class:`~commercekit.errors.OutcomeUnknownError`, look it up first.

httpx checks an idle connection before it reuses it and drops it when the
server has closed it, and it closes connections idle for longer than
*keepalive_expiry_s* (5 s, below the idle timeouts providers use), so a stale
connection rarely turns a call into an unknown outcome; when one races the
server's close anyway, the error says so honestly and the gateway's
idempotency key makes the lookup and the retry safe.
"""

from __future__ import annotations

import functools
import ssl
import threading
import urllib.parse
import weakref
from typing import TYPE_CHECKING, Any, Protocol

from commercekit._closing import AsyncClosing, Closing
from commercekit._extras import require
from commercekit._loop import LoopPool, client_pool
from commercekit.errors import ConfigurationError, OutcomeUnknownError, UnavailableError
from commercekit.payments._transports._http import HttpRequest, HttpResponse, UrllibTransport

if TYPE_CHECKING:
    from commercekit.payments._typing import HttpTransport

if TYPE_CHECKING:
    import httpx

__all__ = ["AsyncHttpTransport", "AsyncHttpxTransport", "HttpxTransport"]


class AsyncHttpTransport(Protocol):
    """:class:`~commercekit.payments.HttpTransport` for asyncio: the same errors, awaited."""

    async def handle(self, request: HttpRequest) -> HttpResponse:
        """Send *request*; return the response, whatever its status code."""
        ...


def _httpx(feature: str) -> None:
    require("httpx", extra="http", feature=feature)


def checked_request(request: HttpRequest) -> None:
    """Refuse a URL that is not http(s) with a host: a configuration error, nothing sent."""
    parts = urllib.parse.urlsplit(request.url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise ConfigurationError(f"cannot send to {parts.scheme}://{parts.hostname}")


def checked_limits(max_connections: int, keepalive_expiry_s: float) -> None:
    """Refuse a pool size or keep-alive expiry out of range (every pooled transport's check)."""
    if isinstance(max_connections, bool) or not isinstance(max_connections, int):
        raise ConfigurationError("max_connections is an int")
    if max_connections < 1:
        raise ConfigurationError(f"max_connections must be at least 1, not {max_connections}")
    if not isinstance(keepalive_expiry_s, int | float) or not 0 <= keepalive_expiry_s < 3600:
        raise ConfigurationError("keepalive_expiry_s is a number of seconds from 0 to 3600")


def _limits(max_connections: int, keepalive_expiry_s: float) -> httpx.Limits:
    import httpx

    checked_limits(max_connections, keepalive_expiry_s)
    return httpx.Limits(
        max_connections=max_connections,
        max_keepalive_connections=max_connections,
        keepalive_expiry=keepalive_expiry_s,
    )


def _client_options(
    ssl_context: ssl.SSLContext | None, max_connections: int, keepalive_expiry_s: float
) -> dict[str, Any]:
    """The options both clients are built with: verified TLS, a bounded pool, no redirects."""
    return {
        "verify": ssl_context if ssl_context is not None else True,
        "limits": _limits(max_connections, keepalive_expiry_s),
        "follow_redirects": False,
        "trust_env": False,
    }


def _request_options(request: HttpRequest) -> dict[str, Any]:
    """The arguments of ``request()`` that send *request* on either client."""
    return {
        "method": request.method,
        "url": request.url,
        "content": request.body,
        "headers": dict(request.headers),
        "timeout": request.timeout_s,
    }


def _failed(request: HttpRequest, exc: Exception) -> Exception:
    """The commercekit error for an httpx failure of *request*."""
    import httpx

    where = urllib.parse.urlsplit(request.url)
    if isinstance(exc, httpx.ConnectError | httpx.ConnectTimeout | httpx.PoolTimeout):
        return UnavailableError(
            f"could not connect to {where.hostname}:{where.port or ''} "
            f"({type(exc).__name__}); nothing was sent, safe to retry"
        )
    if isinstance(exc, httpx.UnsupportedProtocol | httpx.InvalidURL):
        return ConfigurationError(f"cannot send to {where.scheme}://{where.hostname}")
    return OutcomeUnknownError(
        f"{request.method} {where.path} failed after the request was sent "
        f"({type(exc).__name__}); the provider may have acted: look it up first"
    )


def _response(answer: httpx.Response) -> HttpResponse:
    return HttpResponse(answer.status_code, dict(answer.headers.items()), answer.content)


class HttpxTransport(Closing):
    """A pooled transport over ``httpx.Client``: connections reused, failures sorted by meaning.

    *ssl_context* defaults to the system's verified context. At most
    *max_connections* are open at once; a call waits for one up to its
    timeout. Close it (or use it as a context manager) to close the pool; a
    later call opens a new one, and a pool left open is closed when the
    transport is collected. Needs the ``[http]`` extra.
    """

    def __init__(
        self,
        *,
        ssl_context: ssl.SSLContext | None = None,
        max_connections: int = 20,
        keepalive_expiry_s: float = 5.0,
    ) -> None:
        _httpx("HttpxTransport")
        self._options = _client_options(ssl_context, max_connections, keepalive_expiry_s)
        self._lock = threading.Lock()
        self._client, self._closer = self._open()

    def _open(self) -> tuple[httpx.Client, weakref.finalize[Any, Any]]:
        import httpx

        client = httpx.Client(**self._options)
        # A gateway made with the default transport and dropped without close() must
        # not leave its pooled sockets to the garbage collector: close them with it.
        return client, weakref.finalize(self, client.close)

    def _current(self) -> httpx.Client:
        """The open client: the one held, or a new one after close()."""
        client = self._client
        if not client.is_closed:
            return client
        with self._lock:
            if self._client.is_closed:
                self._closer.detach()
                self._client, self._closer = self._open()
            return self._client

    def handle(self, request: HttpRequest) -> HttpResponse:
        """Send *request* and read the whole response."""
        import httpx

        checked_request(request)
        client = self._current()
        try:
            answer = client.request(**_request_options(request))
        except httpx.HTTPError as exc:
            raise _failed(request, exc) from exc
        except RuntimeError as exc:  # closed by another thread before it sent anything
            if not client.is_closed:
                raise
            raise UnavailableError(
                "the transport was closed before the request was sent; safe to retry"
            ) from exc
        return _response(answer)

    def close(self) -> None:
        """Close every pooled connection (done too when the transport is collected)."""
        with self._lock:
            self._closer()

    def __repr__(self) -> str:
        return "HttpxTransport()"


class AsyncHttpxTransport(AsyncClosing):
    """:class:`HttpxTransport` for asyncio, over ``httpx.AsyncClient``: the same pool and errors.

    The client is made on the event loop of the first call and belongs to it,
    as :class:`~commercekit.payments.AiohttpTransport`'s session does: close
    it with ``await transport.aclose()`` (or ``async with``); else its loop
    closes it as it shuts down, and a later call on a new loop makes a new
    one. Needs the ``[http]`` extra.
    """

    def __init__(
        self,
        *,
        ssl_context: ssl.SSLContext | None = None,
        max_connections: int = 20,
        keepalive_expiry_s: float = 5.0,
    ) -> None:
        _httpx("AsyncHttpxTransport")
        options = _client_options(ssl_context, max_connections, keepalive_expiry_s)
        self._pool: LoopPool[httpx.AsyncClient] = client_pool(
            "AsyncHttpxTransport", functools.partial(_async_client, options)
        )

    async def handle(self, request: HttpRequest) -> HttpResponse:
        """Send *request* and read the whole response."""
        import httpx

        checked_request(request)
        client = await self._pool.get()
        try:
            answer = await client.request(**_request_options(request))
        except httpx.HTTPError as exc:
            raise _failed(request, exc) from exc
        return _response(answer)

    async def aclose(self) -> None:
        """Close every pooled connection (a later call opens a new pool)."""
        await self._pool.aclose()

    def __repr__(self) -> str:
        return "AsyncHttpxTransport()"


def _async_client(options: dict[str, Any]) -> httpx.AsyncClient:
    import httpx

    return httpx.AsyncClient(**options)


def default_transport() -> HttpTransport:
    """The HTTP gateways' default: a pooled :class:`HttpxTransport` with the [http] extra.

    Without httpx installed, a :class:`~commercekit.payments.UrllibTransport`
    (one connection per call) keeps the gateways working.
    """
    try:
        import httpx  # noqa: F401
    except ImportError:
        return UrllibTransport()
    return HttpxTransport()
