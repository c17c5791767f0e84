"""Parsing ``Cache-Control`` and ``CDN-Cache-Control`` into a frozen value (RFC 9111 5.2, RFC 9213).

Origins send malformed fields; parsing never raises. The safe defaults, per
RFC 9111 4.2.1 and 1.2.2: a ``max-age`` or ``s-maxage`` whose value is not a
number makes the response stale (0); a number too large is 2**31; when a
directive appears twice the first one counts; a field larger than
``MAX_FIELD_CHARS`` is marked ``malformed`` and the caller refuses to store.
"""

from __future__ import annotations

import attrs

from ._sf import parse_dictionary

__all__ = [
    "DELTA_SECONDS_MAX",
    "MAX_FIELD_CHARS",
    "CacheControl",
    "parse_cache_control",
    "parse_targeted",
]

DELTA_SECONDS_MAX = 2**31
MAX_FIELD_CHARS = 8 * 1024


@attrs.frozen(slots=True)
class CacheControl:
    """The directives of one ``Cache-Control``-style field; absent numbers are None."""

    max_age: int | None = None
    s_maxage: int | None = None
    no_store: bool = False
    no_cache: bool = False
    private: bool = False
    public: bool = False
    must_revalidate: bool = False
    proxy_revalidate: bool = False
    immutable: bool = False
    no_transform: bool = False
    only_if_cached: bool = False
    stale_while_revalidate: int | None = None
    stale_if_error: int | None = None
    max_stale: int | None = None
    min_fresh: int | None = None
    malformed: bool = False
    present: bool = False

    @property
    def revalidate_when_stale(self) -> bool:
        """``must-revalidate``, ``proxy-revalidate`` or ``s-maxage``: never stale (5.2.2.10)."""
        return self.must_revalidate or self.proxy_revalidate or self.s_maxage is not None


EMPTY = CacheControl()

_NUMERIC = {
    "max-age": "max_age",
    "s-maxage": "s_maxage",
    "stale-while-revalidate": "stale_while_revalidate",
    "stale-if-error": "stale_if_error",
    "max-stale": "max_stale",
    "min-fresh": "min_fresh",
}
_FLAGS = {
    "no-store": "no_store",
    "no-cache": "no_cache",
    "private": "private",
    "public": "public",
    "must-revalidate": "must_revalidate",
    "proxy-revalidate": "proxy_revalidate",
    "immutable": "immutable",
    "no-transform": "no_transform",
    "only-if-cached": "only_if_cached",
}


def _split(field: str) -> list[str]:
    """Split on commas that are not inside a quoted string."""
    parts: list[str] = []
    start = 0
    quoted = False
    escaped = False
    for i, ch in enumerate(field):
        if escaped:
            escaped = False
        elif ch == "\\" and quoted:
            escaped = True
        elif ch == '"':
            quoted = not quoted
        elif ch == "," and not quoted:
            parts.append(field[start:i])
            start = i + 1
    parts.append(field[start:])
    return parts


def _delta_seconds(value: str | None) -> int:
    if value is None:
        return 0
    value = value.strip().strip('"')
    if not value.isascii() or not value.isdigit():
        return 0  # invalid: treat as stale (RFC 9111 4.2.1)
    if len(value) > 10:
        return DELTA_SECONDS_MAX
    return min(int(value), DELTA_SECONDS_MAX)


def parse_cache_control(field: str | None) -> CacheControl:
    """Parse one (already comma-joined) ``Cache-Control``-style field; never raises."""
    if field is None:
        return EMPTY
    if len(field) > MAX_FIELD_CHARS:
        return CacheControl(malformed=True, present=True)
    found: dict[str, object] = {}
    malformed = False
    for part in _split(field):
        part = part.strip()
        if not part:
            continue
        name, sep, value = part.partition("=")
        name = name.strip().lower()
        arg = value.strip() if sep else None
        if name in _NUMERIC:
            attr = _NUMERIC[name]
            if attr in found:
                continue  # the first occurrence counts
            if name == "max-stale" and arg is None:
                found[attr] = DELTA_SECONDS_MAX  # any staleness is acceptable
            else:
                seconds = _delta_seconds(arg)
                if arg is None or not arg.strip('" ').isascii() or not arg.strip('" ').isdigit():
                    malformed = True
                found[attr] = seconds
        elif name in _FLAGS:
            # Qualified forms (no-cache="Set-Cookie", private="x") are treated as
            # unqualified: stricter, and allowed for a shared cache (5.2.2.4, 5.2.2.7).
            found[_FLAGS[name]] = True
        elif not name or any(c in name for c in ' \t"'):
            malformed = True
    return CacheControl(malformed=malformed, present=True, **found)  # type: ignore[arg-type]


def parse_targeted(field: str) -> CacheControl | None:
    """Parse a targeted field (``CDN-Cache-Control``, RFC 9213) as a Dictionary; None if invalid.

    RFC 9213 2.1: an empty field or one that does not parse is ignored as a
    whole (the caller falls back to ``Cache-Control``). Within a valid one,
    a numeric directive whose value is not a non-negative Integer is ignored,
    ``?0`` turns a flag off, any other value on a flag keeps it on (a
    qualified ``no-cache="x"`` counts as plain ``no-cache``, as for
    ``Cache-Control``); parameters and unknown directives are ignored.
    """
    if not field or len(field) > MAX_FIELD_CHARS:
        return None
    parsed = parse_dictionary(field)
    if not parsed:
        return None
    found: dict[str, object] = {}
    for name, value in parsed.items():
        if name in _NUMERIC:
            if type(value) is int and value >= 0:
                found[_NUMERIC[name]] = min(value, DELTA_SECONDS_MAX)
            elif name == "max-stale" and value is True:
                found[_NUMERIC[name]] = DELTA_SECONDS_MAX
        elif name in _FLAGS and value is not False:
            found[_FLAGS[name]] = True
    return CacheControl(present=True, **found)  # type: ignore[arg-type]
