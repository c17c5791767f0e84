"""Tests for commercekit.money._allocate: integer rounding, allocation and splitting."""

from __future__ import annotations

import decimal
from decimal import Decimal

import pytest
from hypothesis import example, given
from hypothesis import strategies as st

from commercekit.errors import InvalidInputError, UnsupportedTypeError
from commercekit.money._allocate import (
    ROUNDING_MODES,
    allocate_minor,
    check_rounding,
    round_ratio,
    split_minor,
)
from tests.strategies import rounding_modes

BIG = 10**30
EXACT = decimal.Context(prec=200, Emax=decimal.MAX_EMAX, Emin=decimal.MIN_EMIN, traps=[])


def reference_round(numerator: int, denominator: int, rounding: str) -> int:
    """What the decimal module makes of numerator/denominator, rounded to an integer.

    The quotient is computed to 200 digits; with the bounds drawn below its
    fractional part is never within 10**-100 of an integer or a half unless it
    is exactly there, so the 200-digit quotient rounds as the exact one would.
    """
    exact = EXACT.divide(Decimal(numerator), Decimal(denominator))
    return int(exact.quantize(Decimal(1), rounding=rounding, context=EXACT))


@given(
    numerator=st.integers(-BIG, BIG),
    denominator=st.sampled_from([1, 2, 3, 4, 5, 8, 10, 16, 100, 1000, 10**6])
    | st.integers(1, 10**9),
    rounding=rounding_modes(),
)
@example(numerator=5, denominator=2, rounding=decimal.ROUND_HALF_EVEN)
@example(numerator=-5, denominator=2, rounding=decimal.ROUND_HALF_UP)
@example(numerator=-15, denominator=10, rounding=decimal.ROUND_05UP)
@example(numerator=51, denominator=10, rounding=decimal.ROUND_05UP)
def test_round_ratio_matches_decimal(numerator: int, denominator: int, rounding: str) -> None:
    expected = reference_round(numerator, denominator, rounding)
    assert round_ratio(numerator, denominator, check_rounding(rounding)) == expected


@pytest.mark.parametrize(
    ("value", "rounding", "expected"),
    [
        ("2.5", decimal.ROUND_HALF_EVEN, 2),
        ("3.5", decimal.ROUND_HALF_EVEN, 4),
        ("-2.5", decimal.ROUND_HALF_EVEN, -2),
        ("2.5", decimal.ROUND_HALF_UP, 3),
        ("-2.5", decimal.ROUND_HALF_UP, -3),
        ("2.5", decimal.ROUND_HALF_DOWN, 2),
        ("-2.5", decimal.ROUND_HALF_DOWN, -2),
        ("2.1", decimal.ROUND_UP, 3),
        ("-2.1", decimal.ROUND_UP, -3),
        ("2.9", decimal.ROUND_DOWN, 2),
        ("-2.9", decimal.ROUND_DOWN, -2),
        ("-2.1", decimal.ROUND_FLOOR, -3),
        ("-2.9", decimal.ROUND_CEILING, -2),
        ("5.1", decimal.ROUND_05UP, 6),
        ("4.1", decimal.ROUND_05UP, 4),
        ("10.1", decimal.ROUND_05UP, 11),
        ("-0.1", decimal.ROUND_05UP, -1),
    ],
)
def test_round_ratio_examples(value: str, rounding: str, expected: int) -> None:
    numerator, denominator = Decimal(value).as_integer_ratio()
    assert round_ratio(numerator, denominator, check_rounding(rounding)) == expected


def test_check_rounding_accepts_every_decimal_mode() -> None:
    for mode in ROUNDING_MODES:
        assert check_rounding(mode) == mode
    assert len(ROUNDING_MODES) == 8


def test_check_rounding_refuses_others_and_lists_the_modes() -> None:
    with pytest.raises(InvalidInputError, match=r"'HALF_EVEN'.*decimal\.ROUND_HALF_EVEN"):
        check_rounding("HALF_EVEN")
    with pytest.raises(UnsupportedTypeError, match="rounding modes"):
        check_rounding(2)


weights_lists = st.lists(st.integers(0, 10**6), min_size=1, max_size=20).filter(any)


@given(total=st.integers(-BIG, BIG), weights=weights_lists)
def test_allocate_minor_is_exact_fair_and_symmetric(total: int, weights: list[int]) -> None:
    parts = allocate_minor(total, weights)
    weight_sum = sum(weights)
    assert len(parts) == len(weights)
    assert sum(parts) == total
    for part, weight in zip(parts, weights, strict=True):
        # |part - total * weight / weight_sum| < 1, in integers.
        assert abs(part * weight_sum - total * weight) < weight_sum
        if weight == 0:
            assert part == 0
    assert allocate_minor(-total, weights) == [-part for part in parts]
    assert allocate_minor(total, weights) == parts


def test_allocate_minor_breaks_ties_toward_earlier_parts() -> None:
    assert allocate_minor(100, [1, 1, 1]) == [34, 33, 33]
    assert allocate_minor(2, [1, 1, 1]) == [1, 1, 0]
    assert allocate_minor(-2, [1, 1, 1]) == [-1, -1, 0]
    assert allocate_minor(5, [0, 1, 0, 1]) == [0, 3, 0, 2]
    assert allocate_minor(1, [1, 2]) == [0, 1]


@given(total=st.integers(-BIG, BIG), count=st.integers(1, 200))
def test_split_minor_is_exact_even_and_bigger_first(total: int, count: int) -> None:
    parts = split_minor(total, count)
    assert len(parts) == count
    assert sum(parts) == total
    magnitudes = [abs(part) for part in parts]
    assert max(magnitudes) - min(magnitudes) <= 1
    assert magnitudes == sorted(magnitudes, reverse=True)
    assert all((part >= 0) == (total >= 0) or part == 0 for part in parts)
