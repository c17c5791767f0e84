"""``Vary`` keying (RFC 9111 4.1): which request fields select a stored variant.

A stored response keeps the names it varies on and the normalized values the
request that produced it had. A later request matches when its normalized
values for those names are equal. Normalization only removes differences
that cannot change the response: whitespace around commas, several field
lines of one name, and case in ``Accept-Encoding``.
"""

from __future__ import annotations

from commercekit.cdn._message._headers import Headers

__all__ = ["VARY_STAR", "normalize_field", "variant_of", "vary_names"]

VARY_STAR: tuple[str, ...] = ("*",)
_CASE_INSENSITIVE = frozenset({"accept-encoding", "accept-charset"})


def vary_names(headers: Headers) -> tuple[str, ...]:
    """Return the sorted, lower-cased, de-duplicated names in ``Vary``; ``("*",)`` for ``*``."""
    joined = headers.joined("vary")
    if not joined:
        return ()
    names = {part.strip().lower() for part in joined.split(",")}
    names.discard("")
    if "*" in names:
        return VARY_STAR
    return tuple(sorted(names))


def normalize_field(name: str, values: list[str]) -> str | None:
    """Return the normalized value of field *name* with *values*, None when absent."""
    if not values:
        return None
    parts = [p.strip() for v in values for p in v.split(",")]
    joined = ",".join(p for p in parts if p)
    return joined.lower() if name in _CASE_INSENSITIVE else joined


def variant_of(names: tuple[str, ...], headers: Headers) -> tuple[str | None, ...]:
    """Return the normalized values of *names* in the request *headers*, in order."""
    return tuple(normalize_field(name, headers.get_all(name)) for name in names)
