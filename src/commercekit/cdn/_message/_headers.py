"""``Headers``: an immutable, case-insensitive, ordered multi-map of HTTP fields.

Names are stored lower-cased (as HTTP/2 and HTTP/3 send them, and HTTP/1.1
treats them), values as they came. Every "change" returns a new object, so a
stored response's headers can be shared by every response served from it.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping

from commercekit.errors import MalformedHeaderError

__all__ = ["DEFAULT_MAX_HEADER_BYTES", "HOP_BY_HOP", "Headers", "without_hop_by_hop"]

HOP_BY_HOP = frozenset(
    {
        "connection",
        "keep-alive",
        "proxy-authenticate",
        "proxy-authorization",
        "proxy-connection",
        "te",
        "trailer",
        "transfer-encoding",
        "upgrade",
    }
)
"""Fields that belong to one connection and are never stored or forwarded (RFC 9110 7.6.1)."""

DEFAULT_MAX_HEADER_BYTES = 64 * 1024


class Headers:
    """An immutable list of ``(name, value)`` fields with case-insensitive lookup."""

    __slots__ = ("_items",)

    _items: tuple[tuple[str, str], ...]

    def __init__(
        self,
        items: Headers | Mapping[str, str] | Iterable[tuple[str, str]] = (),
    ) -> None:
        if isinstance(items, Headers):
            self._items = items._items
            return
        pairs = items.items() if isinstance(items, Mapping) else items
        self._items = tuple((str(k).lower(), str(v)) for k, v in pairs)

    @classmethod
    def from_wire(
        cls,
        items: Iterable[tuple[bytes | str, bytes | str]],
        *,
        max_bytes: int = DEFAULT_MAX_HEADER_BYTES,
    ) -> Headers:
        """Build headers from raw pairs, refusing a header section larger than *max_bytes*."""
        out: list[tuple[str, str]] = []
        total = 0
        for k, v in items:
            name = k.decode("latin-1") if isinstance(k, bytes) else k
            value = v.decode("latin-1") if isinstance(v, bytes) else v
            total += len(name) + len(value) + 4
            if total > max_bytes:
                raise MalformedHeaderError(
                    f"header section is larger than {max_bytes} bytes; "
                    "raise max_header_bytes or fix the sender"
                )
            out.append((name.lower(), value.strip()))
        made = cls.__new__(cls)
        made._items = tuple(out)
        return made

    def get(self, name: str, default: str | None = None) -> str | None:
        """Return the first value of *name*, or *default*."""
        name = name.lower()
        for k, v in self._items:
            if k == name:
                return v
        return default

    def get_all(self, name: str) -> list[str]:
        """Return every value of *name*, in order."""
        name = name.lower()
        return [v for k, v in self._items if k == name]

    def joined(self, name: str) -> str | None:
        """Return every value of *name* joined with ``", "`` (a list-valued field), or None."""
        values = self.get_all(name)
        return ", ".join(values) if values else None

    def set(self, name: str, value: str) -> Headers:
        """Return a copy with every *name* field replaced by one field set to *value*."""
        name = name.lower()
        made = Headers.__new__(Headers)
        made._items = (*(kv for kv in self._items if kv[0] != name), (name, value))
        return made

    def extended(self, *pairs: tuple[str, str]) -> Headers:
        """Return a copy with *pairs* (lower-case names) appended as further field lines."""
        made = Headers.__new__(Headers)
        made._items = self._items + pairs
        return made

    def without(self, *names: str) -> Headers:
        """Return a copy without any of *names*."""
        drop = {n.lower() for n in names}
        made = Headers.__new__(Headers)
        made._items = tuple(kv for kv in self._items if kv[0] not in drop)
        return made

    def update(self, other: Headers) -> Headers:
        """Return a copy where every field name present in *other* takes *other*'s values."""
        replaced = {k for k, _ in other._items}
        made = Headers.__new__(Headers)
        made._items = (*(kv for kv in self._items if kv[0] not in replaced), *other._items)
        return made

    def items(self) -> tuple[tuple[str, str], ...]:
        """Return the fields as ``(lower-case name, value)`` pairs."""
        return self._items

    def raw(self) -> list[tuple[bytes, bytes]]:
        """Return the fields encoded for the wire."""
        return [(k.encode("latin-1"), v.encode("latin-1", "replace")) for k, v in self._items]

    def size_bytes(self) -> int:
        """Return the approximate size of the header section on the wire."""
        return sum(len(k) + len(v) + 4 for k, v in self._items)

    def __contains__(self, name: object) -> bool:
        if not isinstance(name, str):
            return False
        name = name.lower()
        return any(k == name for k, _ in self._items)

    def __iter__(self) -> Iterator[str]:
        return (k for k, _ in self._items)

    def __len__(self) -> int:
        return len(self._items)

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Headers) and other._items == self._items

    def __hash__(self) -> int:
        return hash(self._items)

    def __repr__(self) -> str:
        return f"Headers({list(self._items)!r})"


def without_hop_by_hop(headers: Headers) -> Headers:
    """Return *headers* without the hop-by-hop fields and those ``Connection`` names.

    RFC 9110 7.6.1: a proxy removes every field named as a connection option
    before it forwards (or stores) a message, then ``Connection`` itself.
    """
    options = headers.get_all("connection")
    if not options:
        return headers.without(*HOP_BY_HOP)
    named = (o.strip().lower() for v in options for o in v.split(","))
    return headers.without(*HOP_BY_HOP, *(n for n in named if n))
