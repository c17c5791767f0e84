"""``EdgeCache``: a shared HTTP cache (RFC 9111, RFC 5861, RFC 9213) in front of one origin.

The decisions are the pure functions of ``_policy`` and ``_conditional``;
this module does the I/O around them: it looks up the store, asks the origin
through a :class:`Coalescer` (one request per key however many callers),
stores what may be stored, refreshes in the background for
``stale-while-revalidate`` (one refresh per key), and serves stale copies when
the origin fails within ``stale-if-error``.

A purge is visible to the very next request: it detaches the fetches in
flight for what it purged (new requests start a new fetch) and forbids them to
store what they bring back, since it may predate the purge. An unsafe request
(``POST``, ``PUT``, ``DELETE``...) that succeeds invalidates only the URLs RFC
9111 4.4 names: its target, and ``Location`` / ``Content-Location`` on the same
origin. Fetches of other URLs are left alone (``_generations``).
"""

# Longer than 400 lines because EdgeCache's request path (look up, serve, coalesce, fetch,
# revalidate, stream, store, purge) is one state machine over the edge's store, flights and
# generations; the pure RFC 9111 rules it applies live in _policy/, flights and streamed
# fills in _flight.py and _stream.py.

from __future__ import annotations

import asyncio
import functools
import time
from collections import OrderedDict
from collections.abc import Callable
from typing import Any

import attrs

from commercekit.cdn._message._body import CHUNK_BYTES
from commercekit.cdn._message._headers import Headers, without_hop_by_hop
from commercekit.cdn._message._messages import CacheOutcome, Request, Response
from commercekit.cdn._message._stored import StoredResponse
from commercekit.cdn._policy._cache_control import EMPTY, parse_cache_control
from commercekit.cdn._policy._conditional import apply_range, not_modified_for
from commercekit.cdn._policy._decision import (
    DEFAULT_POLICY,
    Action,
    CachePolicy,
    decide,
    invalidation_urls,
    merge_not_modified,
    select_variant,
    shareable,
    store_decision,
    usable_on_error,
)
from commercekit.cdn._policy._freshness import age_header_value
from commercekit.cdn._policy._keys import check_url, normalize_url, url_key
from commercekit.cdn._policy._vary import variant_of, vary_names
from commercekit.cdn._purge._selector import PurgeKind, PurgeResult, PurgeSelector
from commercekit.cdn._stores._memory import MemoryStore
from commercekit.cdn._typing import CacheStore, Origin
from commercekit.errors import ConfigurationError, OriginError, UnavailableError
from commercekit.metrics import Counter, Metrics, NullMetrics
from commercekit.typing import WallClock

from ._coalesce import Coalescer
from ._flight import Flight, Streams, cache_status
from ._generations import Generations
from ._instruments import EdgeInstruments
from ._origin_call import call_origin, dated, origin_request
from ._stream import finish_stream, serve_stored_body

__all__ = ["EdgeCache", "HitHooks"]

_DEFAULT_STORE_BYTES = 64 * 1024 * 1024
_WINDOW_BYTES = 4 * CHUNK_BYTES
_VARY_HINTS = 10_000


@attrs.frozen
class HitHooks:
    """An edge's key function, clock and hit counters (see :meth:`EdgeCache.hit_hooks`)."""

    key: Callable[[Request], str]
    clock: WallClock
    hits: Counter
    served_bytes: Counter


