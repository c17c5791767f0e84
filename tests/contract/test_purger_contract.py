"""The contract every Purger keeps: the edge itself (memory and Redis), a network, and the CDN APIs.

``EdgeCache`` over a ``MemoryStore`` and over a ``RedisStore`` (real Redis),
``EdgeNetwork``, and ``FastlyPurger``, ``CloudflarePurger`` and
``CloudFrontPurger`` against one loopback server that imitates their APIs
(paths, auth, per-request limits, answers). The tests are the same: every
purge kind, soft and hard, is either done (visible: not served fresh again,
or received by the API) or refused up front with ``InvalidInputError``
before anything is sent; a purge repeated is harmless; many values are
batched within the API's limits.

The fault cases run over the remote purgers: 5xx and 429 are
``PurgeUnavailableError``, 4xx ``PurgeRejectedError``, an answer that is not
what the API sends ``PurgeUnavailableError``, a connection closed, an API
that trickles its answer past the deadline ``PurgeUnavailableError`` within the
purger's deadline; the token never shows in a message or the repr; and a
purge that timed out or was cancelled leaves the connection pool clean, so
the next purge gets its own answer (not the rest of the one given up on).
"""

from __future__ import annotations

import asyncio
import json
import re
import threading
import time
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator, Sequence
from contextlib import asynccontextmanager
from urllib.parse import unquote, urlsplit
from xml.sax.saxutils import unescape

import attrs
import pytest

from commercekit.cdn import (
    AwsCredentials,
    CacheOutcome,
    CloudflarePurger,
    CloudFrontPurger,
    EdgeCache,
    EdgeNetwork,
    FastlyPurger,
    Headers,
    ManualClock,
    MemoryStore,
    MockOrigin,
    PurgeKind,
    Purger,
    PurgeResult,
    PurgeSelector,
    RedisStore,
    Request,
    Response,
)
from commercekit.errors import (
    CommerceKitError,
    InvalidInputError,
    PurgeRejectedError,
    PurgeUnavailableError,
)
from tests.cdn._loopback import QuietHandler, Served
from tests.conftest import need_redis

TOKEN = "s3cret-T0ken"
URLS = [f"https://shop.test/img/{i}.png" for i in range(70)]
TAGS = [f"product-{i}" for i in range(300)]
PREFIX = "https://shop.test/img/"
DEADLINE_S = 1.0
BOUND_S = 3.0
"""How long a fault may take to surface, on a loaded machine, when the deadline is 1 s."""
KINDS = {
    "url": PurgeSelector.urls(URLS[1]),
    "tag": PurgeSelector.tags("product-1"),
    "prefix": PurgeSelector.prefixes(PREFIX),
    "all": PurgeSelector.everything(),
}


# --- a loopback server imitating the three purge APIs ---------------------------------------


