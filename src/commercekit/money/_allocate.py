"""Dividing whole minor units: rounding a ratio, allocating by weights, splitting evenly.

Pure integer arithmetic, no :mod:`decimal` context: every result is exact,
whatever precision or traps the caller's thread has set on its decimal context.
"""

from __future__ import annotations

import decimal
from collections.abc import Sequence
from typing import Final, Literal, TypeAlias

from commercekit.errors import InvalidInputError, UnsupportedTypeError
from commercekit.money._currency import shown

__all__ = [
    "ROUNDING_MODES",
    "RoundingMode",
    "allocate_minor",
    "check_rounding",
    "round_ratio",
    "split_minor",
]

RoundingMode: TypeAlias = Literal[
    "ROUND_CEILING",
    "ROUND_DOWN",
    "ROUND_FLOOR",
    "ROUND_HALF_DOWN",
    "ROUND_HALF_EVEN",
    "ROUND_HALF_UP",
    "ROUND_UP",
    "ROUND_05UP",
]
"""One of the :mod:`decimal` rounding constants, such as ``decimal.ROUND_HALF_EVEN``."""

ROUNDING_MODES: Final[frozenset[str]] = frozenset(
    {
        decimal.ROUND_CEILING,
        decimal.ROUND_DOWN,
        decimal.ROUND_FLOOR,
        decimal.ROUND_HALF_DOWN,
        decimal.ROUND_HALF_EVEN,
        decimal.ROUND_HALF_UP,
        decimal.ROUND_UP,
        decimal.ROUND_05UP,
    }
)


def check_rounding(rounding: object) -> RoundingMode:
    """Return *rounding* if it is one of the :mod:`decimal` rounding modes, else raise."""
    if isinstance(rounding, str) and rounding in ROUNDING_MODES:
        return rounding  # type: ignore[return-value]  # membership checked just above
    valid = ", ".join(f"decimal.{mode}" for mode in sorted(ROUNDING_MODES))
    if not isinstance(rounding, str):
        raise UnsupportedTypeError(
            f"rounding must be one of the decimal module's rounding modes ({valid}), "
            f"not {type(rounding).__name__} {shown(rounding)}"
        )
    raise InvalidInputError(f"unknown rounding mode {shown(rounding)}; use one of {valid}")


def round_ratio(numerator: int, denominator: int, rounding: RoundingMode) -> int:
    """Round ``numerator / denominator`` to an integer the way :mod:`decimal` rounds.

    *denominator* must be positive. Ties and directions follow the decimal
    module's definitions exactly: ``ROUND_DOWN`` is toward zero, ``ROUND_FLOOR``
    toward minus infinity, ``ROUND_HALF_EVEN`` is banker's rounding, and
    ``ROUND_05UP`` rounds away from zero only when rounding toward zero would
    leave a last digit of 0 or 5.
    """
    floor, remainder = divmod(numerator, denominator)
    if remainder == 0:
        return floor
    ceiling = floor + 1
    negative = numerator < 0
    toward_zero, away_from_zero = (ceiling, floor) if negative else (floor, ceiling)
    if rounding == decimal.ROUND_FLOOR:
        return floor
    if rounding == decimal.ROUND_CEILING:
        return ceiling
    if rounding == decimal.ROUND_DOWN:
        return toward_zero
    if rounding == decimal.ROUND_UP:
        return away_from_zero
    if rounding == decimal.ROUND_05UP:
        return away_from_zero if toward_zero % 5 == 0 else toward_zero
    twice = 2 * remainder
    if twice < denominator:
        return floor
    if twice > denominator:
        return ceiling
    # An exact tie between floor and ceiling.
    if rounding == decimal.ROUND_HALF_UP:
        return away_from_zero
    if rounding == decimal.ROUND_HALF_DOWN:
        return toward_zero
    if rounding == decimal.ROUND_HALF_EVEN:
        return floor if floor % 2 == 0 else ceiling
    raise InvalidInputError(f"unknown rounding mode {rounding!r}")  # pragma: no cover


def allocate_minor(total: int, weights: Sequence[int]) -> list[int]:
    """Divide *total* minor units in proportion to non-negative integer *weights*.

    Largest-remainder method (Hamilton's): every part first gets the floor of
    its exact share, then the units left over go one each to the parts with
    the largest remainders; equal remainders go to the earlier part. So the
    parts add up to *total* exactly, each is within one unit of its exact
    share, a zero weight gets zero, and the result depends only on the input.
    A negative *total* is divided as its magnitude and the signs flipped, so
    shares are symmetric around zero. The caller checks the weights (at least
    one, none negative, not all zero).
    """
    weight_sum = sum(weights)
    magnitude = abs(total)
    parts: list[int] = []
    remainders: list[int] = []
    for weight in weights:
        part, remainder = divmod(magnitude * weight, weight_sum)
        parts.append(part)
        remainders.append(remainder)
    left_over = magnitude - sum(parts)
    if left_over:
        # Fewer units are left over than there are non-zero remainders, so a
        # zero weight (remainder 0) never gets one.
        order = sorted(range(len(parts)), key=lambda index: (-remainders[index], index))
        for index in order[:left_over]:
            parts[index] += 1
    if total < 0:
        return [-part for part in parts]
    return parts


def split_minor(total: int, count: int) -> list[int]:
    """Divide *total* minor units into *count* parts that differ by at most one unit.

    The larger parts (in magnitude) come first; a negative *total* gives
    negative parts. The caller checks that *count* is at least 1.
    """
    quotient, remainder = divmod(abs(total), count)
    parts = [quotient + 1] * remainder + [quotient] * (count - remainder)
    if total < 0:
        return [-part for part in parts]
    return parts
