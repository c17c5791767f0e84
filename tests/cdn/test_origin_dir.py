"""``DirectoryOrigin``: small files whole, large ones streamed from one open file, closed always.

Real files in ``tmp_path``; the large file goes through the real edge and its
HTTP/1.1 proxy on loopback, measured with the helpers of ``test_streaming``.
Open descriptors are counted in ``/proc/self/fd``.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import os
import threading
from collections.abc import AsyncIterator, Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

from commercekit.cdn import (
    CacheOutcome,
    DirectoryOrigin,
    EdgeCache,
    MemoryStore,
    OriginError,
    Request,
    Response,
)
from commercekit.cdn._message._body import CHUNK_BYTES, STREAM_THRESHOLD_BYTES
from commercekit.cdn._message._dates import format_http_date

from ._loopback import PATTERN
from .test_streaming import MiB, digest, fetch, peak_while, proxy

LARGE = 20 * MiB
PROC_FD = Path("/proc/self/fd")
needs_proc = pytest.mark.skipif(not PROC_FD.is_dir(), reason="counts descriptors in /proc")


def write_pattern(path: Path, size: int) -> Path:
    """Write *size* bytes of the loopback pattern in 64 KiB writes (never held whole)."""
    full, rest = divmod(size, len(PATTERN))
    with path.open("wb") as f:
        for _ in range(full):
            f.write(PATTERN)
        f.write(PATTERN[:rest])
    return path


def fds_on(path: Path) -> int:
    """How many of this process's descriptors are open on *path* (also once it is replaced)."""
    target = str(path)
    count = 0
    for entry in os.listdir(PROC_FD):
        with contextlib.suppress(OSError):  # the listing's own descriptor is gone by now
            link = os.readlink(PROC_FD / entry)
            count += link == target or link == f"{target} (deleted)"
    return count


async def get(origin: DirectoryOrigin, path: str, **headers: str) -> Response:
    return await origin.fetch(Request("GET", "http://shop.test" + path, headers))


async def first_chunk(response: Response) -> tuple[AsyncIterator[bytes], bytes]:
    assert response.stream is not None
    chunks = aiter(response.stream)
    return chunks, await anext(chunks)


async def drain(chunks: AsyncIterator[bytes]) -> int:
    return sum([len(chunk) async for chunk in chunks])


@pytest.mark.parametrize("size", [0, 1, STREAM_THRESHOLD_BYTES])
def test_a_file_up_to_the_threshold_comes_back_whole(tmp_path: Path, size: int) -> None:
    path = write_pattern(tmp_path / "a.jpg", size)

    async def main() -> None:
        origin = DirectoryOrigin(tmp_path)
        response = await get(origin, "/a.jpg")
        assert response.stream is None
        assert response.body == path.read_bytes()
        assert response.headers.get("content-length") == str(size)
        assert response.headers.get("content-type") == "image/jpeg"
        edge = EdgeCache(origin)
        assert (await edge.get("http://shop.test/a.jpg")).body == path.read_bytes()
        await edge.aclose()

    asyncio.run(main())


@pytest.mark.parametrize("size", [STREAM_THRESHOLD_BYTES + 1, 7 * CHUNK_BYTES + 5])
def test_a_larger_file_streams_in_chunks_with_the_same_headers(tmp_path: Path, size: int) -> None:
    path = write_pattern(tmp_path / "v.mp4", size)
    st = path.stat()

    async def main() -> None:
        response = await get(DirectoryOrigin(tmp_path, cache_control="max-age=9"), "/v.mp4")
        assert response.body == b""
        assert response.stream is not None
        assert response.stream.length == size
        chunks = [chunk async for chunk in response.stream]
        assert max(len(c) for c in chunks) <= CHUNK_BYTES
        assert b"".join(chunks) == path.read_bytes()
        headers = response.headers
        assert headers.get("content-length") == str(size)
        assert headers.get("content-type") == "video/mp4"
        assert headers.get("cache-control") == "max-age=9"
        assert headers.get("accept-ranges") == "bytes"
        assert headers.get("last-modified") == format_http_date(st.st_mtime)
        tag = hashlib.blake2b(f"{size}:{st.st_mtime_ns}".encode(), digest_size=8).hexdigest()
        assert headers.get("etag") == f'"{tag}"'  # as before streaming: stored validators hold

    asyncio.run(main())