class FakeApis(Served):
    """Fastly, Cloudflare and CloudFront purge endpoints on one loopback port.

    Each purged value is recorded in :attr:`terms` as ``(field, value, soft)``
    in the API's own terms. :attr:`modes` lists faults for the next requests
    (``"500"``, ``"429"``, ``"403"``, ``"garbage"``, ``"close"``,
    ``"late"``: answered once :attr:`release` is set, ``"trickle"``: a byte at a
    time); then requests are answered normally. Every
    answer's id is ``id-<n>``, *n* the number of the request it answers.
    """

    def __init__(self) -> None:
        self.terms: list[tuple[str, str, bool]] = []
        self.modes: list[str] = []
        self.requests = 0
        self.received = threading.Event()
        self.release = threading.Event()
        """Lets a ``"late"`` answer go (after its purge gave up)."""
        self.stopped = threading.Event()
        self._lock = threading.Lock()
        outer = self

        class Handler(QuietHandler):
            def do_POST(self) -> None:
                outer._handle(self)

            do_GET = do_POST

        self._serve(Handler)

    def __exit__(self, *exc: object) -> None:
        self.stopped.set()
        self.release.set()
        super().__exit__(*exc)  # type: ignore[arg-type]

    def _handle(self, h: QuietHandler) -> None:
        body = h.rfile.read(int(h.headers.get("content-length") or 0))
        with self._lock:
            self.requests += 1
            seq = self.requests
            mode = self.modes.pop(0) if self.modes else "ok"
        self.received.set()
        if mode == "close":
            h.close_connection = True
            return
        if mode == "late":
            self.release.wait(10)
            self.release.clear()
        if mode in ("500", "429", "403"):
            self._send(h, int(mode), b'{"success": false, "errors": [{"code": 1}]}')
            return
        if mode == "garbage":
            self._send(h, 200, b"<html>502 Bad Gateway</html>", "text/html")
            return
        status, payload, kind = self._answer(h, body, seq)
        if mode == "trickle":  # 100 bytes more of JSON whitespace, one every 50 ms: 5 s at least
            payload += b" " * 100
            h.send_response(status)
            h.send_header("content-length", str(len(payload)))
            h.end_headers()
            for byte in payload:
                if self.stopped.wait(0.05):
                    return
                try:
                    h.wfile.write(bytes([byte]))
                    h.wfile.flush()
                except OSError:
                    return
            return
        self._send(h, status, payload, kind)

    def _send(self, h: QuietHandler, status: int, payload: bytes, kind: str = "") -> None:
        try:
            h.send_response(status)
            h.send_header("content-type", kind or "application/json")
            h.send_header("content-length", str(len(payload)))
            h.end_headers()
            h.wfile.write(payload)
        except OSError:  # the client gave up (a timed-out or cancelled purge)
            h.close_connection = True

    def _answer(self, h: QuietHandler, body: bytes, seq: int) -> tuple[int, bytes, str]:
        path = h.path
        ident = f"id-{seq}"
        soft = h.headers.get("fastly-soft-purge") == "1"
        if path.startswith(("/purge/", "/service/")):
            if h.headers.get("fastly-key") != TOKEN:
                return 401, b'{"msg": "Provided credentials are missing or invalid"}', ""
            if path.startswith("/purge/"):
                self.terms.append(("url", unquote(path[len("/purge/") :]), soft))
                return 200, json.dumps({"status": "ok", "id": ident}).encode(), ""
            if path == "/service/svc1/purge_all":
                self.terms.append(("all", "*", False))
                return 200, b'{"status": "ok"}', ""
            keys = json.loads(body)["surrogate_keys"]
            if len(keys) > 256:
                return 400, b'{"msg": "too many keys"}', ""
            self.terms.extend(("tag", k, soft) for k in keys)
            return 200, json.dumps(dict.fromkeys(keys, ident)).encode(), ""
        if path.startswith("/zones/"):
            if h.headers.get("authorization") != f"Bearer {TOKEN}":
                return 403, b'{"success": false, "errors": [{"code": 10000}]}', ""
            sent = json.loads(body)
            if sent.get("purge_everything"):
                self.terms.append(("all", "*", False))
            for field in ("files", "tags", "prefixes"):
                if len(sent.get(field, ())) > 30:
                    return 400, b'{"success": false, "errors": [{"code": 1201}]}', ""
                self.terms.extend((field, v, False) for v in sent.get(field, ()))
            return 200, json.dumps({"success": True, "result": {"id": ident}}).encode(), ""
        if path.startswith("/2020-05-31/distribution/E1/invalidation"):
            auth = h.headers.get("authorization") or ""
            if not auth.startswith("AWS4-HMAC-SHA256 Credential=AKID/"):
                return 403, b"<ErrorResponse><Code>AccessDenied</Code></ErrorResponse>", "text/xml"
            paths = [unescape(p) for p in re.findall(r"<Path>([^<]*)</Path>", body.decode())]
            if len(paths) > 3000:
                return 400, b"<ErrorResponse><Code>BatchTooLarge</Code></ErrorResponse>", ""
            self.terms.extend(("path", p, False) for p in paths)
            xml = f"<Invalidation><Id>{ident}</Id><Status>Completed</Status></Invalidation>"
            return 201, xml.encode(), "text/xml"
        return 404, b"{}", ""


