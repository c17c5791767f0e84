"""Hostile Hypothesis strategies and the one property every fuzz test checks.

The property: a public entry point given outside input either answers or raises
a :class:`~commercekit.errors.CommerceKitError`, within a time bound per call.
Any other exception (``ValueError`` from ``int()``, ``OverflowError``,
``UnicodeEncodeError``, ``RecursionError``) or an overrun fails the test.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

from hypothesis import strategies as st

from commercekit.errors import CommerceKitError

#: Every code point, surrogates and private use included.
any_char = st.characters(codec=None, categories=None, exclude_categories=())
surrogate = st.characters(min_codepoint=0xD800, max_codepoint=0xDFFF)
control = st.characters(min_codepoint=0, max_codepoint=0x1F) | st.sampled_from(
    ["\x7f", "\x85", "\u2028", "\u2029", "\ufeff"]
)
unicode_digit = st.characters(categories=["Nd", "No", "Nl"])

any_text = st.text(any_char, max_size=64)
huge_digits = st.integers(min_value=300, max_value=5000).map(lambda n: "9" * n)
odd_numbers = st.sampled_from(
    ["nan", "NaN", "inf", "-inf", "1e400", "-0", "0x10", "1_000", "²", "١٢", " 1", "1 ", "+1"]
)

hostile_text = st.one_of(
    any_text,
    st.text(surrogate | control | unicode_digit, max_size=16),
    huge_digits,
    odd_numbers,
    st.from_regex(r"[\x00-\x20\w;=,.:/\\\"'-]{0,40}", fullmatch=True),
)
"""Text a hostile client could send: any code point, controls, huge or odd numbers."""

hostile_bytes = st.binary(max_size=256)

json_scalar = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(),
    st.floats(allow_nan=True, allow_infinity=True),
    hostile_text,
)
json_value = st.recursive(
    json_scalar,
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(hostile_text, inner, max_size=4),
    max_leaves=12,
)
"""Values of any JSON type, including the wrong type for every field."""

not_a_string = st.one_of(
    st.none(),
    st.integers(),
    st.floats(),
    st.binary(max_size=8),
    st.lists(st.integers(), max_size=3),
)


def deeply_nested_json(depth: int = 100_000) -> bytes:
    """A JSON document nested *depth* arrays deep (RecursionError bait)."""
    return b"[" * depth + b"]" * depth


def only_ours(call: Callable[..., Any], *args: Any, bound_s: float = 1.0, **kwargs: Any) -> Any:
    """Call *call*; allow only commercekit errors, and only within *bound_s* seconds.

    Returns the call's result, or None when it raised one of ours.
    """
    started = time.perf_counter()
    try:
        return call(*args, **kwargs)
    except CommerceKitError:
        return None
    finally:
        elapsed = time.perf_counter() - started
        assert elapsed <= bound_s, f"{call!r} took {elapsed:.3f} s (bound {bound_s} s)"
