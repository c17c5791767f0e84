"""Cache keys: the normalized absolute URL of a request (RFC 9111 2, RFC 3986 6.2.2-6.2.3)."""

from __future__ import annotations

import re
from urllib.parse import urlsplit, urlunsplit

from commercekit.cdn._message._messages import Request
from commercekit.errors import InvalidInputError

__all__ = ["check_url", "normalize_url", "url_key"]

_DEFAULT_PORTS = {"http": "80", "https": "443"}
_CONTROLS = re.compile(r"[\x00-\x20\x7f]")


def check_url(url: str) -> str:
    """Return *url*, or raise :class:`InvalidInputError` if it holds a control or a space.

    ``urlsplit`` silently drops tab, CR and LF (and trims other controls), so
    ``/b.j\tpg`` would be keyed as ``/b.jpg`` while an origin is asked for the
    raw URL: such a URL is refused instead (a 400 at the proxy).
    """
    found = _CONTROLS.search(url)
    if found is not None:
        raise InvalidInputError(
            f"URL {url[:80]!r} contains {found.group()!r} (a control character or a space); "
            "percent-encode it"
        )
    return url


def normalize_url(url: str) -> str:
    """Return *url* with scheme and host lower-cased, the default port and fragment dropped.

    Path and query are kept byte for byte: two spellings of one path may be
    two resources to the origin. A URL that does not parse is returned as is;
    one with a control character or a space is refused (:func:`check_url`).
    """
    check_url(url)
    try:
        parts = urlsplit(url)
    except ValueError:
        return url
    if not parts.scheme or not parts.netloc:
        return url.partition("#")[0]
    scheme = parts.scheme.lower()
    netloc = parts.netloc.lower()
    host, sep, port = netloc.rpartition(":")
    if sep and port == _DEFAULT_PORTS.get(scheme) and "]" not in port:
        netloc = host
    return urlunsplit((scheme, netloc, parts.path or "/", parts.query, ""))


def url_key(request: Request) -> str:
    """The default cache key: the request's normalized URL (method is not part of it)."""
    return normalize_url(request.url)