# --- the subjects -------------------------------------------------------------------------


@attrs.frozen
class Subject:
    """One purger, what it can do, and how to see what it purged."""

    purger: Purger
    kinds: frozenset[PurgeKind]
    soft_kinds: frozenset[PurgeKind]
    prime: Callable[[Sequence[str]], Awaitable[None]]
    """Store these URLs, which ``gone`` then looks at (in-process); nothing for a remote API."""
    gone: Callable[[PurgeSelector, bool], Awaitable[bool]]
    """Whether what the selector picks was purged (softly if asked)."""
    api: FakeApis | None = None


ALL_KINDS = frozenset(PurgeKind)


def _origin() -> MockOrigin:
    def answer(request: Request) -> Response:
        number = int(request.url.rsplit("/", 1)[1].split(".")[0])
        headers = {"cache-control": "max-age=600", "etag": '"1"', "cache-tag": f"product-{number}"}
        return Response(200, Headers(headers), b"img")

    return MockOrigin(answer)


def _in_process(edge: EdgeCache | EdgeNetwork) -> Subject:
    primed: list[str] = []

    async def prime(urls: Sequence[str]) -> None:
        primed[:] = urls
        for url in urls:
            await edge.get(url)

    def picked(selector: PurgeSelector) -> list[str]:
        return [u for u in primed if selector.matches(u, frozenset({f"product-{URLS.index(u)}"}))]

    async def gone(selector: PurgeSelector, soft: bool) -> bool:
        urls = picked(selector)
        others = [u for u in primed if u not in urls]
        served = [(await edge.get(u)).outcome for u in urls + others[:3]]
        fresh = [o is CacheOutcome.HIT for o in served]
        return not any(fresh[: len(urls)]) and all(fresh[len(urls) :])

    return Subject(edge, ALL_KINDS, ALL_KINDS, prime, gone)


@asynccontextmanager
async def _memory() -> AsyncIterator[Subject]:
    clock = ManualClock()
    edge = EdgeCache(_origin(), MemoryStore(10_000_000, clock=clock), clock=clock)
    yield _in_process(edge)
    await edge.aclose()


@asynccontextmanager
async def _redis() -> AsyncIterator[Subject]:
    from redis.asyncio import Redis

    client = Redis.from_url("redis://127.0.0.1:6379/15")
    namespace = f"test:{uuid.uuid4().hex}"
    clock = ManualClock()
    store = RedisStore(client, namespace=namespace, clock=clock, timeout_s=10.0)
    edge = EdgeCache(_origin(), store, clock=clock)
    try:
        yield _in_process(edge)
    finally:
        keys = [k async for k in client.scan_iter(match=f"{namespace}:*")]
        if keys:
            await client.delete(*keys)
        await edge.aclose()


@asynccontextmanager
async def _network() -> AsyncIterator[Subject]:
    clock = ManualClock()
    origin = _origin()
    edges = [
        EdgeCache(origin, MemoryStore(10_000_000, clock=clock), clock=clock, name=f"edge{i}")
        for i in range(3)
    ]
    network = EdgeNetwork(edges)
    yield _in_process(network)
    await network.aclose()


def _remote(
    api: FakeApis,
    purger: Purger,
    kinds: set[PurgeKind],
    soft_kinds: set[PurgeKind],
    terms: Callable[[PurgeSelector], list[tuple[str, str]]],
) -> Subject:
    async def prime(urls: Sequence[str]) -> None:
        pass

    async def gone(selector: PurgeSelector, soft: bool) -> bool:
        return all((field, value, soft) in api.terms for field, value in terms(selector))

    return Subject(purger, frozenset(kinds), frozenset(soft_kinds), prime, gone, api)


def _path(url: str) -> str:
    return urlsplit(url).path


def _fastly_terms(selector: PurgeSelector) -> list[tuple[str, str]]:
    if selector.kind is PurgeKind.ALL:
        return [("all", "*")]
    if selector.kind is PurgeKind.URL:
        return [("url", v.split("://", 1)[1]) for v in selector.values]
    return [("tag", v) for v in selector.values]


