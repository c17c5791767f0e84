"""Asking the origin for an ``EdgeCache``: the request it sends, the timeout, the metrics.

Foreign errors become :class:`OriginError` here; a streamed body gets its
bytes counted as it is read; a response without ``Date`` gets one.
"""

from __future__ import annotations

import asyncio
import time
from urllib.parse import urlsplit

import attrs

from commercekit.cdn._message._dates import format_http_date
from commercekit.cdn._message._headers import without_hop_by_hop
from commercekit.cdn._message._messages import Request, Response
from commercekit.cdn._message._stored import StoredResponse
from commercekit.cdn._policy._decision import conditional_headers
from commercekit.cdn._typing import Origin
from commercekit.errors import CommerceKitError, OriginError, OriginTimeoutError
from commercekit.metrics import TRACING_AVAILABLE, span

from ._instruments import EdgeInstruments
from ._stream import counted

__all__ = ["call_origin", "dated", "origin_request"]

CLIENT_ONLY = frozenset(
    {"if-none-match", "if-modified-since", "if-range", "if-match", "if-unmodified-since", "range"}
)
"""Request fields about the client's own copy: never forwarded on a fetch for the cache."""


def origin_request(request: Request, entry: StoredResponse | None) -> Request:
    """Return the GET the edge sends for *request*, conditional on *entry* when there is one."""
    headers = without_hop_by_hop(request.headers).without(*CLIENT_ONLY)
    if entry is not None:
        for name, value in conditional_headers(entry).items():
            headers = headers.set(name, value)
    return Request("GET", request.url, headers)


async def call_origin(
    origin: Origin, request: Request, timeout_s: float | None, m: EdgeInstruments
) -> Response:
    """Send *request* to *origin* within *timeout_s*, in a trace span (to the response head)."""
    if not TRACING_AVAILABLE:  # no opentelemetry-api in this process: no span to start
        return await _call_origin(origin, request, timeout_s, m)
    # Only the path goes into the span: a signed URL's query carries its signature.
    attributes = {"http.request.method": request.method, "url.path": urlsplit(request.url).path}
    with span("origin_fetch", kind="client", attributes=attributes):
        return await _call_origin(origin, request, timeout_s, m)


async def _call_origin(
    origin: Origin, request: Request, timeout_s: float | None, m: EdgeInstruments
) -> Response:
    """Send *request* to *origin* within *timeout_s* (to the headers, or the whole small body)."""
    started = time.perf_counter()
    try:
        if timeout_s is None:
            response = await origin.fetch(request)
        else:
            async with asyncio.timeout(timeout_s):
                response = await origin.fetch(request)
    except TimeoutError as exc:
        m.origin_errors.inc()
        raise OriginTimeoutError(
            f"origin did not answer {request.url!r} within {timeout_s} s"
        ) from exc
    except CommerceKitError:
        m.origin_errors.inc()
        raise
    except Exception as exc:
        m.origin_errors.inc()
        raise OriginError(f"origin failed on {request.url!r}: {exc!r:.200}") from exc
    m.origin_latency.record(time.perf_counter() - started)
    m.origin_requests.inc()
    if response.stream is not None:
        return attrs.evolve(response, stream=counted(response.stream, m.origin_bytes))
    m.origin_bytes.inc(len(response.body))
    return response


def dated(response: Response, received_at: float) -> Response:
    """Add the ``Date`` a recipient with a clock must add when there is none (RFC 9110 6.6.1)."""
    if "date" in response.headers:
        return response
    return attrs.evolve(
        response, headers=response.headers.extended(("date", format_http_date(received_at)))
    )
