"""Key and node hashing: XXH3-64 for our placements, MD5 for ketama compatibility.

Every placement except ketama hashes with **XXH3-64** (``xxhash.xxh3_64_intdigest``,
xxHash 0.8 specification): fast, stable across processes, machines and
versions of the ``xxhash`` package, and well spread. A ``str`` key is hashed as
its UTF-8 bytes, so ``"a"`` and ``b"a"`` go to the same node. Seed 0 places the
key; seed *j* (1, 2, ...) gives its *j*-th fallback. Golden vectors, checked by
the tests::

    xxh3_64(b"")                 == 0x2D06800538D394C2
    xxh3_64(b"customer-42")      == 0xF40925AC7F7B5E61
    xxh3_64(b"customer-42", 1)   == 0xEDFE2E66ADD0E5BE

Ketama hashes as libketama and ``uhashring`` do: the MD5 digest of the UTF-8
key, whose first four bytes read little-endian give the point on a 32-bit ring.

Python's ``hash()`` is salted per process and is never used.
"""

from __future__ import annotations

from hashlib import md5

from xxhash import xxh3_64_intdigest

from commercekit.balancer._shown import shown
from commercekit.errors import InvalidInputError, UnsupportedTypeError

__all__ = [
    "hash_key",
    "ketama_hash",
    "key_bytes",
    "node_hash",
    "unit_interval",
    "xxh3_64_intdigest",
]

_MASK64 = (1 << 64) - 1


def key_bytes(key: object) -> bytes:
    """The bytes a key is hashed as: UTF-8 for ``str``, the bytes themselves for bytes-likes."""
    if isinstance(key, str):
        try:
            return key.encode()
        except UnicodeEncodeError:
            raise InvalidInputError(
                f"balancer key {shown(key)} is not valid Unicode (it holds a lone surrogate); "
                f"keys are hashed as UTF-8: pass bytes to route by raw bytes"
            ) from None
    if isinstance(key, bytes | bytearray | memoryview):
        return bytes(key)
    raise UnsupportedTypeError(
        f"a balancer key must be str or bytes, not {type(key).__name__}; "
        f"pass str(key) to route by its text"
    )


def hash_key(key: str | bytes, seed: int = 0) -> int:
    """The 64-bit XXH3 hash a key is placed by (seed 0), or its *seed*-th fallback hash."""
    return xxh3_64_intdigest(key_bytes(key), seed)


def node_hash(name: str, seed: int) -> int:
    """A node's own hash, for its place in a table (Maglev offset and skip, tie-breaks)."""
    return xxh3_64_intdigest(name.encode(), seed)


def ketama_hash(data: bytes, replica: int = 0) -> int:
    """libketama's point for *data*: four bytes of its MD5 digest, little-endian.

    *replica* (0 to 3) picks which four bytes, as libketama takes four points
    from each digest.
    """
    digest = md5(data, usedforsecurity=False).digest()
    offset = replica * 4
    return int.from_bytes(digest[offset : offset + 4], "little")


def unit_interval(h: int) -> float:
    """Map a 64-bit hash to ``[0, 1)`` using its top 32 bits (independent of ``h % prime``)."""
    return ((h & _MASK64) >> 32) / 4294967296.0
