"""A pooled asyncio transport over aiohttp: the async HTTP gateways' default with the [http] extra.

Why aiohttp and not httpx for asyncio: httpcore's async pool walks every
pooled connection and polls each idle one's socket on every request
(encode/httpcore#1035), so with hundreds of keep-alive connections to one
provider a call costs milliseconds of CPU (about 13 ms at 200 connections,
``benchmarks/frameworks.py``). aiohttp's connector keeps idle connections per
host in a list it pops from, so a call's cost does not grow with the pool.

:class:`AiohttpTransport` sorts failures as the transport seam promises:

- nothing was sent (the connection or TLS handshake failed, or no pooled
  connection freed up within the deadline):
  :class:`~commercekit.errors.UnavailableError`, safe to retry;
- the request may have reached the provider (a timeout or a reset while
  writing or reading, a connection closed without an answer):
  :class:`~commercekit.errors.OutcomeUnknownError`, look it up first.

Deadlines are per phase, as httpx's are: *timeout_s* for getting a
connection (pool wait plus connect and TLS) and *timeout_s* for each read.
Headers and bodies never reach an error message (they carry keys and cards).
"""

from __future__ import annotations

import functools
import ssl
import urllib.parse
from typing import TYPE_CHECKING

from commercekit._closing import AsyncClosing
from commercekit._extras import require
from commercekit._loop import LoopPool
from commercekit.errors import ConfigurationError, OutcomeUnknownError, UnavailableError
from commercekit.payments._transports._http import HttpRequest, HttpResponse
from commercekit.payments._transports._httpx import (
    AsyncHttpxTransport,
    checked_limits,
    checked_request,
)

if TYPE_CHECKING:
    import aiohttp

__all__ = ["AiohttpTransport", "default_async_transport"]


class AiohttpTransport(AsyncClosing):
    """A pooled asyncio transport over an ``aiohttp`` session: connections reused, O(1) per call.

    *ssl_context* defaults to the system's verified context. At most
    *max_connections* are open at once; a call waits for one up to its
    timeout. Idle connections close after *keepalive_expiry_s*. The session is
    made on the event loop of the first call and belongs to it: close it with
    ``await transport.aclose()`` (or ``async with``); else its loop closes it
    as it shuts down (``asyncio.run()`` does), or when the transport is
    dropped while the loop runs, and a later call on a new loop makes a new
    one. A call from another loop while that one runs is a
    :class:`~commercekit.errors.ConfigurationError`. Needs the ``[http]`` extra.
    """

    def __init__(
        self,
        *,
        ssl_context: ssl.SSLContext | None = None,
        max_connections: int = 20,
        keepalive_expiry_s: float = 5.0,
    ) -> None:
        require("aiohttp", extra="http", feature="AiohttpTransport")
        checked_limits(max_connections, keepalive_expiry_s)
        verify: ssl.SSLContext | bool = ssl_context if ssl_context is not None else True
        # No reference back to the transport: dropped, it is freed at once, and so is its pool.
        self._pool: LoopPool[aiohttp.ClientSession] = LoopPool(
            "AiohttpTransport",
            functools.partial(_session, verify, max_connections, float(keepalive_expiry_s)),
            _close,
            _closed,
        )

    async def handle(self, request: HttpRequest) -> HttpResponse:
        """Send *request* and read the whole response."""
        import aiohttp
        import yarl

        checked_request(request)
        session = await self._pool.get()
        timeout = aiohttp.ClientTimeout(
            total=None, connect=request.timeout_s, sock_read=request.timeout_s
        )
        try:
            async with session.request(
                request.method,
                yarl.URL(request.url, encoded=True),  # sent as built: path segments stay escaped
                headers=dict(request.headers),
                data=request.body or None,
                timeout=timeout,
                allow_redirects=False,
            ) as answer:
                body = await answer.read()
                headers = {k: ", ".join(answer.headers.getall(k)) for k in answer.headers}
                return HttpResponse(answer.status, headers, body)
        except (TimeoutError, aiohttp.ClientError, OSError) as exc:
            raise _failed(request, exc) from exc

    async def aclose(self) -> None:
        """Close every pooled connection (a later call opens a new pool)."""
        await self._pool.aclose()

    def __repr__(self) -> str:
        return "AiohttpTransport()"


def _session(
    verify: ssl.SSLContext | bool, limit: int, keepalive_s: float
) -> aiohttp.ClientSession:
    """A new pooled session (made on the running event loop, which it then belongs to)."""
    import aiohttp

    connector = aiohttp.TCPConnector(
        limit=limit, limit_per_host=0, keepalive_timeout=keepalive_s, ssl=verify
    )
    return aiohttp.ClientSession(
        connector=connector, trust_env=False, auto_decompress=True, timeout=None
    )


async def _close(session: aiohttp.ClientSession) -> None:
    await session.close()


def _closed(session: aiohttp.ClientSession) -> bool:
    return session.closed


def _failed(request: HttpRequest, exc: BaseException) -> Exception:
    """The commercekit error for an aiohttp failure of *request*."""
    import aiohttp

    where = urllib.parse.urlsplit(request.url)
    # ConnectionTimeoutError: ClientTimeout.connect ran out, which covers the wait
    # for a pooled connection and the connect: nothing was written.
    if isinstance(exc, aiohttp.ClientConnectorError | aiohttp.ConnectionTimeoutError):
        return UnavailableError(
            f"could not connect to {where.hostname}:{where.port or ''} "
            f"({type(exc).__name__}); nothing was sent, safe to retry"
        )
    if isinstance(exc, aiohttp.InvalidURL | aiohttp.NonHttpUrlClientError):
        return ConfigurationError(f"cannot send to {where.scheme}://{where.hostname}")
    return OutcomeUnknownError(
        f"{request.method} {where.path} failed after the request was sent "
        f"({type(exc).__name__}); the provider may have acted: look it up first"
    )


def default_async_transport() -> AiohttpTransport | AsyncHttpxTransport:
    """The async HTTP gateways' default: a pooled :class:`AiohttpTransport`.

    Without aiohttp installed (an older ``[http]`` install), the pooled
    :class:`~commercekit.payments.AsyncHttpxTransport`.
    """
    try:
        import aiohttp  # noqa: F401
    except ImportError:
        return AsyncHttpxTransport()
    return AiohttpTransport()