def test_the_threshold_can_be_tuned(tmp_path: Path) -> None:
    (tmp_path / "a.txt").write_bytes(b"x" * 100)

    async def main() -> None:
        response = await get(DirectoryOrigin(tmp_path, stream_threshold_bytes=10), "/a.txt")
        assert response.stream is not None
        assert await response.read() == b"x" * 100

    asyncio.run(main())


@needs_proc
def test_head_304_and_405_answer_without_a_body_or_an_open_file(tmp_path: Path) -> None:
    path = write_pattern(tmp_path / "big.bin", 2 * MiB)

    async def main() -> None:
        origin = DirectoryOrigin(tmp_path)
        ok = await get(origin, "/big.bin")
        etag = ok.headers.get("etag")
        assert etag
        await ok.aclose()
        head = await origin.fetch(Request("HEAD", "http://shop.test/big.bin"))
        assert (head.status, head.body, head.stream) == (200, b"", None)
        assert head.headers.get("content-length") == str(2 * MiB)
        assert head.headers.get("etag") == etag
        nm = await get(origin, "/big.bin", **{"if-none-match": etag})
        assert (nm.status, nm.body, nm.stream) == (304, b"", None)
        post = await origin.fetch(Request("POST", "http://shop.test/big.bin"))
        assert post.status == 405
        assert post.headers.get("allow") == "GET, HEAD"
        assert fds_on(path) == 0

    asyncio.run(main())


def test_paths_that_leave_the_root_are_refused(tmp_path: Path) -> None:
    root = tmp_path / "root"
    (root / "img").mkdir(parents=True)
    write_pattern(root / "img" / "big.bin", MiB)
    secret = write_pattern(tmp_path / "secret.bin", MiB)
    (root / "out").symlink_to(secret)
    (root / "img" / "in").symlink_to(root / "img" / "big.bin")
    os.mkfifo(root / "fifo")
    bad = [
        "/../secret.bin",
        "/img/%2e%2e/%2e%2e/secret.bin",
        "/img/..%2f..%2fsecret.bin",
        "/out",
        "/img",
        "/",
        "/fifo",
        "/nope",
        "/a%00b",
    ]

    async def main() -> None:
        origin = DirectoryOrigin(root)
        for path in bad:
            response = await get(origin, path)
            assert (response.status, response.stream) == (404, None), path
            assert response.body == b"not found\n"
        inside = await get(origin, "/img/in")  # a symlink that stays inside is followed
        assert inside.status == 200
        assert await inside.read() == (root / "img" / "big.bin").read_bytes()

    asyncio.run(main())


def test_a_20_mib_file_streams_through_the_proxy_byte_exact_in_little_memory(
    tmp_path: Path,
) -> None:
    write_pattern(tmp_path / "warm.mp4", MiB)
    write_pattern(tmp_path / "big.mp4", LARGE)
    store = MemoryStore(64 * MiB, max_entry_bytes=MiB)  # too big to store: passed through

    async def warm() -> None:
        async with proxy(EdgeCache(DirectoryOrigin(tmp_path), MemoryStore(MiB))) as client:
            await fetch(client, "/warm.mp4")

    async def run() -> None:
        async with proxy(EdgeCache(DirectoryOrigin(tmp_path), store)) as client:
            for _ in range(2):
                status, got, size, headers = await fetch(client, "/big.mp4")
                assert (status, size, got) == (200, LARGE, digest(LARGE))
                assert headers["content-length"] == str(LARGE)
                assert headers["content-type"] == "video/mp4"
                assert "etag" in headers
                assert "last-modified" in headers

    asyncio.run(warm())
    peak = peak_while(run)
    print(f"DirectoryOrigin 20 MiB passed through: tracemalloc peak {peak / MiB:.2f} MiB")
    assert peak < 2 * MiB  # a tenth of the file: the window and pieces of 64 KiB
    assert len(store) == 0


