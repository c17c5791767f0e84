"""The contract every Origin keeps: DirectoryOrigin, HttpOrigin (loopback), MockOrigin, AssetOrigin.

Each serves the same three files. The HTTP origin fronts a loopback server
that serves them with the validators and 304s any file server gives; the
mock origin runs ``DirectoryOrigin.fetch`` as its handler (so it must pass
bodies and streams through untouched); the asset origin serves them under
their fingerprinted URLs. The tests are the same: whole and streamed bodies,
``HEAD``, conditional requests, 404 as a response, concurrent calls, and a
stream left half-read or a fetch cancelled that does not break the next one.

The fault cases (a connection closed mid-body, an origin that hangs past
the deadline, 5xx, garbage on the wire, nothing listening, an unsafe request
lost after sending) are about the network, so they run over ``HttpOrigin``
against a raw loopback server; each is a typed error from commercekit.errors
within a bounded time, never a foreign exception or a hang.
"""

from __future__ import annotations

import asyncio
import hashlib
import socket
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from contextlib import asynccontextmanager
from pathlib import Path

import attrs
import pytest

from commercekit.cdn import (
    AssetManifest,
    AssetOrigin,
    DirectoryOrigin,
    Headers,
    HttpOrigin,
    MockOrigin,
    Origin,
    Request,
    Response,
)
from commercekit.errors import (
    CommerceKitError,
    OriginError,
    OriginTimeoutError,
    OutcomeUnknownError,
)
from tests.cdn._loopback import Answer, Close, LoopbackServer, RawOrigin, Seen

SMALL = b"small body\n" * 10
LARGE = bytes(range(256)) * 1200  # 300 KiB: over the 256 KiB stream threshold
FILES = {"small.txt": SMALL, "big.bin": LARGE, "css/site.css": b"body{}"}
HOST = "http://shop.test"
DEADLINE_S = 1.0
BOUND_S = 3.0
"""How long a fault may take to surface, on a loaded machine, when the deadline is 1 s."""


@attrs.frozen
class Subject:
    """One origin serving :data:`FILES`; ``url(name)`` is the URL it serves *name* under."""

    origin: Origin
    url: Callable[[str], str]


def _files(root: Path) -> Path:
    for name, data in FILES.items():
        (root / name).parent.mkdir(parents=True, exist_ok=True)
        (root / name).write_bytes(data)
    return root


def _file_server(root: Path) -> Callable[[Seen], Answer]:
    """A loopback file server's answers: strong ETag, 304 on a match, 404, HEAD."""

    def handler(seen: Seen) -> Answer:
        path = root / seen.path.split("?")[0].lstrip("/")
        if not path.is_file():
            return 404, {"content-type": "text/plain"}, b"not found\n"
        data = path.read_bytes()
        etag = '"' + hashlib.blake2b(data, digest_size=8).hexdigest() + '"'
        headers = {"etag": etag, "cache-control": "max-age=60", "content-type": "text/plain"}
        if seen.headers.get("if-none-match") == etag:
            return 304, headers, b""
        return 200, headers, data

    return handler


@asynccontextmanager
async def _directory(root: Path) -> AsyncIterator[Subject]:
    yield Subject(DirectoryOrigin(root), lambda name: f"{HOST}/{name}")


@asynccontextmanager
async def _http(root: Path) -> AsyncIterator[Subject]:
    with LoopbackServer(_file_server(root)) as server:
        origin = HttpOrigin(server.url, timeout_s=5)
        yield Subject(origin, lambda name: f"{HOST}/{name}")


@asynccontextmanager
async def _mock(root: Path) -> AsyncIterator[Subject]:
    yield Subject(MockOrigin(DirectoryOrigin(root).fetch), lambda name: f"{HOST}/{name}")