def _cloudflare_terms(selector: PurgeSelector) -> list[tuple[str, str]]:
    if selector.kind is PurgeKind.ALL:
        return [("all", "*")]
    if selector.kind is PurgeKind.PREFIX:
        return [("prefixes", v.split("://", 1)[1]) for v in selector.values]
    field = {PurgeKind.URL: "files", PurgeKind.TAG: "tags"}[selector.kind]
    return [(field, v) for v in selector.values]


def _cloudfront_terms(selector: PurgeSelector) -> list[tuple[str, str]]:
    if selector.kind is PurgeKind.ALL:
        return [("path", "/*")]
    star = "*" if selector.kind is PurgeKind.PREFIX else ""
    return [("path", _path(v) + star) for v in selector.values]


@asynccontextmanager
async def _fastly(timeout_s: float = 5.0) -> AsyncIterator[Subject]:
    with FakeApis() as api:
        purger = FastlyPurger("svc1", TOKEN, base_url=api.url, timeout_s=timeout_s)
        url, tag, everything = PurgeKind.URL, PurgeKind.TAG, PurgeKind.ALL
        yield _remote(api, purger, {url, tag, everything}, {url, tag}, _fastly_terms)
        await purger.aclose()


@asynccontextmanager
async def _cloudflare(timeout_s: float = 5.0) -> AsyncIterator[Subject]:
    with FakeApis() as api:
        purger = CloudflarePurger("zone9", TOKEN, base_url=api.url, timeout_s=timeout_s)
        yield _remote(api, purger, set(PurgeKind), set(), _cloudflare_terms)
        await purger.aclose()


@asynccontextmanager
async def _cloudfront(timeout_s: float = 5.0) -> AsyncIterator[Subject]:
    with FakeApis() as api:
        credentials = AwsCredentials("AKID", TOKEN)
        purger = CloudFrontPurger("E1", credentials, base_url=api.url, timeout_s=timeout_s)
        kinds = {PurgeKind.URL, PurgeKind.PREFIX, PurgeKind.ALL}
        yield _remote(api, purger, kinds, set(), _cloudfront_terms)
        await purger.aclose()


REMOTE = {"fastly": _fastly, "cloudflare": _cloudflare, "cloudfront": _cloudfront}
FACTORIES: dict[str, Callable[..., object]] = {
    "memory": _memory,
    "redis": _redis,
    "network": _network,
    **REMOTE,
}


@pytest.fixture(params=list(FACTORIES))
def factory(request: pytest.FixtureRequest) -> Callable[..., object]:
    if request.param == "redis":
        need_redis()
    return FACTORIES[request.param]


@pytest.fixture(params=list(REMOTE))
def remote(request: pytest.FixtureRequest) -> Callable[..., object]:
    return REMOTE[request.param]


def check(
    factory: Callable[..., object], body: Callable[[Subject], Awaitable[None]], **kw: object
) -> None:
    async def main() -> None:
        async with factory(**kw) as subject:  # type: ignore[operator]
            await body(subject)

    asyncio.run(main())


# --- what every purger does ---------------------------------------------------------------


def test_every_kind_soft_or_hard_is_done_or_refused_before_anything_is_sent(
    factory: Callable[..., object],
) -> None:
    async def body(subject: Subject) -> None:
        for selector in KINDS.values():
            for soft in (False, True):
                await subject.prime(URLS[:6])
                sent = subject.api.requests if subject.api else 0
                allowed = subject.soft_kinds if soft else subject.kinds
                if selector.kind not in allowed:
                    with pytest.raises(InvalidInputError):
                        await subject.purger.purge(selector, soft=soft)
                    assert (subject.api.requests if subject.api else 0) == sent
                    continue
                result = await subject.purger.purge(selector, soft=soft)
                assert isinstance(result, PurgeResult)
                assert await subject.gone(selector, soft), (selector, soft)

    check(factory, body)


