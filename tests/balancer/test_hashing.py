"""The key hash: XXH3-64 with golden vectors, UTF-8 for text, never Python's hash()."""

from __future__ import annotations

import pytest

from commercekit.balancer import MaglevBalancer, hash_key
from commercekit.balancer._placement._hashing import ketama_hash, key_bytes, unit_interval
from commercekit.errors import UnsupportedTypeError

# Golden vectors: XXH3-64 (xxHash 0.8), seed 0 places a key, seed j gives its j-th fallback.
# If one of these changes, every deployed balancer would move its keys: never change them.
GOLDEN = [
    (b"", 0, 0x2D06800538D394C2),
    (b"customer-42", 0, 0xF40925AC7F7B5E61),
    (b"customer-42", 1, 0xEDFE2E66ADD0E5BE),
]


@pytest.mark.parametrize(("data", "seed", "expected"), GOLDEN)
def test_golden_vectors(data: bytes, seed: int, expected: int) -> None:
    assert hash_key(data, seed) == expected


def test_text_is_hashed_as_utf8() -> None:
    assert hash_key("customer-42") == hash_key(b"customer-42")
    assert hash_key("Zoë") == hash_key("Zoë".encode())
    assert key_bytes(bytearray(b"ab")) == b"ab"
    assert key_bytes(memoryview(b"ab")) == b"ab"


@pytest.mark.parametrize("bad", [42, 4.2, None, ("a",)])
def test_other_key_types_are_refused(bad: object) -> None:
    with pytest.raises(UnsupportedTypeError, match="str or bytes"):
        key_bytes(bad)
    balancer = MaglevBalancer(["a", "b"])
    with pytest.raises(UnsupportedTypeError, match=type(bad).__name__):
        balancer.pick(bad)  # type: ignore[arg-type]


def test_golden_placements_do_not_drift() -> None:
    # The default placement of a fixed membership, pinned: a change of hash, table
    # size or fill order would move keys in every deployment.
    balancer = MaglevBalancer([f"n{i}" for i in range(5)])
    picks = [balancer.pick(f"customer-{i}") for i in range(8)]
    assert picks == ["n4", "n0", "n4", "n0", "n1", "n3", "n1", "n4"]


def test_ketama_hash_matches_libketama() -> None:
    # md5("") = d41d8cd98f00b204e9800998ecf8427e; libketama reads bytes 0-3 little-endian.
    assert ketama_hash(b"") == 0xD98C1DD4
    assert ketama_hash(b"", 3) == 0x7E42F8EC


def test_unit_interval_spans_zero_to_one() -> None:
    assert unit_interval(0) == 0.0
    assert 0.999 < unit_interval(2**64 - 1) < 1.0