@asynccontextmanager
async def _asset(root: Path) -> AsyncIterator[Subject]:
    manifest = AssetManifest.build(root)

    def url(name: str) -> str:
        return HOST + manifest.assets.get(name, f"/assets/{name}")

    yield Subject(AssetOrigin(manifest, root), url)


FACTORIES = {"directory": _directory, "http": _http, "mock": _mock, "asset": _asset}


@pytest.fixture(params=list(FACTORIES))
def factory(request: pytest.FixtureRequest) -> Callable[..., object]:
    return FACTORIES[request.param]


def check(
    factory: Callable[..., object], tmp_path: Path, body: Callable[[Subject], Awaitable[None]]
) -> None:
    async def main() -> None:
        async with factory(_files(tmp_path)) as subject:  # type: ignore[attr-defined]
            try:
                await body(subject)
            finally:
                await subject.origin.aclose()

    asyncio.run(main())


async def _get(subject: Subject, name: str, method: str = "GET", **headers: str) -> Response:
    return await subject.origin.fetch(Request(method, subject.url(name), Headers(headers)))


def test_a_small_body_comes_back_whole_with_validators(
    factory: Callable[..., object], tmp_path: Path
) -> None:
    async def body(subject: Subject) -> None:
        response = await _get(subject, "small.txt")
        assert (response.status, response.body, response.stream) == (200, SMALL, None)
        assert response.headers.get("content-length") == str(len(SMALL))
        assert response.headers.get("etag")
        assert response.headers.get("content-type")
        assert response.headers.get("cache-control")

    check(factory, tmp_path, body)


def test_a_large_body_streams_and_reads_back_exactly(
    factory: Callable[..., object], tmp_path: Path
) -> None:
    async def body(subject: Subject) -> None:
        response = await _get(subject, "big.bin")
        assert response.status == 200
        assert response.stream is not None
        assert response.body == b""
        assert response.stream.length == len(LARGE)
        assert await response.read() == LARGE

    check(factory, tmp_path, body)


def test_head_and_a_matching_conditional_get_send_no_body(
    factory: Callable[..., object], tmp_path: Path
) -> None:
    async def body(subject: Subject) -> None:
        head = await _get(subject, "big.bin", "HEAD")
        assert (head.status, head.body, head.stream) == (200, b"", None)
        assert head.headers.get("content-length") == str(len(LARGE))
        etag = head.headers.get("etag")
        assert etag
        for name in ("small.txt", "big.bin"):
            tag = (await _get(subject, name, "HEAD")).headers.get("etag")
            assert tag
            same = await _get(subject, name, **{"if-none-match": tag})
            assert (same.status, same.body, same.stream) == (304, b"", None)
            assert same.headers.get("etag") == tag
        other = await _get(subject, "small.txt", **{"if-none-match": '"not-it"'})
        assert (other.status, other.body) == (200, SMALL)

    check(factory, tmp_path, body)


def test_a_missing_file_is_a_404_response_not_an_error(
    factory: Callable[..., object], tmp_path: Path
) -> None:
    async def body(subject: Subject) -> None:
        response = await _get(subject, "no/such.png")
        assert response.status == 404
        assert response.stream is None

    check(factory, tmp_path, body)


def test_concurrent_fetches_each_get_their_own_body(
    factory: Callable[..., object], tmp_path: Path
) -> None:
    async def body(subject: Subject) -> None:
        async def one(name: str) -> bytes:
            return await (await _get(subject, name)).read()

        names = ["small.txt", "big.bin", "css/site.css"] * 2
        assert await asyncio.gather(*(one(n) for n in names)) == [FILES[n] for n in names]

    check(factory, tmp_path, body)