class EdgeCache:
    """A shared cache in front of *origin*, keeping responses in *store*.

    Use it from one event loop. ``await edge.handle(request)`` returns the
    response to send; ``await edge.purge(selector, soft=...)`` purges. The
    default store is a :class:`MemoryStore` of 64 MiB. *origin_timeout_s*
    bounds each origin request (then :class:`OriginError`, and stale copies
    within ``stale-if-error``) and each wait for a chunk of a streaming body.
    Large bodies stream to every waiter and into the store at once (``_tee``);
    *window_bytes* bounds a body that is not stored. ``aclose()`` stops
    refreshes and streams, then closes the origin and the store.
    *max_vary_hints* bounds the URLs whose ``Vary`` names are remembered to
    coalesce fetches per variant (least recently learnt forgotten first).
    """

    def __init__(
        self,
        origin: Origin,
        store: CacheStore | None = None,
        *,
        policy: CachePolicy = DEFAULT_POLICY,
        clock: WallClock = time.time,
        metrics: Metrics | None = None,
        name: str = "edge",
        key: Callable[[Request], str] = url_key,
        origin_timeout_s: float | None = 30.0,
        window_bytes: int = _WINDOW_BYTES,
        max_vary_hints: int = _VARY_HINTS,
    ) -> None:
        if max_vary_hints < 0:
            raise ConfigurationError(f"max_vary_hints must be 0 or more, got {max_vary_hints!r}")
        self._origin = origin
        self._store: CacheStore = (
            store if store is not None else MemoryStore(_DEFAULT_STORE_BYTES, clock=clock)
        )
        self._policy = policy
        self._clock = clock
        self._key = key
        self._name = name
        self._timeout = origin_timeout_s
        self._m = EdgeInstruments(metrics if metrics is not None else NullMetrics(), name)
        self._flights: Coalescer[Flight] = Coalescer(on_wait=self._m.coalesced.inc)
        self._vary_hints: OrderedDict[str, tuple[str, ...]] = OrderedDict()
        self._max_vary_hints = max_vary_hints
        self._background: set[asyncio.Future[Flight]] = set()
        self._streams = Streams()
        self._window = window_bytes
        self._gens = Generations()

    @property
    def name(self) -> str:
        """The edge's name (its ``edge`` metrics tag and ``Cache-Status`` name)."""
        return self._name

    @property
    def store(self) -> CacheStore:
        """Where this edge keeps responses."""
        return self._store

    def hit_hooks(self) -> HitHooks:
        """What a server's fast path for fresh hits must share with this edge.

        Its key function, its clock and its hit counters, so that a hit answered
        without :meth:`handle` is keyed, aged and counted exactly as :meth:`handle`
        would have done it.
        """
        return HitHooks(self._key, self._clock, self._m.hits, self._m.served_bytes)

    async def get(self, url: str, headers: Headers | dict[str, str] | None = None) -> Response:
        """Shorthand for ``handle(Request("GET", url, headers))``."""
        return await self.handle(Request("GET", url, Headers(headers or ())))

    async def handle(self, request: Request) -> Response:
        """Return the response for *request*, from the store or the origin.

        A URL with a control character or a space is refused with
        :class:`InvalidInputError` (a 400 at the proxy).
        """
        check_url(request.url)
        method = request.method.upper()
        if method not in ("GET", "HEAD"):
            return await self._unsafe(request)
        req_cc = (
            parse_cache_control(request.headers.joined("cache-control"))
            if "cache-control" in request.headers
            else EMPTY
        )
        if req_cc.no_store or "authorization" in request.headers:
            # Not ours to share; store_decision would refuse most of these anyway.
            return await self._pass(request)
        key = self._key(request)
        try:
            entries = await self._store.get(key)
        except UnavailableError:
            self._m.store_errors.inc()  # a broken shared tier degrades to the origin
            entries = ()
        entry = select_variant(entries, request) if entries else None
        if entry is not None:
            now = self._clock()
            action = decide(entry, now, req_cc, self._policy)
            if action is Action.SERVE:
                self._m.hits.inc()
                return self._serve(request, entry, now, CacheOutcome.HIT)
            if action is Action.SERVE_STALE_AND_REFRESH:
                self._refresh(key, request, entry)
                self._m.stale_while_revalidate.inc()
                return self._serve(request, entry, now, CacheOutcome.STALE_WHILE_REVALIDATE)
        if req_cc.only_if_cached:
            return Response(504, Headers({"content-length": "0"}), b"", CacheOutcome.MISS)
        if entry is None:
            self._m.misses.inc()
        return await self._fetch(key, request, entry)

    async def purge(self, selector: PurgeSelector, /, *, soft: bool = False) -> PurgeResult:
        """Purge what *selector* picks (URLs and prefixes are normalized like keys).

        Visible to the next request: fetches in flight are detached and will not store.
        """
        if selector.kind in (PurgeKind.URL, PurgeKind.PREFIX):
            normalize = (
                (lambda u: self._key(Request("GET", u)))
                if selector.kind is PurgeKind.URL
                else normalize_url
            )
            selector = PurgeSelector(selector.kind, tuple(normalize(v) for v in selector.values))
        self._gens.record(selector)
        which = _flight_keys(selector)
        self._flights.forget(which)
        self._streams.forget(which)
        self._forget_hints(selector)
        count = await self._store.purge(selector, soft=soft, now=self._clock())
        self._m.purges[(selector.kind, soft)].inc()
        return PurgeResult(purged=count)

    async def aclose(self) -> None:
        """Cancel background refreshes, then close the origin and the store."""
        tasks: list[asyncio.Future[Any]] = [*self._background, *self._streams.tasks()]
        for task in tasks:
            task.cancel()
        if tasks:
            await asyncio.gather(*tasks, return_exceptions=True)
        await self._origin.aclose()
        await self._store.aclose()

    async def __aenter__(self) -> EdgeCache:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.aclose()

    def __repr__(self) -> str:
        return f"EdgeCache(name={self._name!r}, origin={self._origin!r}, store={self._store!r})"

    # -- serving ------------------------------------------------------------------------

    def _serve(
        self,
        request: Request,
        entry: StoredResponse,
        now: float,
        outcome: CacheOutcome,
        *,
        stored: bool = True,
    ) -> Response:
        status = cache_status(self._name, outcome, entry.fresh_until - now, stored=stored)
        headers = entry.headers.extended(
            ("age", age_header_value(entry.age(now))), ("cache-status", status)
        )
        response = Response(entry.status, headers, entry.body, outcome)
        if entry.stored_body is not None:  # streamed from the store as the client reads
            return serve_stored_body(request, response, entry.stored_body, self._m.served_bytes)
        return self._finish(request, response)

    def _finish(self, request: Request, response: Response) -> Response:
        not_modified = not_modified_for(request, response)
        if not_modified is not None:
            return not_modified
        response = apply_range(request, response)
        if request.method.upper() == "HEAD":
            return attrs.evolve(response, body=b"")
        stream = response.stream
        self._m.served_bytes.inc(len(response.body) if stream is None else stream.length or 0)
        return response

    # -- fetching -----------------------------------------------------------------------

    def _flight_key(self, key: str, request: Request) -> str:
        names = self._vary_hints.get(key)
        if not names:
            return key
        return f"{key}\x00{variant_of(names, request.headers)!r}"

    async def _fetch(self, key: str, request: Request, entry: StoredResponse | None) -> Response:
        for _ in range(2):  # a second round only when the Vary hint was learnt in the first
            flight_key = self._flight_key(key, request)
            try:
                streaming = self._streams.get(flight_key)
                if streaming is not None:
                    self._m.coalesced.inc()  # its body is still arriving: read along
                    flight = streaming
                else:
                    flight = await self._flights.run(
                        flight_key,
                        functools.partial(
                            self._work, key, flight_key, request, entry, self._gens.seq
                        ),
                    )
            except OriginError:
                if entry is not None and usable_on_error(entry, self._clock()):
                    self._m.stale_if_error.inc()
                    return self._serve(request, entry, self._clock(), CacheOutcome.STALE_IF_ERROR)
                raise
            if flight.request is not request:
                if not shareable(flight.response):
                    return await self._pass(request)
                names = vary_names(flight.response.headers)
                if names and variant_of(names, request.headers) != variant_of(
                    names, flight.request.headers
                ):
                    continue  # another variant: fetch ours (now keyed by its Vary values)
            status = flight.response.status
            if status >= 500 and entry is not None and usable_on_error(entry, self._clock()):
                if flight.reader is not None and flight.request is request:
                    flight.reader.close()
                self._m.stale_if_error.inc()
                return self._serve(request, entry, self._clock(), CacheOutcome.STALE_IF_ERROR)
            if flight.tee is not None:
                return await self._read_along(request, flight)
            if flight.stored is not None:
                return self._serve(
                    request, flight.stored, self._clock(), flight.outcome, stored=flight.kept
                )
            return self._finish(request, attrs.evolve(flight.response, outcome=flight.outcome))
        return await self._pass(request)

    async def _read_along(self, request: Request, flight: Flight) -> Response:
        response = flight.read_along(request, self._clock(), self._name)
        if response is None:
            return await self._pass(request)
        return await finish_stream(request, response, self._m.served_bytes)

    def _refresh(self, key: str, request: Request, entry: StoredResponse) -> None:
        flight_key = self._flight_key(key, request)
        if self._flights.in_flight(flight_key):
            return
        task = self._flights.start(
            flight_key,
            lambda: self._work(key, flight_key, request, entry, self._gens.seq, background=True),
        )
        self._background.add(task)
        task.add_done_callback(self._background.discard)

    def _origin_request(self, request: Request, entry: StoredResponse | None) -> Request:
        return origin_request(request, entry)

    async def _call_origin(self, request: Request) -> Response:
        return await call_origin(self._origin, request, self._timeout, self._m)

    async def _work(
        self,
        key: str,
        flight_key: str,
        request: Request,
        entry: StoredResponse | None,
        seq: int,
        *,
        background: bool = False,
    ) -> Flight:
        origin_request = self._origin_request(request, entry)
        request_time = self._clock()
        response = await self._call_origin(origin_request)
        response_time = self._clock()
        response = _hop_stripped(dated(response, response_time))
        if response.status == 304 and entry is not None:
            merged = merge_not_modified(
                entry,
                origin_request,
                response,
                request_time=request_time,
                response_time=response_time,
                policy=self._policy,
            )
            if merged is not None:
                self._m.revalidated.inc()
                kept = await self._keep(merged, seq)
                return Flight(request, response, merged, CacheOutcome.REVALIDATED, kept=kept)
            origin_request = self._origin_request(request, None)
            request_time = self._clock()
            response = await self._call_origin(origin_request)
            response_time = self._clock()
            response = _hop_stripped(dated(response, response_time))
        stored = store_decision(
            key,
            origin_request,
            response,
            request_time=request_time,
            response_time=response_time,
            policy=self._policy,
        )
        if response.stream is not None:
            return self._stream(flight_key, request, response, stored, seq, background=background)
        kept = stored is not None and await self._keep(stored, seq)
        return Flight(request, response, stored, CacheOutcome.MISS, kept=kept)

    def _stream(
        self,
        flight_key: str,
        request: Request,
        response: Response,
        stored: StoredResponse | None,
        seq: int,
        *,
        background: bool,
    ) -> Flight:
        if stored is not None:
            self._learn_vary(stored)
        return self._streams.start(
            flight_key,
            request,
            response,
            stored,
            store=self._store,
            background=background,
            window_bytes=self._window,
            idle_timeout_s=self._timeout,
            current=lambda: stored is not None and self._gens.current(seq, stored.key, stored.tags),
            on_store_error=self._m.store_errors.inc,
        )

    async def _keep(self, stored: StoredResponse, seq: int) -> bool:
        """Store *stored* unless a purge of it came since its fetch began; say if it was."""
        if not self._gens.current(seq, stored.key, stored.tags):
            return False  # purged while this fetch was in flight: its result may predate it
        self._learn_vary(stored)
        try:
            await self._store.put(stored)
        except UnavailableError:
            self._m.store_errors.inc()
            return False
        return True

    def _learn_vary(self, stored: StoredResponse) -> None:
        hints = self._vary_hints
        if stored.vary:
            hints[stored.key] = stored.vary
            hints.move_to_end(stored.key)
            while len(hints) > self._max_vary_hints:
                hints.popitem(last=False)
        elif stored.key in hints:
            del hints[stored.key]

    def _forget_hints(self, selector: PurgeSelector) -> None:
        hints = self._vary_hints
        if selector.kind is PurgeKind.ALL:
            hints.clear()
        elif selector.kind is PurgeKind.URL:
            for key in selector.values:
                hints.pop(key, None)
        elif selector.kind is PurgeKind.PREFIX:
            for key in [k for k in hints if k.startswith(selector.values)]:
                del hints[key]

    async def _pass(self, request: Request) -> Response:
        self._m.passes.inc()
        headers = without_hop_by_hop(request.headers)
        response = await self._call_origin(attrs.evolve(request, headers=headers))
        headers = without_hop_by_hop(response.headers)
        passed = Response(response.status, headers, response.body, CacheOutcome.PASS)
        if response.stream is not None:
            passed = attrs.evolve(passed, stream=response.stream)
            return await finish_stream(request, passed, self._m.served_bytes)
        return self._finish(request, passed)

    async def _unsafe(self, request: Request) -> Response:
        """Send *request* on; on success invalidate what RFC 9111 4.4 names, and only that.

        The origin's answer always reaches the client: a store that fails to
        delete is counted (``store_errors``), never turned into an error.
        """
        response = await self._pass(request)
        urls = invalidation_urls(request, response)
        if urls:
            keys = [self._key(Request("GET", url)) for url in urls]
            self._gens.touch_keys(keys)
            wanted = frozenset(keys)
            which = _in_keys(wanted)
            self._flights.forget(which)
            self._streams.forget(which)
            for key in keys:
                self._vary_hints.pop(key, None)
                try:
                    await self._store.delete(key)
                except UnavailableError:
                    self._m.store_errors.inc()
        return response


def _hop_stripped(response: Response) -> Response:
    return attrs.evolve(response, headers=without_hop_by_hop(response.headers))


def _primary(flight_key: str) -> str:
    return flight_key.partition("\x00")[0]


def _in_keys(keys: frozenset[str]) -> Callable[[str], bool]:
    return lambda flight_key: _primary(flight_key) in keys


def _flight_keys(selector: PurgeSelector) -> Callable[[str], bool] | None:
    """Which fetches in flight a purge detaches (None: all; a tag may be on any response)."""
    if selector.kind is PurgeKind.URL:
        return _in_keys(frozenset(selector.values))
    if selector.kind is PurgeKind.PREFIX:
        prefixes = selector.values
        return lambda flight_key: flight_key.startswith(prefixes)
    return None
