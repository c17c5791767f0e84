"""The flights of an ``EdgeCache``: what one origin fetch brought back, and the bodies
still streaming in (kept by flight key until their last byte, so that later
requests read along instead of fetching again).
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Coroutine
from typing import Any

import attrs

from commercekit.cdn._message._body import BodyStream
from commercekit.cdn._message._messages import CacheOutcome, Request, Response
from commercekit.cdn._message._stored import StoredResponse
from commercekit.cdn._policy._freshness import age_header_value
from commercekit.cdn._typing import BodyWriter, CacheStore
from commercekit.errors import InvalidStateError, OriginError, UnavailableError

from ._stream import pump
from ._tee import Tee, TeeReader

__all__ = ["Flight", "Streams", "cache_status"]


@attrs.frozen(slots=True)
class Flight:
    """What one origin fetch brought back, shared by every waiter."""

    request: Request
    response: Response
    stored: StoredResponse | None
    """What was stored; for a body still streaming (``tee``), what will be stored."""
    outcome: CacheOutcome
    tee: Tee | None = None
    """The body, while it streams in, for every reader of this fetch."""
    reader: TeeReader | None = None
    """The reader of the request that started the fetch, attached before any byte came."""
    kept: bool = True
    """Whether ``stored`` was (or, for a streaming body, is being) written to the store."""

    def read_along(self, request: Request, now: float, name: str) -> Response | None:
        """Return *request*'s response reading the body as it arrives; None if too late to join."""
        tee = self.tee
        reader = self.reader if self.request is request else None
        if reader is None and tee is not None:
            reader = tee.reader()
        if tee is None or reader is None:
            return None
        headers = self.response.headers
        stored = self.stored
        if stored is not None:
            headers = stored.headers.extended(
                ("age", age_header_value(stored.age(now))),
                (
                    "cache-status",
                    cache_status(name, self.outcome, stored.fresh_until - now, stored=self.kept),
                ),
            )
        stream = BodyStream(reader, length=tee.length, close=reader.aclose)
        return Response(self.response.status, headers, b"", self.outcome, stream)


def cache_status(name: str, outcome: CacheOutcome, ttl: float, *, stored: bool = True) -> str:
    """Return the ``Cache-Status`` (RFC 9211) of a response the edge *name* served.

    ``stored`` is said only of a response this fetch put in the store.
    """
    if outcome is CacheOutcome.HIT:
        return f"{name}; hit; ttl={int(ttl)}"
    if outcome is CacheOutcome.STALE_WHILE_REVALIDATE or outcome is CacheOutcome.STALE_IF_ERROR:
        return f"{name}; hit; ttl={int(ttl)}; detail={outcome.value}"
    tail = "; stored" if stored else ""
    if outcome is CacheOutcome.REVALIDATED:
        return f"{name}; fwd=stale; fwd-status=304{tail}"
    return f"{name}; fwd=uri-miss{tail}"


class Streams:
    """The bodies one edge is streaming in, by flight key, and the tasks that pump them."""

    __slots__ = ("_by_key", "_tasks")

    def __init__(self) -> None:
        self._by_key: dict[str, Flight] = {}
        self._tasks: set[asyncio.Task[None]] = set()

    def get(self, key: str) -> Flight | None:
        """Return the flight whose body is still arriving for *key*, if any."""
        return self._by_key.get(key)

    def forget(self, which: Callable[[str], bool] | None = None) -> None:
        """Detach the streams whose key *which* picks (all by default), after a purge.

        New requests for them start a new fetch.
        """
        if which is None:
            self._by_key.clear()
            return
        for key in [k for k in self._by_key if which(k)]:
            del self._by_key[key]

    def tasks(self) -> list[asyncio.Task[None]]:
        """The pumps still running."""
        return list(self._tasks)

    def start(
        self,
        key: str,
        request: Request,
        response: Response,
        stored: StoredResponse | None,
        *,
        store: CacheStore,
        background: bool,
        window_bytes: int,
        idle_timeout_s: float | None,
        current: Callable[[], bool],
        on_store_error: Callable[[], None],
    ) -> Flight:
        """Start pumping *response*'s stream into a tee (and *store*); return its flight at once.

        *current* says, when the body is complete, whether it may still be
        stored (no purge since the fetch began).
        """
        source = response.stream
        if source is None:
            raise InvalidStateError("a streamed fetch needs a response with a stream")
        writer: BodyWriter | None = None
        if stored is not None:
            try:
                writer = store.open_write(stored, length=source.length)
            except UnavailableError:
                on_store_error()
        tee = Tee(length=source.length, retain=writer is not None, window_bytes=window_bytes)
        reader = None if background else tee.reader()
        bare = attrs.evolve(response, stream=None)
        flight = Flight(request, bare, stored, CacheOutcome.MISS, tee, reader, writer is not None)
        if writer is None and background:
            tee.fail(OriginError("a background refresh does not keep a body it cannot store"))
            self._run(None, flight, source.aclose())
            return flight

        async def commit(writer: BodyWriter, body: bytes) -> None:
            try:
                if not current() or stored is None:
                    await writer.abort()  # purged while it streamed: it may predate the purge
                else:
                    await writer.commit(attrs.evolve(stored, body=body))
            except UnavailableError:
                on_store_error()

        work = pump(
            source,
            tee,
            writer,
            idle_timeout_s=idle_timeout_s,
            on_store_error=on_store_error,
            commit=commit,
        )
        self._run(key, flight, work)
        return flight

    def _run(self, key: str | None, flight: Flight, work: Coroutine[Any, Any, None]) -> None:
        task = asyncio.ensure_future(work)
        if key is not None:
            self._by_key[key] = flight
        self._tasks.add(task)
        task.add_done_callback(lambda t: self._done(key, flight, t))

    def _done(self, key: str | None, flight: Flight, task: asyncio.Task[None]) -> None:
        self._tasks.discard(task)
        if key is not None and self._by_key.get(key) is flight:
            del self._by_key[key]