def test_a_stream_left_half_read_or_cancelled_does_not_break_the_next_fetch(
    factory: Callable[..., object], tmp_path: Path
) -> None:
    async def body(subject: Subject) -> None:
        # read one chunk, then close
        response = await _get(subject, "big.bin")
        assert response.stream is not None
        chunks = aiter(response.stream)
        assert await anext(chunks)
        await response.aclose()
        assert (await _get(subject, "small.txt")).body == SMALL

        # a reader cancelled mid-body
        started = asyncio.Event()

        async def reader() -> None:
            response = await _get(subject, "big.bin")
            assert response.stream is not None
            async for _ in response.stream:
                started.set()
                await asyncio.sleep(10)

        task = asyncio.create_task(reader())
        await asyncio.wait_for(started.wait(), BOUND_S)
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task

        # a fetch cancelled before it answered
        fetch = asyncio.create_task(_get(subject, "big.bin"))
        await asyncio.sleep(0)
        fetch.cancel()
        try:
            late = await fetch
        except asyncio.CancelledError:
            pass
        else:  # it answered before the cancel landed
            await late.aclose()

        for _ in range(3):
            assert await (await _get(subject, "big.bin")).read() == LARGE
            assert (await _get(subject, "small.txt")).body == SMALL

    check(factory, tmp_path, body)


def test_aclose_is_safe_to_call_twice(factory: Callable[..., object], tmp_path: Path) -> None:
    async def body(subject: Subject) -> None:
        await _get(subject, "small.txt")
        await subject.origin.aclose()
        await subject.origin.aclose()

    check(factory, tmp_path, body)


# --- faults on the wire: HttpOrigin against a raw loopback server ---------------------------


def _head(status: bytes, length: int | None, extra: bytes = b"") -> bytes:
    size = b"" if length is None else b"content-length: %d\r\n" % length
    return b"HTTP/1.1 " + status + b"\r\n" + size + extra + b"\r\n"


def _path(request: bytes) -> bytes:
    return request.split(b" ")[1]


@pytest.fixture
def faulty() -> Iterator[RawOrigin]:
    """A raw origin whose path names the fault; ``/ok`` answers normally."""
    origin: RawOrigin

    def answer(_: int, nth: int, request: bytes) -> bytes | Close | None:
        path = _path(request)
        if path == b"/ok":
            return _head(b"200 OK", 2) + b"ok"
        if path == b"/closes-mid-body":
            return Close(_head(b"200 OK", len(LARGE)) + LARGE[:280_000])
        if path == b"/closes-mid-small-body":
            return Close(_head(b"200 OK", 1000) + b"x" * 10)
        if path == b"/closes-before-answering":
            return None
        if path == b"/hangs":
            origin.stopped.wait(10)
            return None
        if path == b"/hangs-mid-body":
            return Close(_head(b"200 OK", len(LARGE)) + LARGE[:280_000], hang=True)
        if path == b"/503":
            return _head(b"503 Service Unavailable", 4) + b"down"
        if path == b"/garbage-status":
            return Close(b"HTTP/1.1 abc\r\n\r\n")
        if path == b"/not-http":
            return Close(b"hello, this is not HTTP at all\r\n\r\n")
        if path == b"/bad-length":
            return Close(_head(b"200 OK", None, b"content-length: 12, 13\r\n") + b"x" * 12)
        return _head(b"404 Not Found", 0)

    origin = RawOrigin(answer)
    with origin:
        yield origin


def _fault(url: str, body: Callable[[HttpOrigin], Awaitable[None]]) -> None:
    async def main() -> None:
        origin = HttpOrigin(url, timeout_s=DEADLINE_S)
        try:
            await body(origin)
            ok = await origin.fetch(Request("GET", f"{HOST}/ok"))  # the pool still works
            assert (ok.status, ok.body) == (200, b"ok")
        finally:
            await origin.aclose()

    started = time.perf_counter()
    asyncio.run(main())
    assert time.perf_counter() - started < BOUND_S * 2


async def _raises(kind: type[CommerceKitError], call: Awaitable[object]) -> CommerceKitError:
    started = time.perf_counter()
    with pytest.raises(kind) as caught:
        await call
    assert time.perf_counter() - started < BOUND_S
    return caught.value


