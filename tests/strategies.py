"""Hypothesis strategies for commercekit's values, shared by every part's tests.

A plain module of functions, each returning a strategy; parts append theirs.
"""

from __future__ import annotations

from typing import get_args

from hypothesis import strategies as st

from commercekit.money import ROUNDING_MODES, Currency, Money, RoundingMode
from commercekit.money import currencies as _all_currencies

DEFAULT_MAX_MINOR = 10**18
"""Default bound on generated minor amounts: past int64, far past real prices."""


def currencies() -> st.SearchStrategy[Currency]:
    """Any currency of the ISO 4217 table, "N.A." ones included, shrinking toward AED."""
    return st.sampled_from(_all_currencies())


def money(
    currency: Currency | str | None = None,
    *,
    min_minor: int = -DEFAULT_MAX_MINOR,
    max_minor: int = DEFAULT_MAX_MINOR,
) -> st.SearchStrategy[Money]:
    """Money in *currency* (any table currency when None), amounts in minor units between bounds."""
    units = currencies() if currency is None else st.just(Currency.of(currency))
    return st.builds(Money.from_minor, st.integers(min_minor, max_minor), units)


def money_pairs(
    *, min_minor: int = -DEFAULT_MAX_MINOR, max_minor: int = DEFAULT_MAX_MINOR
) -> st.SearchStrategy[tuple[Money, Money]]:
    """Two amounts in one (drawn) currency."""
    return currencies().flatmap(
        lambda unit: st.tuples(
            money(unit, min_minor=min_minor, max_minor=max_minor),
            money(unit, min_minor=min_minor, max_minor=max_minor),
        )
    )


def rounding_modes() -> st.SearchStrategy[RoundingMode]:
    """Any of the decimal module's eight rounding modes."""
    modes: tuple[RoundingMode, ...] = get_args(RoundingMode)
    assert set(modes) == ROUNDING_MODES
    return st.sampled_from(modes)
