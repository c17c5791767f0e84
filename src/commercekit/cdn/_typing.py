"""The seams of the CDN: where content comes from, where it is kept, how it is purged and signed."""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Protocol

from commercekit.typing import WallClock

if TYPE_CHECKING:
    from ._message._body import BodyStream
    from ._message._messages import Request, Response
    from ._message._stored import StoredResponse
    from ._purge._selector import PurgeResult, PurgeSelector

__all__ = ["BodyWriter", "CacheStore", "Clock", "Origin", "Purger", "StoredBody", "UrlSigner"]

Clock = WallClock
"""The edge's clock, a :data:`commercekit.typing.WallClock` (epoch seconds, ``time.time``).

Wall-clock, not monotonic, because stored responses are shared through Redis
between machines and compared with ``Date`` and ``Expires``."""


class Origin(Protocol):
    """Where content comes from. Must be safe to call concurrently."""

    async def fetch(self, request: Request, /) -> Response:
        """Return the origin's response to *request*.

        A large body may come as a :class:`~commercekit.cdn.BodyStream` in
        ``Response.stream``; an error while it is read means a broken body.
        Raise :class:`~commercekit.cdn.OriginError` when the origin cannot be
        reached or answers garbage; an HTTP error status is a response, not an error.
        """
        ...

    async def aclose(self) -> None:
        """Release connections and files."""
        ...


class BodyWriter(Protocol):
    """Stores one response whose body arrives in chunks; nothing shows before :meth:`commit`."""

    async def write(self, chunk: bytes, /) -> bool:
        """Take the next *chunk*; return False (and abort) once the body is too big to keep."""
        ...

    async def commit(self, entry: StoredResponse, /) -> None:
        """Make *entry* visible; ``entry.body`` is the whole body (a store in process keeps it)."""
        ...

    async def abort(self) -> None:
        """Drop what was written; the store keeps nothing of this body."""
        ...


class StoredBody(Protocol):
    """A large stored body a store reads on demand (``StoredResponse.stored_body``).

    It names one immutable version of the body; :meth:`open` does no I/O
    until the stream is read, and may be called once per response served.
    """

    @property
    def length(self) -> int:
        """The body's size in bytes."""
        ...

    def open(self, first: int = 0, last: int | None = None) -> BodyStream:
        """Return a stream of bytes *first* .. *last* (inclusive; to the end by default).

        If the version is lost while it is read, iterating raises (the body is broken).
        """
        ...


class CacheStore(Protocol):
    """Where stored responses live, several variants per key. One event loop uses it at a time."""

    async def get(self, key: str, /) -> Sequence[StoredResponse]:
        """Return the stored variants of *key* (soft purges applied), or an empty sequence.

        A store may return a large body as ``stored_body`` (``body`` is then
        ``b""``) to be streamed from the store as the client reads it.
        """
        ...

    async def put(self, entry: StoredResponse, /) -> None:
        """Store *entry*, replacing the variant of its key with the same ``Vary`` values.

        *entry* may carry a ``stored_body`` this store returned (a revalidated
        entry): keep that body, without reading it when it is already stored here.
        """
        ...

    def open_write(self, entry: StoredResponse, /, *, length: int | None) -> BodyWriter | None:
        """Start storing *entry* (``body`` empty; *length* if known), or None if it cannot fit."""
        ...

    async def delete(self, key: str, /) -> bool:
        """Remove every variant of *key*; say whether there was one."""
        ...

    async def purge(self, selector: PurgeSelector, /, *, soft: bool, now: float) -> int:
        """Remove (hard) or mark stale at *now* (soft) what *selector* picks; count the keys."""
        ...

    async def aclose(self) -> None:
        """Release connections."""
        ...


class Purger(Protocol):
    """Something that can purge content: an ``EdgeCache``, or a CDN's purge API."""

    async def purge(self, selector: PurgeSelector, /, *, soft: bool = False) -> PurgeResult:
        """Purge what *selector* picks; *soft* marks it stale instead of removing it."""
        ...


class UrlSigner(Protocol):
    """Signs URLs so that only holders of a valid signature can fetch them."""

    def sign(self, url: str, /, *, expires_at: float, starts_at: float | None = None) -> str:
        """Return *url* with a signature valid from *starts_at* (if given) until *expires_at*."""
        ...

    def verify(self, url: str, /) -> None:
        """Raise :class:`~commercekit.cdn.SignatureError` unless *url* is validly signed now."""
        ...