def test_a_purge_repeated_is_harmless(factory: Callable[..., object]) -> None:
    async def body(subject: Subject) -> None:
        await subject.prime(URLS[:6])
        selector = PurgeSelector.urls(URLS[2], URLS[3])
        first = await subject.purger.purge(selector)
        again = await subject.purger.purge(selector)
        assert isinstance(first, PurgeResult)
        assert isinstance(again, PurgeResult)
        assert await subject.gone(selector, False)

    check(factory, body)


def test_many_values_are_batched_within_the_api_limits(factory: Callable[..., object]) -> None:
    async def body(subject: Subject) -> None:
        await subject.prime(URLS[::10])  # the in-process purgers have no batches to check
        selectors = [PurgeSelector.urls(*URLS)]
        if PurgeKind.TAG in subject.kinds:
            selectors.append(PurgeSelector.tags(*TAGS))
        for selector in selectors:
            await subject.purger.purge(selector)
            assert await subject.gone(selector, False)

    check(factory, body)


# --- remote APIs: faults, redaction, a clean pool -----------------------------------------


async def _raises(kind: type[CommerceKitError], call: Awaitable[object]) -> CommerceKitError:
    started = time.perf_counter()
    with pytest.raises(kind) as caught:
        await call
    assert time.perf_counter() - started < BOUND_S
    assert TOKEN not in str(caught.value) + repr(caught.value)
    return caught.value


@pytest.mark.parametrize(
    ("fault", "error"),
    [
        ("500", PurgeUnavailableError),
        ("429", PurgeUnavailableError),
        ("403", PurgeRejectedError),
        ("garbage", PurgeUnavailableError),
        ("close", PurgeUnavailableError),
        ("trickle", PurgeUnavailableError),  # within httpx's per-read timeout, over ours
    ],
)
def test_a_failed_purge_is_a_typed_error_within_the_deadline(
    remote: Callable[..., object], fault: str, error: type[CommerceKitError]
) -> None:
    async def body(subject: Subject) -> None:
        assert subject.api is not None
        subject.api.modes.append(fault)
        await _raises(error, subject.purger.purge(PurgeSelector.urls(URLS[0])))
        assert TOKEN not in repr(subject.purger)
        # the next purge gets its own answer, not the rest of a trickle it gave up on
        result = await subject.purger.purge(PurgeSelector.urls(URLS[1]))
        assert result.ids == (f"id-{subject.api.requests}",)
        assert await subject.gone(PurgeSelector.urls(URLS[1]), False)

    # Only the fault that needs the deadline gets a short one: a loaded machine may take
    # longer than that to answer the others, and a late fault would then hit the next purge.
    check(remote, body, timeout_s=DEADLINE_S if fault == "trickle" else 5.0)


def test_a_cancelled_purge_leaves_the_pool_clean(remote: Callable[..., object]) -> None:
    """The late answer to a purge given up on must never be read as the next purge's answer.

    (A purge that timed out mid-answer: the ``trickle`` case above.)
    """

    async def body(subject: Subject) -> None:
        api = subject.api
        assert api is not None
        api.modes.append("late")
        api.received.clear()
        task = asyncio.create_task(subject.purger.purge(PurgeSelector.urls(URLS[2])))
        while not api.received.is_set():
            await asyncio.sleep(0.01)
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
        api.release.set()  # the late answer goes out on the connection the purge gave up
        for url in URLS[3:6]:
            result = await subject.purger.purge(PurgeSelector.urls(url))
            assert result.ids == (f"id-{api.requests}",)

    check(remote, body, timeout_s=5.0)


@pytest.fixture
def api() -> Iterator[FakeApis]:
    with FakeApis() as served:
        yield served


def test_a_wrong_token_is_rejected_and_never_shown(api: FakeApis) -> None:
    async def main() -> None:
        for purger in (
            FastlyPurger("svc1", "wr0ng-" + TOKEN, base_url=api.url),
            CloudflarePurger("zone9", "wr0ng-" + TOKEN, base_url=api.url),
        ):
            await _raises(PurgeRejectedError, purger.purge(PurgeSelector.urls(URLS[0])))
            assert TOKEN not in repr(purger)
            await purger.aclose()

    asyncio.run(main())