def test_a_connection_closed_before_the_body_is_whole_is_an_origin_error(
    faulty: RawOrigin,
) -> None:
    async def body(origin: HttpOrigin) -> None:
        for path in ("/closes-mid-small-body", "/closes-before-answering"):
            error = await _raises(OriginError, origin.fetch(Request("GET", HOST + path)))
            assert not isinstance(error, OriginTimeoutError)
            assert error.__cause__ is not None  # the client's error is kept

    _fault(faulty.url, body)


def test_a_connection_closed_mid_stream_breaks_the_stream(faulty: RawOrigin) -> None:
    async def body(origin: HttpOrigin) -> None:
        response = await origin.fetch(Request("GET", f"{HOST}/closes-mid-body"))
        assert response.stream is not None
        await _raises(OriginError, response.read())

    _fault(faulty.url, body)


def test_an_origin_that_hangs_is_a_timeout_within_the_deadline(faulty: RawOrigin) -> None:
    async def mid_body(origin: HttpOrigin) -> None:
        response = await origin.fetch(Request("GET", f"{HOST}/hangs-mid-body"))
        assert response.stream is not None
        await _raises(OriginTimeoutError, response.read())

    async def body(origin: HttpOrigin) -> None:  # both at once: one deadline's wait
        await asyncio.gather(
            _raises(OriginTimeoutError, origin.fetch(Request("GET", f"{HOST}/hangs"))),
            mid_body(origin),
        )

    _fault(faulty.url, body)


def test_a_5xx_is_a_response_not_an_error(faulty: RawOrigin) -> None:
    async def body(origin: HttpOrigin) -> None:
        response = await origin.fetch(Request("GET", f"{HOST}/503"))
        assert (response.status, response.body) == (503, b"down")

    _fault(faulty.url, body)


def test_garbage_on_the_wire_is_an_origin_error(faulty: RawOrigin) -> None:
    async def body(origin: HttpOrigin) -> None:
        for path in ("/garbage-status", "/not-http", "/bad-length"):
            await _raises(OriginError, origin.fetch(Request("GET", HOST + path)))

    _fault(faulty.url, body)


def test_nothing_listening_is_an_origin_error_at_once() -> None:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        dead = s.getsockname()[1]

    async def main() -> None:
        origin = HttpOrigin(f"http://127.0.0.1:{dead}", timeout_s=DEADLINE_S)
        for method in ("GET", "POST"):  # nothing was sent: safe to retry, whatever the method
            error = await _raises(OriginError, origin.fetch(Request(method, f"{HOST}/x")))
            assert not isinstance(error, OriginTimeoutError)
        await origin.aclose()

    asyncio.run(main())


def test_an_unsafe_request_lost_after_sending_is_outcome_unknown(faulty: RawOrigin) -> None:
    async def body(origin: HttpOrigin) -> None:
        post = Request("POST", f"{HOST}/closes-before-answering", Headers(), b"order")
        error = await _raises(OutcomeUnknownError, origin.fetch(post))
        assert not isinstance(error, OriginError)  # OriginError says: safe to retry
        assert "may have" in str(error)
        assert faulty.connections == 1  # the POST was sent once, never again

    _fault(faulty.url, body)


def test_credentials_in_the_origin_url_never_reach_a_message_or_the_repr(
    faulty: RawOrigin,
) -> None:
    url = faulty.url.replace("http://", "http://shop:s3cret-Pa55@")

    async def main() -> None:
        origin = HttpOrigin(url, timeout_s=DEADLINE_S)
        headers = Headers({"authorization": "Bearer s3cret-Pa55"})
        request = Request("GET", f"{HOST}/closes-before-answering", headers)
        error = await _raises(OriginError, origin.fetch(request))
        assert "s3cret" not in str(error) + repr(error) + repr(origin)
        await origin.aclose()

    asyncio.run(main())
