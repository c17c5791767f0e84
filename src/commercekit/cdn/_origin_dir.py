"""``DirectoryOrigin``: serve files from a folder, as an image or asset server would."""

from __future__ import annotations

import asyncio
import hashlib
import mimetypes
import os
from pathlib import Path
from urllib.parse import unquote, urlsplit

from commercekit.errors import ConfigurationError

from ._dates import format_http_date
from ._headers import Headers
from ._messages import Request, Response

__all__ = ["DirectoryOrigin"]


class DirectoryOrigin:
    """An :class:`~commercekit.cdn.Origin` serving the files under *root*.

    Every file gets a strong ``ETag`` (from its size and modification time),
    ``Last-Modified``, a ``Content-Type`` guessed from its name, and
    *cache_control*. Conditional GETs get 304. Paths that leave *root* (``..``,
    symlinks out, NUL bytes) and folders get 404. Files are read off the event
    loop, in a worker thread.
    """

    def __init__(
        self, root: str | os.PathLike[str], *, cache_control: str = "public, max-age=300"
    ) -> None:
        self._root = Path(root).resolve()
        if not self._root.is_dir():
            raise ConfigurationError(f"origin folder {str(self._root)!r} does not exist")
        self._cache_control = cache_control

    def _resolve(self, url: str) -> Path | None:
        path = unquote(urlsplit(url).path)
        if "\x00" in path:
            return None
        candidate = (self._root / path.lstrip("/")).resolve()
        if candidate != self._root and self._root not in candidate.parents:
            return None
        return candidate if candidate.is_file() else None

    def _read(self, request: Request) -> Response:
        if request.method not in ("GET", "HEAD"):
            return Response(405, Headers({"allow": "GET, HEAD", "content-length": "0"}))
        path = self._resolve(request.url)
        if path is None:
            return Response(
                404,
                Headers({"content-type": "text/plain", "cache-control": "max-age=10"}),
                b"not found\n",
            )
        stat = path.stat()
        tag = hashlib.blake2b(
            f"{stat.st_size}:{stat.st_mtime_ns}".encode(), digest_size=8
        ).hexdigest()
        etag = f'"{tag}"'
        headers = {
            "etag": etag,
            "last-modified": format_http_date(stat.st_mtime),
            "cache-control": self._cache_control,
            "content-type": mimetypes.guess_type(path.name)[0] or "application/octet-stream",
            "accept-ranges": "bytes",
        }
        if etag in (request.headers.joined("if-none-match") or ""):
            return Response(304, Headers(headers))
        body = b"" if request.method == "HEAD" else path.read_bytes()
        headers["content-length"] = str(stat.st_size)
        return Response(200, Headers(headers), body)

    async def fetch(self, request: Request, /) -> Response:
        """Return the file named by *request*'s path."""
        return await asyncio.to_thread(self._read, request)

    async def aclose(self) -> None:
        """Nothing to release."""

    def __repr__(self) -> str:
        return f"DirectoryOrigin({str(self._root)!r})"