def test_a_20_mib_file_is_stored_once_and_then_hit(tmp_path: Path) -> None:
    write_pattern(tmp_path / "big.mp4", LARGE)
    store = MemoryStore(64 * MiB, max_entry_bytes=32 * MiB)

    async def run() -> None:
        async with proxy(EdgeCache(DirectoryOrigin(tmp_path), store)) as client:
            status, got, size, _ = await fetch(client, "/big.mp4")
            assert (status, size, got) == (200, LARGE, digest(LARGE))
            await asyncio.sleep(0)
            status, got, size, headers = await fetch(client, "/big.mp4")
            assert (status, size, got) == (200, LARGE, digest(LARGE))
            assert "hit" in headers["cache-status"]
            status, _, size, headers = await fetch(client, "/big.mp4", {"range": "bytes=10-19"})
            assert (status, size, headers["content-range"]) == (206, 10, f"bytes 10-19/{LARGE}")

    peak = peak_while(run)
    print(f"DirectoryOrigin 20 MiB stored: tracemalloc peak {peak / MiB:.2f} MiB")
    assert peak < 1.25 * LARGE  # the stored copy, held once
    assert len(store) == 1


@needs_proc
def test_a_reader_that_stops_early_closes_the_file(tmp_path: Path) -> None:
    path = write_pattern(tmp_path / "big.bin", 4 * MiB)

    async def main() -> None:
        origin = DirectoryOrigin(tmp_path)
        before = len(os.listdir(PROC_FD))
        response = await get(origin, "/big.bin")
        assert fds_on(path) == 1
        _, chunk = await first_chunk(response)
        assert chunk == PATTERN
        await response.aclose()
        assert fds_on(path) == 0
        never_read = await get(origin, "/big.bin")
        assert fds_on(path) == 1
        await never_read.aclose()
        await never_read.aclose()
        read = await get(origin, "/big.bin")
        assert len(await read.read()) == 4 * MiB
        assert fds_on(path) == 0
        assert len(os.listdir(PROC_FD)) == before

    asyncio.run(main())


@needs_proc
@pytest.mark.parametrize(
    ("store_bytes", "read_bytes", "timeout_s"),
    [
        (MiB, 2 * MiB, 30.0),  # not stored, left after the first window: the fetch stops at once
        (MiB, 1, 0.5),  # left within the first window: kept for waiters up to origin_timeout_s
        (16 * MiB, 1, 30.0),  # stored: the fetch reads on to the end, then closes the file
    ],
    ids=["passed-through", "first-window", "stored"],
)
def test_a_client_that_leaves_the_proxy_early_leaves_no_file_open(
    tmp_path: Path, store_bytes: int, read_bytes: int, timeout_s: float
) -> None:
    path = write_pattern(tmp_path / "big.bin", 8 * MiB)
    stored = 1 if store_bytes > 8 * MiB else 0

    async def main() -> None:
        store = MemoryStore(64 * MiB, max_entry_bytes=store_bytes)
        edge = EdgeCache(DirectoryOrigin(tmp_path), store, origin_timeout_s=timeout_s)
        async with proxy(edge) as client:
            async with client.stream("GET", "/big.bin") as response:
                got = 0
                async for chunk in response.aiter_raw():
                    got += len(chunk)
                    if got >= read_bytes:
                        break
            for _ in range(250):  # at most 5 s
                if fds_on(path) == 0 and len(store) == stored:
                    break
                await asyncio.sleep(0.02)
            assert fds_on(path) == 0
            assert len(store) == stored

    asyncio.run(main())


