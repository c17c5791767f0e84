"""``DirectoryOrigin``: serve files from a folder, as an image or asset server would.

A file up to the stream threshold is read whole into ``Response.body``; a
larger one is opened once and streamed as a :class:`BodyStream` in
:data:`CHUNK_BYTES` pieces, each read in a worker thread, so that neither the
event loop waits on the disk nor the process holds the file. The validators
come from ``os.fstat`` of the descriptor the bytes are read from, so they
describe those bytes even if the file is replaced meanwhile (a deploy that
renames a new file into place); a file written to in place while it is read
ends in :class:`OriginError` (from the stream's length check when its length
changes), never in a short or mixed body.
"""

from __future__ import annotations

import asyncio
import contextlib
import errno
import hashlib
import mimetypes
import os
import stat
import threading
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import TypeVar
from urllib.parse import unquote, urlsplit

from commercekit.cdn._message._body import CHUNK_BYTES, STREAM_THRESHOLD_BYTES, BodyStream
from commercekit.cdn._message._dates import format_http_date
from commercekit.cdn._message._headers import Headers
from commercekit.cdn._message._messages import Request, Response
from commercekit.errors import ConfigurationError, OriginError

__all__ = ["DirectoryOrigin"]

_T = TypeVar("_T")

# O_NOFOLLOW: a symlink put in place of the file after the path was resolved is refused;
# O_NONBLOCK: a FIFO put there does not hang the worker thread in open() (fstat then
# refuses it). Neither changes how a regular file is read.
_OPEN_FLAGS = (
    os.O_RDONLY
    | getattr(os, "O_BINARY", 0)
    | getattr(os, "O_NOFOLLOW", 0)
    | getattr(os, "O_NONBLOCK", 0)
)
_GONE = frozenset({errno.ENOENT, errno.ENOTDIR, errno.EISDIR, errno.ELOOP})
"""Errors of ``open`` that mean the file is no longer there (as a file): a 404."""


def _not_found() -> Response:
    return Response(
        404,
        Headers({"content-type": "text/plain", "cache-control": "max-age=10"}),
        b"not found\n",
    )


class DirectoryOrigin:
    """An :class:`~commercekit.cdn.Origin` serving the files under *root*.

    Every file gets a strong ``ETag`` (from its size and modification time),
    ``Last-Modified``, a ``Content-Type`` guessed from its name, and
    *cache_control*. Conditional GETs get 304; HEAD gets the headers. Paths
    that leave *root* (``..``, symlinks out, NUL bytes) and folders get 404.
    A file up to *stream_threshold_bytes* comes back whole in
    ``Response.body``; a larger one as a :class:`BodyStream` in
    ``Response.stream`` that holds the file open until it is read to the end
    or closed. Files are opened and read off the event loop, in worker
    threads. A file that cannot be read, or that is written to while it is
    read, raises :class:`OriginError` (while streaming: from the stream).
    """

    def __init__(
        self,
        root: str | os.PathLike[str],
        *,
        cache_control: str = "public, max-age=300",
        stream_threshold_bytes: int = STREAM_THRESHOLD_BYTES,
    ) -> None:
        self._root = Path(root).resolve()
        if not self._root.is_dir():
            raise ConfigurationError(f"origin folder {str(self._root)!r} does not exist")
        self._cache_control = cache_control
        self._threshold = stream_threshold_bytes

    def _resolve(self, url: str) -> Path | None:
        path = unquote(urlsplit(url).path)
        if "\x00" in path:
            return None
        candidate = (self._root / path.lstrip("/")).resolve()
        if candidate != self._root and self._root not in candidate.parents:
            return None
        return candidate if candidate.is_file() else None

    def _open(self, request: Request) -> tuple[Response, _OpenFile | None]:
        """Answer *request* (in a worker thread); the open file too when the body streams."""
        if request.method not in ("GET", "HEAD"):
            return Response(405, Headers({"allow": "GET, HEAD", "content-length": "0"})), None
        path = self._resolve(request.url)
        if path is None:
            return _not_found(), None
        name = path.relative_to(self._root).as_posix()
        try:
            fd = os.open(path, _OPEN_FLAGS)
        except OSError as exc:
            if exc.errno in _GONE:  # removed or replaced since it was resolved
                return _not_found(), None
            raise OriginError(f"cannot open {name!r} in the origin folder: {exc!r}") from exc
        streamed: _OpenFile | None = None
        try:
            try:
                st = os.fstat(fd)
                if not stat.S_ISREG(st.st_mode):
                    return _not_found(), None
                headers = self._headers(path.name, st)
                if headers["etag"] in (request.headers.joined("if-none-match") or ""):
                    return Response(304, Headers(headers)), None
                headers["content-length"] = str(st.st_size)
                if request.method == "HEAD":
                    return Response(200, Headers(headers)), None
                if st.st_size <= self._threshold:
                    return Response(200, Headers(headers), _read_whole(fd, st, name)), None
            except OSError as exc:
                raise OriginError(f"cannot read {name!r} in the origin folder: {exc!r}") from exc
            streamed = _OpenFile(fd, st, name)
            body = BodyStream(_chunks(streamed), length=st.st_size, close=streamed.aclose)
            return Response(200, Headers(headers), stream=body), streamed
        finally:
            if streamed is None:
                os.close(fd)

    def _headers(self, filename: str, st: os.stat_result) -> dict[str, str]:
        tag = hashlib.blake2b(f"{st.st_size}:{st.st_mtime_ns}".encode(), digest_size=8)
        return {
            "etag": f'"{tag.hexdigest()}"',
            "last-modified": format_http_date(st.st_mtime),
            "cache-control": self._cache_control,
            "content-type": mimetypes.guess_type(filename)[0] or "application/octet-stream",
            "accept-ranges": "bytes",
        }

    async def fetch(self, request: Request, /) -> Response:
        """Return the file named by *request*'s path, whole or streaming."""
        opening = asyncio.get_running_loop().run_in_executor(None, self._open, request)
        try:
            response, _ = await asyncio.shield(opening)
        except asyncio.CancelledError:
            # The worker thread cannot be stopped: close what it opens when it is done.
            opening.add_done_callback(_close_abandoned)
            raise
        return response

    async def aclose(self) -> None:
        """Nothing to release: each streamed body closes its own file."""

    def __repr__(self) -> str:
        return f"DirectoryOrigin({str(self._root)!r})"


