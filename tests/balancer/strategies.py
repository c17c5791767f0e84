"""Hypothesis strategies for the balancer tests."""

from __future__ import annotations

from hypothesis import strategies as st

node_names = st.text(
    alphabet=st.characters(min_codepoint=33, max_codepoint=0x2FF), min_size=1, max_size=12
)
"""Node names: short, printable, some non-ASCII."""


def memberships(min_size: int = 1, max_size: int = 12) -> st.SearchStrategy[list[str]]:
    """Distinct node names, in a drawn order."""
    return st.lists(node_names, min_size=min_size, max_size=max_size, unique=True)


def weighted_memberships(
    min_size: int = 1, max_size: int = 12, min_weight: float = 0.5, max_weight: float = 4.0
) -> st.SearchStrategy[dict[str, float]]:
    """Distinct node names with float weights."""
    return st.dictionaries(
        node_names,
        st.floats(min_value=min_weight, max_value=max_weight, allow_nan=False),
        min_size=min_size,
        max_size=max_size,
    )


routing_keys = st.one_of(st.text(max_size=40), st.binary(max_size=40))
"""Keys as callers pass them: text or bytes."""