@needs_proc
def test_a_reader_cancelled_mid_read_closes_the_file_when_the_read_ends(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = write_pattern(tmp_path / "big.bin", MiB)
    real_read = os.read
    reading, release = threading.Event(), threading.Event()

    def slow_read(fd: int, n: int) -> bytes:  # a slow disk: held until the test lets it go
        reading.set()
        release.wait(10)
        return real_read(fd, n)

    async def main() -> None:
        response = await get(DirectoryOrigin(tmp_path), "/big.bin")
        assert response.stream is not None
        monkeypatch.setattr(os, "read", slow_read)
        read = asyncio.ensure_future(anext(aiter(response.stream)))
        assert await asyncio.to_thread(reading.wait, 10)  # the read is in its thread now
        read.cancel()  # the reader gives up (a timeout, a client gone)
        with pytest.raises(asyncio.CancelledError):
            await read
        await response.aclose()
        assert fds_on(path) == 1  # not closed under the read still running in its thread
        release.set()
        for _ in range(100):
            if fds_on(path) == 0:
                break
            await asyncio.sleep(0.02)
        assert fds_on(path) == 0  # the read closed it as it ended
        monkeypatch.undo()

    asyncio.run(main())


@needs_proc
def test_a_fetch_cancelled_while_the_file_opens_closes_it(tmp_path: Path) -> None:
    path = write_pattern(tmp_path / "big.bin", MiB)

    async def main() -> None:
        loop = asyncio.get_running_loop()
        loop.set_default_executor(ThreadPoolExecutor(max_workers=1))
        origin = DirectoryOrigin(tmp_path)
        for _ in range(5):
            task = asyncio.ensure_future(get(origin, "/big.bin"))
            await asyncio.sleep(0)  # the worker thread is opening the file now, or will
            task.cancel()
            with pytest.raises(asyncio.CancelledError):
                await task
        await loop.run_in_executor(None, int)  # one worker: every abandoned open has ended
        for _ in range(50):
            if fds_on(path) == 0:
                break
            await asyncio.sleep(0.02)
        assert fds_on(path) == 0

    asyncio.run(main())


@needs_proc
@pytest.mark.parametrize(
    ("change", "message"),
    [
        (lambda p: os.truncate(p, 200 * 1024), "ended after"),
        (lambda p: os.truncate(p, 4 * MiB + 1), "longer than"),
        (lambda p: _overwrite_in_place(p), "written to while it was streamed"),
    ],
    ids=["truncated", "grown", "rewritten"],
)
def test_a_file_changed_mid_stream_is_an_origin_error_and_not_stored(
    tmp_path: Path, change: Callable[[Path], object], message: str
) -> None:
    path = write_pattern(tmp_path / "big.bin", 4 * MiB)

    async def main() -> None:
        response = await get(DirectoryOrigin(tmp_path), "/big.bin")
        chunks, _ = await first_chunk(response)
        change(path)
        with pytest.raises(OriginError, match=message):
            await drain(chunks)
        assert fds_on(path) == 0
        # through the edge: every reader's body breaks, and nothing is stored
        write_pattern(path, 4 * MiB)
        store = MemoryStore(64 * MiB, max_entry_bytes=32 * MiB)
        edge = EdgeCache(DirectoryOrigin(tmp_path), store)
        response = await edge.get("http://shop.test/big.bin")
        chunks, _ = await first_chunk(response)
        change(path)
        with pytest.raises(OriginError):
            await drain(chunks)
        await asyncio.sleep(0)
        assert len(store) == 0
        await edge.aclose()
        assert fds_on(path) == 0

    asyncio.run(main())


def _overwrite_in_place(path: Path) -> None:
    fd = os.open(path, os.O_WRONLY)
    try:
        os.pwrite(fd, b"\xff" * 10, 3 * MiB)
    finally:
        os.close(fd)
    st = path.stat()
    os.utime(path, ns=(st.st_atime_ns, st.st_mtime_ns + 1_000_000_000))  # coarse clocks too


def test_a_small_file_written_to_while_read_is_an_origin_error(tmp_path: Path) -> None:
    # A small file is read in one go, so the change is made between open and fstat-after-read:
    # simulate with a file whose modification time moves under the origin's thread.
    path = tmp_path / "a.txt"
    path.write_bytes(b"x" * 100)
    real_read = os.read

    def read_then_touch(fd: int, n: int) -> bytes:
        data = real_read(fd, n)
        st = path.stat()
        os.utime(path, ns=(st.st_atime_ns, st.st_mtime_ns + 1_000_000_000))
        return data

    async def main() -> None:
        origin = DirectoryOrigin(tmp_path)
        with pytest.MonkeyPatch.context() as mp:
            mp.setattr(os, "read", read_then_touch)
            with pytest.raises(OriginError, match="written to while it was read"):
                await get(origin, "/a.txt")
        assert (await get(origin, "/a.txt")).body == b"x" * 100

    asyncio.run(main())


def test_the_validators_describe_the_bytes_served_when_the_file_is_replaced(
    tmp_path: Path,
) -> None:
    path = write_pattern(tmp_path / "big.bin", 2 * MiB)
    old = path.read_bytes()

    async def main() -> None:
        origin = DirectoryOrigin(tmp_path)
        response = await get(origin, "/big.bin")
        chunks, first = await first_chunk(response)
        new = tmp_path / "new.tmp"
        new.write_bytes(b"\x01" * (3 * MiB))
        os.utime(new, ns=(0, path.stat().st_mtime_ns + 1_000_000_000))
        os.replace(new, path)  # a deploy: the open file keeps the old content
        rest = b"".join([chunk async for chunk in chunks])
        assert first + rest == old
        again = await get(origin, "/big.bin")
        assert again.headers.get("etag") != response.headers.get("etag")
        assert again.headers.get("last-modified") != response.headers.get("last-modified")
        assert await again.read() == b"\x01" * (3 * MiB)

    asyncio.run(main())


def test_reads_stay_off_the_event_loop(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    write_pattern(tmp_path / "small.bin", 1000)
    write_pattern(tmp_path / "big.bin", MiB)
    loop_thread = threading.get_ident()
    readers: list[int] = []
    real_read = os.read

    def recording_read(fd: int, n: int) -> bytes:
        readers.append(threading.get_ident())
        return real_read(fd, n)

    async def main() -> None:
        origin = DirectoryOrigin(tmp_path)
        monkeypatch.setattr(os, "read", recording_read)
        assert len((await get(origin, "/small.bin")).body) == 1000
        assert len(await (await get(origin, "/big.bin")).read()) == MiB
        monkeypatch.undo()

    asyncio.run(main())
    assert len(readers) >= MiB // CHUNK_BYTES
    assert loop_thread not in readers


def test_the_edge_serves_ranges_and_heads_of_a_streamed_file(tmp_path: Path) -> None:
    path = write_pattern(tmp_path / "big.bin", 2 * MiB)

    async def main() -> None:
        store = MemoryStore(64 * MiB)
        edge = EdgeCache(DirectoryOrigin(tmp_path), store)
        part = await edge.get("http://shop.test/big.bin", {"range": "bytes=100-199"})
        assert part.status == 206
        assert await part.read() == path.read_bytes()[100:200]
        head = await edge.handle(Request("HEAD", "http://shop.test/big.bin"))
        assert (head.status, head.body, head.stream) == (200, b"", None)
        assert head.headers.get("content-length") == str(2 * MiB)
        for _ in range(500):  # the full body is stored in the background (10 s at most)
            if len(store):
                break
            await asyncio.sleep(0.02)
        hit = await edge.get("http://shop.test/big.bin")
        assert hit.outcome is CacheOutcome.HIT
        assert await hit.read() == path.read_bytes()
        await edge.aclose()

    asyncio.run(main())
