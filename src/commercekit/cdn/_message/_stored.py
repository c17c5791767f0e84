"""``StoredResponse``: a response as the edge keeps it, with its freshness precomputed."""

from __future__ import annotations

from typing import TYPE_CHECKING

import attrs

from ._headers import Headers

if TYPE_CHECKING:
    from commercekit.cdn._typing import StoredBody

__all__ = ["StoredResponse"]


@attrs.frozen(slots=True)
class StoredResponse:
    """A stored response and everything the edge needs to reuse it without reparsing.

    ``fresh_until``, ``stale_while_revalidate_until``, ``stale_if_error_until``
    and ``keep_until`` are epoch seconds computed once when the response is
    stored (or soft-purged), so a lookup is a comparison.
    """

    key: str
    """The primary cache key (normally the absolute URL)."""
    status: int
    headers: Headers
    body: bytes
    request_time: float
    response_time: float
    initial_age: float
    fresh_until: float
    stale_while_revalidate_until: float
    stale_if_error_until: float
    keep_until: float
    vary: tuple[str, ...] = ()
    variant: tuple[str | None, ...] = ()
    tags: frozenset[str] = frozenset()
    no_cache: bool = False
    """Every use needs a successful revalidation first."""
    revalidate_when_stale: bool = False
    """``must-revalidate``, ``proxy-revalidate`` or ``s-maxage``: never served stale."""
    stored_body: StoredBody | None = None
    """A large body the store streams on demand (``body`` is then ``b""``): ``CacheStore.get``."""

    @property
    def body_length(self) -> int:
        """The body's size in bytes, wherever it is kept."""
        return len(self.body) if self.stored_body is None else self.stored_body.length

    @property
    def size(self) -> int:
        """Bytes this response takes in a store (body plus headers)."""
        return self.body_length + self.headers.size_bytes() + 64

    async def read_body(self) -> bytes:
        """Return the whole body, reading a ``stored_body`` (for bodies known to fit in memory)."""
        return self.body if self.stored_body is None else await self.stored_body.open().read()

    @property
    def etag(self) -> str | None:
        """The stored ``ETag``, if any."""
        return self.headers.get("etag")

    @property
    def last_modified(self) -> str | None:
        """The stored ``Last-Modified``, if any."""
        return self.headers.get("last-modified")

    def age(self, now: float) -> float:
        """Return the current age in seconds (RFC 9111 4.2.3)."""
        return self.initial_age + max(0.0, now - self.response_time)

    def soft_purged(self, at: float) -> StoredResponse:
        """Return a copy that is stale from *at* on; its stale windows restart at *at*."""
        if self.fresh_until <= at:
            return self
        shift = self.fresh_until - at
        return attrs.evolve(
            self,
            fresh_until=at,
            stale_while_revalidate_until=self.stale_while_revalidate_until - shift,
            stale_if_error_until=self.stale_if_error_until - shift,
        )
