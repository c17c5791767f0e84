"""Fuzzing money: parsing, construction, arithmetic, formatting and currency lookups.

Amounts arrive as text from forms and files, currencies as codes from
anywhere: whatever comes, money answers or raises a ``commercekit.errors``
error within a time bound, and the interned ISO 4217 table never changes.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from decimal import Decimal
from fractions import Fraction
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from commercekit.money import Currency, Money, currencies
from tests.fuzz.hostile import hostile_text, json_value, not_a_string, only_ours

#: Examples per test: small in the default run; set COMMERCEKIT_FUZZ_EXAMPLES for a long run.
_FUZZ = settings(deadline=None, max_examples=int(os.environ.get("COMMERCEKIT_FUZZ_EXAMPLES", "40")))

big_int = st.integers(min_value=0, max_value=20_000).map(lambda n: 10**n + 7)
any_int = st.one_of(st.integers(), big_int, big_int.map(lambda n: -n))
any_number = st.one_of(
    any_int,
    st.floats(allow_nan=True, allow_infinity=True),
    st.decimals(allow_nan=True, allow_infinity=True),
    st.fractions(),
    st.builds(Fraction, any_int, st.integers(1, 5).map(lambda k: 5 ** (k * 20_000))),
    st.builds(Fraction, big_int, big_int),
    hostile_text,
    not_a_string,
    st.booleans(),
)

#: Calls take microseconds to milliseconds; the bound catches a quadratic or
#: hanging path, with room for a loaded machine (2 cores shared by many jobs).
BOUND_S = 3.0


def ours(call: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
    """``only_ours`` with this suite's time bound."""
    return only_ours(call, *args, bound_s=BOUND_S, **kwargs)


any_code = st.one_of(
    st.sampled_from(["USD", "usd", "JPY", "KWD", "CLF", "XAU", "840", "392"]),
    hostile_text,
    not_a_string,
    any_int,
)
rounding = st.one_of(
    st.none(), st.sampled_from(["ROUND_HALF_EVEN", "ROUND_UP"]), hostile_text, not_a_string
)
usd = Money.of("12.34", "USD")
TABLE = tuple((c.code, c.numeric, c.exponent, c.name) for c in currencies())


def operator_error(operation: Callable[[], object]) -> type[BaseException] | None:
    """Run *operation* under only_ours; return the type of a plain TypeError it raised."""
    try:
        ours(operation)
    except TypeError as exc:
        return type(exc)
    return None


def table_unchanged() -> None:
    assert tuple((c.code, c.numeric, c.exponent, c.name) for c in currencies()) == TABLE
    assert Currency.of("USD") is currencies()[[c.code for c in currencies()].index("USD")]


@_FUZZ
@given(
    text=st.one_of(hostile_text, st.from_regex(r"[-+]?[\d,]{0,40}(\.\d{0,40})?( [A-Za-z]{3})?")),
    code=st.one_of(st.none(), any_code),
    mode=rounding,
)
def test_parse(text: object, code: object, mode: object) -> None:
    result = ours(Money.parse, text, code, rounding=mode)
    if result is not None:
        assert Money.parse(str(result)) == result
    table_unchanged()


@_FUZZ
@given(amount=any_number, code=any_code, mode=rounding)
def test_of_and_construction(amount: object, code: object, mode: object) -> None:
    made = ours(Money.of, amount, code, rounding=mode)
    if made is not None:
        ours(str, made)
        ours(repr, made)
    direct = ours(Money, amount, code)
    if direct is not None:
        for show in (str, repr, lambda m: format(m, ","), lambda m: m.amount):
            ours(show, direct)
    table_unchanged()


@_FUZZ
@given(factor=any_number, to=any_code, mode=rounding, spec=hostile_text, parts=any_number)
def test_arithmetic_and_formatting(
    factor: object, to: object, mode: object, spec: str, parts: object
) -> None:
    ours(usd.multiply, factor, rounding=mode)
    ours(usd.convert, factor, to, rounding=mode)
    ours(usd.allocate, [factor, 1])
    ours(usd.allocate, factor)
    ours(usd.split, parts)
    ours(format, usd, spec)
    for operation in (
        lambda: usd + factor,
        lambda: usd - factor,
        lambda: usd * factor,
        lambda: usd < factor,
        lambda: usd == factor,
        lambda: factor + usd,
        lambda: usd / factor,
    ):
        # Python's own operator error is allowed: Money returned NotImplemented for
        # a type it does not know, or a list or str refused to multiply by Money.
        assert operator_error(operation) in (None, TypeError)
    assert usd == Money(1234, "USD")


@_FUZZ
@given(
    code=any_code,
    numeric=st.one_of(any_int, not_a_string),
    exponent=st.one_of(any_int, json_value),
    name=st.one_of(hostile_text, not_a_string),
)
def test_currency_lookup_and_private_units(
    code: object, numeric: object, exponent: object, name: object
) -> None:
    ours(Currency.of, code)
    made = ours(Currency, code, numeric, exponent, name)
    if made is not None:
        assert made == Currency(made.code, made.numeric, made.exponent, made.name)
        ours(repr, made)
        ours(Money.of, Decimal("1"), made)
    table_unchanged()
