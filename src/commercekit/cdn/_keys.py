"""Cache keys: the normalized absolute URL of a request (RFC 9111 2, RFC 3986 6.2.2-6.2.3)."""

from __future__ import annotations

from urllib.parse import urlsplit, urlunsplit

from ._messages import Request

__all__ = ["normalize_url", "url_key"]

_DEFAULT_PORTS = {"http": "80", "https": "443"}


def normalize_url(url: str) -> str:
    """Return *url* with scheme and host lower-cased, the default port and fragment dropped.

    Path and query are kept byte for byte: two spellings of one path may be
    two resources to the origin. A URL that does not parse is returned as is.
    """
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
