"""The server's fast path for fresh cached hits: pre-serialized headers and the stored body.

A hit through :meth:`EdgeCache.handle` and :class:`ProxyHandler` builds a
:class:`Request`, parses the request's fields, copies the stored
:class:`Headers` twice and serializes them again, for every request. This
module answers the plainest hit without any of that: a ``GET`` with none of
the fields that change what a shared cache does with a stored response
(``Cache-Control``, ``Pragma``, ``Authorization``, conditionals, ``Range``),
for a key whose only stored response (no ``Vary``) in a :class:`MemoryStore`
is fresh and needs no revalidation. Its status line and fields (hop-by-hop
fields dropped, ``Via`` added, ``Content-Length`` exact) are serialized once
per stored response and kept beside a weak reference to it, so a purge or a
refill (a new stored object) is never answered from an old serialization;
only ``Age`` and ``Cache-Status`` are written per request. Everything else
goes the ordinary way. The answer is the one ``EdgeCache`` would give: the
same key function, the same store lookup, the same hit counters.
"""

from __future__ import annotations

import weakref
from http import HTTPStatus
from typing import TYPE_CHECKING

from commercekit.cdn._edge._flight import cache_status
from commercekit.cdn._message._headers import HOP_BY_HOP, Headers
from commercekit.cdn._message._messages import CacheOutcome, Request
from commercekit.cdn._policy._freshness import age_header_value
from commercekit.cdn._policy._keys import url_key
from commercekit.cdn._stores._memory import MemoryStore
from commercekit.errors import InvalidInputError

if TYPE_CHECKING:
    from commercekit.cdn._message._stored import StoredResponse

    from ._proxy import ProxyHandler

__all__ = ["SLOW_FIELDS", "HitPath"]

SLOW_FIELDS = frozenset(
    {
        b"cache-control",
        b"pragma",
        b"authorization",
        b"range",
        b"if-range",
        b"if-none-match",
        b"if-modified-since",
        b"if-match",
        b"if-unmodified-since",
    }
)
"""Request fields (lower case) that send a request the ordinary way."""

_MAX_KEYS = 8192
_MAX_HEADS = 4096
_NO_HEADERS = Headers()


class HitPath:
    """Answers eligible fresh hits of *handler*'s edge with ready-made bytes, or says no."""

    def __init__(self, handler: ProxyHandler, *, scheme: str = "http") -> None:
        edge = handler.edge
        store = edge.store
        hooks = edge.hit_hooks()  # the edge's key function, clock and hit counters
        self._edge = edge
        self._store = store if isinstance(store, MemoryStore) else None
        self._key = hooks.key
        self._clock = hooks.clock
        self._hits = hooks.hits
        self._served_bytes = hooks.served_bytes
        self._name = edge.name
        self._via = handler.via
        self._scheme = scheme
        self._keys: dict[tuple[bytes, bytes], str] = {}
        self._heads: dict[str, tuple[weakref.ref[StoredResponse], bytes]] = {}
        self.enabled = self._store is not None and self._key is url_key

    def lookup(self, host: bytes, target: bytes) -> tuple[bytes, bytes] | None:
        """Return the head (without its closing blank line) and body of a fresh hit, or None.

        The caller has checked the method (GET) and that no :data:`SLOW_FIELDS` were sent.
        """
        store = self._store
        if store is None:
            return None
        key = self._keys.get((host, target))
        if key is None:
            key = self._learn_key(host, target)
            if key is None:
                return None
        entry = store.fresh(key)
        if entry is None or entry.no_cache or entry.stored_body is not None:
            return None
        now = self._clock()
        if now >= entry.fresh_until:
            return None
        cached = self._heads.get(key)
        if cached is None or cached[0]() is not entry:
            head = self._serialize(entry)
            if len(self._heads) >= _MAX_HEADS:
                self._heads.clear()
            self._heads[key] = (weakref.ref(entry), head)
        else:
            head = cached[1]
        self._hits.inc()
        self._served_bytes.inc(len(entry.body))
        status = cache_status(self._name, CacheOutcome.HIT, entry.fresh_until - now)
        tail = f"age: {age_header_value(entry.age(now))}\r\ncache-status: {status}\r\n"
        return head + tail.encode("latin-1"), entry.body

    def _learn_key(self, host: bytes, target: bytes) -> str | None:
        if not target.startswith(b"/") or not host:
            return None
        host_s = host.decode("latin-1")
        if any(c in host_s for c in "/\\@ \t"):
            return None
        url = f"{self._scheme}://{host_s.lower()}{target.decode('latin-1')}"
        try:
            key = self._key(Request("GET", url, _NO_HEADERS))
        except InvalidInputError:
            return None  # a control character: the slow path answers 400
        if len(self._keys) >= _MAX_KEYS:
            self._keys.clear()
        self._keys[(host, target)] = key
        return key

    def _serialize(self, entry: StoredResponse) -> bytes:
        headers = entry.headers.without(*HOP_BY_HOP, "content-length")
        via = headers.joined("via")
        headers = headers.set("via", f"{via}, {self._via}" if via else self._via)
        lines = [f"HTTP/1.1 {entry.status} {reason(entry.status)}"]
        lines += [f"{name}: {value}" for name, value in headers.items()]
        lines.append(f"content-length: {len(entry.body)}")
        return ("\r\n".join(lines) + "\r\n").encode("latin-1")


def reason(status: int) -> str:
    """The reason phrase of *status* (``Status`` for codes without one)."""
    try:
        return HTTPStatus(status).phrase
    except ValueError:
        return "Status"
