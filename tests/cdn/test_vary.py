"""Vary keying: names, normalization, matching."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from commercekit.cdn import Headers
from commercekit.cdn._policy._vary import VARY_STAR, variant_of, vary_names


def test_names_are_sorted_lower_and_unique() -> None:
    headers = Headers([("Vary", "Accept-Encoding, accept-language"), ("vary", "ACCEPT-ENCODING")])
    assert vary_names(headers) == ("accept-encoding", "accept-language")


def test_star() -> None:
    assert vary_names(Headers({"vary": "Accept, *"})) == VARY_STAR


def test_whitespace_and_line_splits_do_not_matter() -> None:
    a = Headers([("accept-encoding", "gzip,  br")])
    b = Headers([("Accept-Encoding", "GZIP"), ("accept-encoding", "br")])
    assert variant_of(("accept-encoding",), a) == variant_of(("accept-encoding",), b)


def test_absent_differs_from_empty() -> None:
    assert variant_of(("x",), Headers()) != variant_of(("x",), Headers({"x": ""}))


tokens = st.text("abcdefgh;=.", min_size=1, max_size=8)


@given(st.lists(tokens, min_size=1, max_size=4), st.lists(tokens, min_size=1, max_size=4))
def test_same_values_same_variant_different_values_different_variant(
    a: list[str], b: list[str]
) -> None:
    names = ("accept-language",)
    va = variant_of(names, Headers({"accept-language": ", ".join(a)}))
    vb = variant_of(names, Headers({"Accept-Language": ",".join(b)}))
    assert (va == vb) == (a == b)