def _close_abandoned(opening: asyncio.Future[tuple[Response, _OpenFile | None]]) -> None:
    if opening.cancelled() or opening.exception() is not None:
        return
    streamed = opening.result()[1]
    if streamed is not None:
        streamed.close()


def _stamp(st: os.stat_result) -> tuple[int, int]:
    return st.st_size, st.st_mtime_ns


def _read_whole(fd: int, st: os.stat_result, name: str) -> bytes:
    """Read a small file whole; raise if it is not the file *st* describes."""
    pieces: list[bytes] = []
    size = 0
    while size <= st.st_size:  # bounded: every turn reads a byte or more, or ends
        piece = os.read(fd, st.st_size + 1 - size)
        if not piece:
            break
        pieces.append(piece)
        size += len(piece)
    if size != st.st_size or _stamp(os.fstat(fd)) != _stamp(st):
        raise OriginError(
            f"{name!r} was written to while it was read ({size} bytes of {st.st_size}); "
            "ask again once it is written"
        )
    return b"".join(pieces)


async def _chunks(file: _OpenFile) -> AsyncIterator[bytes]:
    """The pieces of *file*, each read in a worker thread.

    Reads to the end of the file, but no further than one piece past its
    announced length: the stream's length check turns a file that grew or
    shrank into :class:`OriginError`. A file of the same length written to
    meanwhile is caught here, by its modification time.
    """
    served = 0
    while served <= file.length:  # bounded: every turn reads a byte or more, or ends
        chunk = await asyncio.to_thread(file.read, CHUNK_BYTES)
        if not chunk:
            break
        served += len(chunk)
        yield chunk
    if served == file.length:
        await asyncio.to_thread(file.check_unchanged)


class _OpenFile:
    """One open file of a streamed body; closed once, and never under a running read.

    :meth:`close` runs on the event loop and never waits: when a read is
    still running in its worker thread (its reader was cancelled), that read
    closes the file as it ends. Closing under it could hand its descriptor
    number to another ``open`` and the read to someone else's file.
    """

    __slots__ = ("_closing", "_fd", "_lock", "_stat", "_users", "length", "name")

    def __init__(self, fd: int, st: os.stat_result, name: str) -> None:
        self._fd = fd
        self._stat = st
        self.length = st.st_size
        self.name = name
        self._lock = threading.Lock()  # held for flags and close, never across a read
        self._users = 0
        self._closing = False

    def read(self, size: int) -> bytes:
        """Read up to *size* bytes (in a worker thread)."""
        return self._use(lambda fd: os.read(fd, size))

    def check_unchanged(self) -> None:
        """Raise :class:`OriginError` if the file changed since it was opened (worker thread)."""
        if _stamp(self._use(os.fstat)) != _stamp(self._stat):
            raise OriginError(
                f"{self.name!r} was written to while it was streamed; ask again once it is written"
            )

    def _use(self, call: Callable[[int], _T]) -> _T:
        with self._lock:
            if self._closing:
                raise OriginError(f"{self.name!r} was read after its stream was closed")
            self._users += 1
        try:
            return call(self._fd)
        except OSError as exc:
            raise OriginError(f"cannot read {self.name!r} in the origin folder: {exc!r}") from exc
        finally:
            self._done_using()

    def _done_using(self) -> None:
        with self._lock:
            self._users -= 1
            if self._closing and not self._users:
                self._release()

    def close(self) -> None:
        """Close the file now, or as soon as the running read ends; safe to call more than once."""
        with self._lock:
            self._closing = True
            if not self._users:
                self._release()

    async def aclose(self) -> None:
        """:meth:`close`, for :class:`BodyStream`."""
        self.close()

    def _release(self) -> None:  # with the lock held
        fd, self._fd = self._fd, -1
        if fd >= 0:
            with contextlib.suppress(OSError):  # nothing to lose: the file was only read
                os.close(fd)

    def __repr__(self) -> str:
        return f"_OpenFile({self.name!r}, length={self.length})"
