"""``HttpOrigin``: forward to an HTTP server through ``httpx`` (the ``[cdn]`` extra)."""

from __future__ import annotations

from typing import TYPE_CHECKING
from urllib.parse import urlsplit

from commercekit.errors import ConfigurationError, OriginError

from ._headers import HOP_BY_HOP, Headers
from ._messages import Request, Response

if TYPE_CHECKING:
    import httpx

__all__ = ["HttpOrigin"]

_DEFAULT_MAX_BODY = 64 * 1024 * 1024


class HttpOrigin:
    """An :class:`~commercekit.cdn.Origin` that sends each request to *base_url*.

    The request's path and query are kept; scheme and host become the
    origin's (``Host`` included). A response bigger than *max_body_bytes*,
    a broken connection or a timeout raise :class:`OriginError`; an HTTP
    error status is returned as a response. Pass *client* to share or tune
    the connection pool; otherwise one is made on first use.
    """

    def __init__(
        self,
        base_url: str,
        *,
        timeout_s: float = 10.0,
        max_body_bytes: int = _DEFAULT_MAX_BODY,
        client: httpx.AsyncClient | None = None,
    ) -> None:
        parts = urlsplit(base_url)
        if parts.scheme not in ("http", "https") or not parts.netloc:
            raise ConfigurationError(f"origin URL {base_url!r} must be http(s)://host[:port]")
        self._base = f"{parts.scheme}://{parts.netloc}{parts.path.rstrip('/')}"
        self._timeout = timeout_s
        self._max_body = max_body_bytes
        self._client = client
        self._own_client = client is None

    def _http(self) -> httpx.AsyncClient:
        if self._client is None:
            import httpx

            self._client = httpx.AsyncClient(timeout=self._timeout, follow_redirects=False)
        return self._client

    async def fetch(self, request: Request, /) -> Response:
        """Send *request* to the origin and return its whole response."""
        import httpx

        parts = urlsplit(request.url)
        target = self._base + (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
        headers = [(k, v) for k, v in request.headers.without(*HOP_BY_HOP, "host").items()]
        try:
            async with self._http().stream(
                request.method, target, headers=headers, content=request.body or None
            ) as response:
                chunks: list[bytes] = []
                size = 0
                async for chunk in response.aiter_raw():
                    size += len(chunk)
                    if size > self._max_body:
                        raise OriginError(
                            f"origin body for {parts.path!r} is over {self._max_body} bytes"
                        )
                    chunks.append(chunk)
                raw_headers = response.headers.raw
                status = response.status_code
        except httpx.HTTPError as exc:
            raise OriginError(
                f"origin request {request.method} {target!r} failed: {exc!r}"
            ) from exc
        headers_out = Headers.from_wire(raw_headers).without(*HOP_BY_HOP)
        body = b"".join(chunks)
        return Response(status, headers_out, body)

    async def aclose(self) -> None:
        """Close the connection pool if this origin made it."""
        if self._client is not None and self._own_client:
            await self._client.aclose()
            self._client = None

    def __repr__(self) -> str:
        return f"HttpOrigin({self._base!r})"
