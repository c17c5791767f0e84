"""Tests for commercekit.money._money: construction, parsing, formatting, arithmetic."""

from __future__ import annotations

import copy
import decimal
import pickle
import time
from collections.abc import Callable
from decimal import Context, Decimal
from fractions import Fraction
from typing import Any

import attrs
import pytest
from hypothesis import assume, given
from hypothesis import strategies as st

from commercekit.errors import (
    CommerceKitError,
    CurrencyMismatchError,
    InvalidInputError,
    PrecisionError,
    UnknownCurrencyError,
    UnsupportedTypeError,
)
from commercekit.money import Currency, Money, RoundingMode
from tests.strategies import currencies, money, money_pairs, rounding_modes

EXACT = decimal.Context(prec=300, Emax=decimal.MAX_EMAX, Emin=decimal.MIN_EMIN, traps=[])
USD = Currency.of("USD")


def quantum(unit: Currency) -> Decimal:
    return Decimal(f"1E-{unit.exponent}")


def exact_decimals(max_places: int = 8) -> st.SearchStrategy[Decimal]:
    """Finite decimals with up to *max_places* places, built exactly from digits."""
    return st.builds(
        lambda digits, places: Decimal(f"{digits}E-{places}"),
        st.integers(-(10**24), 10**24),
        st.integers(0, max_places),
    )


def different_currencies() -> st.SearchStrategy[tuple[Currency, Currency]]:
    return st.tuples(currencies(), currencies()).filter(lambda pair: pair[0] != pair[1])


# -- construction --------------------------------------------------------------------------


def test_of_reads_major_units_exactly() -> None:
    assert Money.of("12.34", "USD").amount_minor == 1234
    assert Money.of(Decimal("12.34"), "usd").amount_minor == 1234
    assert Money.of(12, USD).amount_minor == 1200
    assert Money.of(Fraction(1234, 100), "USD").amount_minor == 1234
    assert Money.of("1000", "JPY").amount_minor == 1000
    assert Money.of("1.234", "KWD").amount_minor == 1234
    assert Money.of("0.0001", "CLF").amount_minor == 1
    assert Money.of("7", "XAU").amount_minor == 7
    assert Money.of("1.00", "JPY").amount_minor == 1
    assert Money.of(Decimal("1E+3"), "USD").amount_minor == 100000
    assert Money.of("-0.00", "USD") == Money.zero("USD")
    assert Money.of(True + 0, "USD").amount_minor == 100


def test_from_minor_zero_and_the_constructor() -> None:
    assert Money.from_minor(1234, "USD") == Money(1234, USD) == Money.of("12.34", "USD")
    assert Money.zero("EUR").amount_minor == 0
    assert Money.zero("EUR").currency is Currency.of("EUR")
    assert type(Money(True + 1, "USD").amount_minor) is int


@given(unit=currencies(), amount=exact_decimals())
def test_of_keeps_every_representable_amount(unit: Currency, amount: Decimal) -> None:
    assume(-amount.as_tuple().exponent <= unit.exponent)  # type: ignore[operator]
    made = Money.of(amount, unit)
    assert made.amount == amount
    assert made.amount.as_tuple().exponent == -unit.exponent
    assert Money.of(str(amount), unit) == made
    assert Money.from_minor(made.amount_minor, unit).amount == amount


@given(unit=currencies(), whole=st.integers(-(10**12), 10**12), places=st.integers(0, 6),
       tail=st.integers(0, 10**6), last=st.integers(1, 9), zeros=st.integers(0, 3))  # fmt: skip
def test_precision_error_exactly_when_places_exceed_the_exponent(
    unit: Currency, whole: int, places: int, tail: int, last: int, zeros: int
) -> None:
    head = f"{tail % 10 ** (places - 1):0{places - 1}d}" if places > 1 else ""
    fraction = f"{head}{last}" if places else ""
    text = f"{whole}" + (f".{fraction}{'0' * zeros}" if places else "")
    if places > unit.exponent:
        with pytest.raises(PrecisionError) as caught:
            Money.parse(text, unit)
        assert unit.code in str(caught.value)
        assert f"{places} decimal place" in str(caught.value)
        assert "rounding=" in str(caught.value)
    else:
        assert Money.parse(text, unit).amount == Decimal(text)


@given(unit=currencies(), amount=exact_decimals(), rounding=rounding_modes())
def test_rounding_on_the_way_in_matches_decimal(
    unit: Currency, amount: Decimal, rounding: RoundingMode
) -> None:
    expected = amount.quantize(quantum(unit), rounding=rounding, context=EXACT)
    assert Money.of(amount, unit, rounding=rounding).amount == expected
    assert Money.parse(f"{amount:f}", unit, rounding=rounding).amount == expected


def test_construction_is_independent_of_the_decimal_context() -> None:
    with decimal.localcontext() as context:
        context.prec = 3
        context.traps[decimal.Inexact] = True
        context.traps[decimal.Rounded] = True
        big = Money.of(Decimal("123456789.12"), "USD")
        assert big.amount_minor == 12345678912
        assert big.amount == Decimal("123456789.12")
        assert big.multiply(Decimal("1.5")).amount_minor == 18518518368
        assert big.multiply("0.333", rounding=decimal.ROUND_HALF_EVEN).amount_minor == 4111111078
        assert str(big) == "123456789.12 USD"


# -- parsing ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "currency", "minor", "code"),
    [
        ("12.34", "USD", 1234, "USD"),
        ("  -12.34\n", "USD", -1234, "USD"),
        ("+0.50", "EUR", 50, "EUR"),
        ("1,234,567.89", "USD", 123456789, "USD"),
        ("12.34 USD", None, 1234, "USD"),
        ("12.34 usd", "USD", 1234, "USD"),
        ("USD 12.34", None, 1234, "USD"),
        ("-1,000 JPY", None, -1000, "JPY"),
        ("1.500", "USD", 150, "USD"),
        ("007", "USD", 700, "USD"),
        ("1.2345 CLF", "CLF", 12345, "CLF"),
    ],
)
def test_parse_accepts(text: str, currency: str | None, minor: int, code: str) -> None:
    parsed = Money.parse(text, currency)
    assert (parsed.amount_minor, parsed.currency.code) == (minor, code)


@pytest.mark.parametrize(
    "text",
    [
        "",
        " ",
        "NaN",
        "nan USD",
        "Infinity",
        "-inf",
        "1e3",
        "1E-2",
        "12,34",
        "1,2345",
        "1,234,56",
        ",123",
        "1.",
        ".5",
        "1..2",
        "--1",
        "+-1",
        "1 000",
        "1_000",
        "٣",
        "12.34 USD EUR",
        "$12.34",
        "12.34USD",
        "0x10",
    ],
)
def test_parse_refuses(text: str) -> None:
    with pytest.raises(InvalidInputError, match="amount"):
        Money.parse(text, "USD")


def test_parse_currency_rules() -> None:
    with pytest.raises(CurrencyMismatchError, match=r"'1.00 EUR' is an amount in EUR.*USD"):
        Money.parse("1.00 EUR", "USD")
    with pytest.raises(InvalidInputError, match="names no currency"):
        Money.parse("1.00")
    with pytest.raises(InvalidInputError, match="twice"):
        Money.parse("USD 1.00 USD")
    with pytest.raises(UnknownCurrencyError, match="'ABC'"):
        Money.parse("1.00 ABC")
    with pytest.raises(UnsupportedTypeError, match="reads a str"):
        Money.parse(Decimal("1.00"), "USD")  # type: ignore[arg-type]


def test_parse_refuses_absurdly_long_amounts() -> None:
    with pytest.raises(InvalidInputError, match=r"digits|amount"):
        Money.parse("9" * 1500, "USD")
    with pytest.raises(InvalidInputError, match="digits"):
        Money.of(Decimal("1E+5000"), "USD")
    with pytest.raises(InvalidInputError, match="digits"):
        Money.of(Decimal("1E-5000"), "USD", rounding=decimal.ROUND_HALF_EVEN)


@pytest.mark.parametrize("special", ["NaN", "sNaN", "Infinity", "-Infinity"])
def test_of_refuses_nan_and_infinity(special: str) -> None:
    with pytest.raises(InvalidInputError, match="NaN and Infinity"):
        Money.of(Decimal(special), "USD")


# -- formatting ------------------------------------------------------------------------------


def test_str_and_repr() -> None:
    assert str(Money.of("12.34", "USD")) == "12.34 USD"
    assert str(Money.of("-0.05", "USD")) == "-0.05 USD"
    assert str(Money.of("1000", "JPY")) == "1000 JPY"
    assert str(Money.of("1.5", "KWD")) == "1.500 KWD"
    assert str(Money.of("3", "XAU")) == "3 XAU"
    assert repr(Money.of("12.34", "USD")) == "Money('12.34', 'USD')"
    assert repr(Money.zero("CLF")) == "Money('0.0000', 'CLF')"


@pytest.mark.parametrize(
    ("minor", "code", "spec", "expected"),
    [
        (123456789, "USD", "", "1234567.89 USD"),
        (123456789, "USD", ",", "1,234,567.89 USD"),
        (123456789, "USD", "_", "1_234_567.89 USD"),
        (-123456789, "USD", ",", "-1,234,567.89 USD"),
        (1234, "USD", "+", "+12.34 USD"),
        (-1234, "USD", "+", "-12.34 USD"),
        (1234, "USD", " ", " 12.34 USD"),
        (1234, "USD", "-", "12.34 USD"),
        (1234, "USD", "12", "   12.34 USD"),
        (1234, "USD", "<12", "12.34 USD   "),
        (1234, "USD", "*^13", "**12.34 USD**"),
        (-1234, "USD", "=12", "-  12.34 USD"),
        (-1234, "USD", "0=+12", "-0012.34 USD"),
        (1234, "USD", "4", "12.34 USD"),
        (1000000, "JPY", ",", "1,000,000 JPY"),
    ],
)
def test_format(minor: int, code: str, spec: str, expected: str) -> None:
    assert format(Money(minor, code), spec) == expected


@pytest.mark.parametrize("spec", [".2f", "f", "d", "n", ",.2", "012", "#", "z", ",,"])
def test_format_refuses_precision_and_types(spec: str) -> None:
    with pytest.raises(ValueError, match="format spec"):
        format(Money.of("1", "USD"), spec)


@given(money())
def test_parse_reads_back_str_and_format(amount: Money) -> None:
    assert Money.parse(str(amount)) == amount
    assert Money.parse(str(amount), amount.currency) == amount
    assert Money.parse(format(amount, ",")) == amount
    assert Money.parse(format(amount, "+,")) == amount
    assert Money.parse(format(amount, ">40_").replace("_", ",")) == amount
    assert Money.parse(str(amount.amount), amount.currency) == amount
    assert Money.of(amount.amount, amount.currency) == amount
    assert Money.of(amount.to_decimal(), amount.currency.code) == amount


# -- comparing ----------------------------------------------------------------------------


@given(money_pairs())
def test_ordering_follows_amount_minor(pair: tuple[Money, Money]) -> None:
    first, second = pair
    assert (first < second) is (first.amount_minor < second.amount_minor)
    assert (first <= second) is (first.amount_minor <= second.amount_minor)
    assert (first > second) is (first.amount_minor > second.amount_minor)
    assert (first >= second) is (first.amount_minor >= second.amount_minor)
    assert (first == second) is (first.amount_minor == second.amount_minor)
    assert (first != second) is (first.amount_minor != second.amount_minor)
    assert sorted([first, second]) == sorted([second, first])
    assert max(first, second).amount_minor == max(first.amount_minor, second.amount_minor)
    if first == second:
        assert hash(first) == hash(second)


@given(money())
def test_bool_and_equality_with_itself(amount: Money) -> None:
    assert bool(amount) is (amount.amount_minor != 0)
    assert amount == Money(amount.amount_minor, amount.currency.code)
    assert amount != amount.amount_minor
    assert amount != amount.amount
    assert {amount, Money(amount.amount_minor, amount.currency)} == {amount}


@given(pair=different_currencies(), minor=st.integers(-(10**9), 10**9))
def test_mismatched_currencies_always_raise(pair: tuple[Currency, Currency], minor: int) -> None:
    first, second = Money(minor, pair[0]), Money(minor, pair[1])
    assert first != second
    assert not first == second  # noqa: SIM201 - the == operator itself is under test
    operations: list[Callable[[], object]] = [
        lambda: first + second,
        lambda: first - second,
        lambda: first < second,
        lambda: first <= second,
        lambda: first > second,
        lambda: first >= second,
    ]
    for operation in operations:
        with pytest.raises(CurrencyMismatchError) as caught:
            operation()
        assert pair[0].code in str(caught.value)
        assert pair[1].code in str(caught.value)
    with pytest.raises(CurrencyMismatchError):
        sum([first, second])


def test_mismatch_message_names_both_and_the_fix() -> None:
    with pytest.raises(CurrencyMismatchError) as caught:
        Money.of("12.34", "USD") + Money.of("1", "EUR")
    assert str(caught.value) == (
        "cannot add 12.34 USD and 1.00 EUR: the currencies differ (USD and EUR); "
        "convert one of them first"
    )
    assert isinstance(caught.value, ValueError)


# -- arithmetic --------------------------------------------------------------------------


@given(currencies().flatmap(lambda unit: st.tuples(money(unit), money(unit), money(unit))))
def test_addition_laws(triple: tuple[Money, Money, Money]) -> None:
    a, b, c = triple
    assert (a + b) + c == a + (b + c)
    assert a + b == b + a
    assert (a + b) - b == a
    assert a - a == Money.zero(a.currency)
    negated = -a
    assert -negated == a
    assert a + (-a) == Money.zero(a.currency)
    assert abs(a).amount_minor == abs(a.amount_minor)
    assert +a is a
    assert (a + b).amount_minor == a.amount_minor + b.amount_minor
    assert (a + b).currency is a.currency


@given(st.lists(money("EUR"), max_size=20))
def test_builtin_sum(amounts: list[Money]) -> None:
    total = sum(amounts, Money.zero("EUR"))
    assert total.amount_minor == sum(amount.amount_minor for amount in amounts)
    if amounts:
        assert sum(amounts) == total
    else:
        assert sum(amounts) == 0  # the empty sum is the int 0: pass a start value


@given(amount=money(), factor=st.integers(-(10**6), 10**6))
def test_int_multiplication_is_exact(amount: Money, factor: int) -> None:
    assert (amount * factor).amount_minor == amount.amount_minor * factor
    assert factor * amount == amount * factor
    assert amount.multiply(factor) == amount * factor
    assert amount * Decimal(factor) == amount * factor
    assert amount.multiply(str(factor)) == amount * factor


@given(amount=money(), factor=exact_decimals(max_places=10), rounding=rounding_modes())
def test_multiply_with_rounding_equals_the_decimal_reference(
    amount: Money, factor: Decimal, rounding: RoundingMode
) -> None:
    exact = EXACT.multiply(amount.amount, factor)
    expected = exact.quantize(quantum(amount.currency), rounding=rounding, context=EXACT)
    assert amount.multiply(factor, rounding=rounding).amount == expected
    assert amount.multiply(f"{factor:f}", rounding=rounding).amount == expected
    representable = exact == exact.quantize(quantum(amount.currency), context=EXACT)
    if representable:
        assert (amount * factor).amount == exact
        assert amount.multiply(factor).amount == exact
    else:
        with pytest.raises(PrecisionError, match=r"multiply\(.*rounding="):
            amount * factor


@given(amount=money(), factor=st.fractions(max_denominator=1000), rounding=rounding_modes())
def test_multiply_by_fraction(amount: Money, factor: Fraction, rounding: RoundingMode) -> None:
    product = amount.amount_minor * factor
    numerator, denominator = product.numerator, product.denominator
    rounded = amount.multiply(factor, rounding=rounding).amount_minor
    assert abs(rounded * denominator - numerator) < denominator  # within one minor unit
    if denominator == 1:
        assert rounded == numerator


def test_multiply_and_divide_messages() -> None:
    price = Money.of("12.34", "USD")
    with pytest.raises(PrecisionError) as caught:
        price * Decimal("0.333")
    assert str(caught.value) == (
        "12.34 USD * 0.333 = 4.10922 USD, which has 5 decimal places but USD has 2 "
        "(minor unit exponent 2); use m.multiply(Decimal('0.333'), "
        "rounding=decimal.ROUND_HALF_EVEN) or another mode"
    )
    assert price.multiply("0.333", rounding=decimal.ROUND_HALF_EVEN) == Money(411, "USD")
    divisions: list[Callable[[], object]] = [lambda: price / 2, lambda: price // 2]
    for operation in divisions:
        with pytest.raises(UnsupportedTypeError, match=r"split\(n\).*allocate\(ratios\)"):
            operation()
    with pytest.raises(UnsupportedTypeError, match="money times money"):
        price * price  # type: ignore[operator]
    with pytest.raises(InvalidInputError, match="plain digits"):
        price.multiply("1e3")
    with pytest.raises(InvalidInputError, match="NaN"):
        price.multiply(Decimal("NaN"))
    with pytest.raises(UnsupportedTypeError, match="bool"):
        price * True
    with pytest.raises(TypeError):
        price * "2"  # type: ignore[operator]


def test_numbers_do_not_mix_with_money() -> None:
    price: Any = Money.of("12.34", "USD")  # Any: type checkers refuse these already
    cases: list[Callable[[], object]] = [
        lambda: price + 1,
        lambda: 1 + price,
        lambda: price - 1,
        lambda: 1 - price,
        lambda: price + Decimal(1),
        lambda: price < 5,
        lambda: 5 > price,  # noqa: SIM300 - the reflected operator is under test
        lambda: price >= Decimal(0),
        lambda: False + price,
    ]
    for operation in cases:
        with pytest.raises(UnsupportedTypeError, match=r"same currency|compare"):
            operation()
    assert 0 + price is price
    with pytest.raises(TypeError):
        price + "1.00"
    with pytest.raises(TypeError):
        price < "1.00"  # noqa: B015


# -- floats ------------------------------------------------------------------------------------


@given(amount=money(), value=st.floats())
def test_floats_are_always_refused(amount: Money, value: float) -> None:
    unit = amount.currency
    loose: Any = value  # Any: type checkers refuse these already
    half_even: RoundingMode = decimal.ROUND_HALF_EVEN
    operations: list[Callable[[], object]] = [
        lambda: Money.of(loose, unit),
        lambda: Money.parse(loose, unit),
        lambda: Money(loose, unit),
        lambda: Money.from_minor(loose, unit),
        lambda: amount + loose,
        lambda: loose + amount,
        lambda: amount - loose,
        lambda: loose - amount,
        lambda: amount * loose,
        lambda: loose * amount,
        lambda: amount < loose,
        lambda: loose <= amount,
        lambda: amount.multiply(loose),
        lambda: amount.multiply(loose, rounding=half_even),
        lambda: amount.convert(loose, "EUR", rounding=half_even),
        lambda: amount.allocate([1, loose]),
        lambda: amount.split(loose),
    ]
    for operation in operations:
        with pytest.raises(UnsupportedTypeError, match="float") as caught:
            operation()
        assert "Decimal" in str(caught.value)
        assert isinstance(caught.value, TypeError)
    assert amount != value


def test_float_message_says_why_and_what_to_pass() -> None:
    with pytest.raises(UnsupportedTypeError) as caught:
        Money.of(0.1, "USD")  # type: ignore[arg-type]
    assert str(caught.value) == (
        "Money.of() got the float 0.1: money is never a float, because binary floats cannot "
        "hold decimal amounts exactly (0.1 + 0.2 == 0.30000000000000004); pass a str such as "
        "'12.34', a decimal.Decimal or an int instead"
    )


@pytest.mark.parametrize("value", [True, False])
def test_bools_are_not_amounts(value: bool) -> None:
    with pytest.raises(UnsupportedTypeError, match="bool"):
        Money.of(value, "USD")
    with pytest.raises(UnsupportedTypeError):
        Money(value, "USD")
    with pytest.raises(UnsupportedTypeError):
        Money.of("1", "USD").split(value)
    with pytest.raises(UnsupportedTypeError, match="bool"):
        Money.of("1", "USD").allocate([value, 1])


# -- error messages ------------------------------------------------------------------------


def test_precision_messages_name_currency_exponent_and_fix() -> None:
    with pytest.raises(PrecisionError) as caught:
        Money.parse("1.005", "USD")
    assert str(caught.value) == (
        "1.005 has 3 decimal places but USD has 2 (minor unit exponent 2); "
        "pass rounding=decimal.ROUND_HALF_EVEN (or another mode) to round"
    )
    assert isinstance(caught.value, ValueError)
    with pytest.raises(PrecisionError, match=r"^1\.5 has 1 decimal place but JPY has 0 \("):
        Money.of("1.5", "JPY")
    with pytest.raises(PrecisionError, match=r"1\.0005 has 4 decimal places but KWD has 3"):
        Money.of(Decimal("1.0005"), "KWD")
    with pytest.raises(
        PrecisionError, match=r"XAU has none \(ISO 4217 lists its minor unit as N\.A\."
    ):
        Money.of("0.5", "XAU")
    with pytest.raises(PrecisionError, match=r"1/3 has endless decimal places but USD has 2"):
        Money.of(Fraction(1, 3), "USD")
    assert Money.parse("1.005", "USD", rounding=decimal.ROUND_HALF_EVEN) == Money(100, "USD")
    assert Money.parse("1.005", "USD", rounding=decimal.ROUND_HALF_UP) == Money(101, "USD")


def test_other_input_errors() -> None:
    with pytest.raises(UnknownCurrencyError, match="'US'"):
        Money.of("1", "US")
    with pytest.raises(UnsupportedTypeError, match="Currency or a code"):
        Money.of("1", 840)  # type: ignore[arg-type]
    with pytest.raises(UnsupportedTypeError, match=r"Money\.of\('12\.34', 'USD'\)"):
        Money("12.34", "USD")  # type: ignore[arg-type]
    with pytest.raises(InvalidInputError, match="unknown rounding mode"):
        Money.of("1", "USD", rounding="nearest")  # type: ignore[arg-type]
    with pytest.raises(UnsupportedTypeError, match="takes an int"):
        Money.of([1], "USD")  # type: ignore[arg-type]


# -- value behaviour -------------------------------------------------------------------------


@given(money())
def test_pickle_copy_and_immutability(amount: Money) -> None:
    assert pickle.loads(pickle.dumps(amount)) == amount
    assert pickle.loads(pickle.dumps(amount)).currency is amount.currency
    assert copy.copy(amount) == amount
    assert copy.deepcopy(amount).currency is amount.currency


def test_frozen_and_slotted() -> None:
    price = Money.of("1", "USD")
    with pytest.raises(attrs.exceptions.FrozenInstanceError):
        price.amount_minor = 5  # type: ignore[misc]
    assert not hasattr(price, "__dict__")


# -- split and allocate ------------------------------------------------------------------------

ratio_values = st.one_of(
    st.integers(0, 10**6),
    st.builds(lambda digits, places: Decimal(f"{digits}E-{places}"), st.integers(0, 10**6),
              st.integers(0, 6)),
    st.fractions(min_value=0, max_value=10**4, max_denominator=1000),
)  # fmt: skip


@given(amount=money(), ratios=st.lists(ratio_values, min_size=1, max_size=12))
def test_allocate_never_loses_or_invents_a_minor_unit(
    amount: Money, ratios: list[int | Decimal | Fraction]
) -> None:
    exact = [Fraction(ratio) for ratio in ratios]
    assume(any(exact))
    parts = amount.allocate(ratios)
    assert len(parts) == len(ratios)
    assert all(part.currency is amount.currency for part in parts)
    assert sum(parts, Money.zero(amount.currency)) == amount
    total = sum(exact)
    for part, share in zip(parts, exact, strict=True):
        assert abs(part.amount_minor - amount.amount_minor * share / total) < 1
        if share == 0:
            assert part.amount_minor == 0
    assert (-amount).allocate(ratios) == tuple(-part for part in parts)
    assert amount.allocate(ratios) == parts
    assert amount.allocate(tuple(ratios)) == parts


def test_allocate_examples() -> None:
    hundred = Money.of("100.00", "USD")
    assert [str(part) for part in hundred.allocate([1, 1, 1])] == [
        "33.34 USD",
        "33.33 USD",
        "33.33 USD",
    ]
    assert hundred.allocate([70, 20, 10]) == (
        Money.of("70", "USD"),
        Money.of("20", "USD"),
        Money.of("10", "USD"),
    )
    assert Money(5, "USD").allocate([Decimal("0.5"), Fraction(1, 2), 0]) == (
        Money(3, "USD"),
        Money(2, "USD"),
        Money(0, "USD"),
    )
    assert Money(-5, "JPY").allocate([1, 1]) == (Money(-3, "JPY"), Money(-2, "JPY"))
    assert Money.zero("USD").allocate([1, 2]) == (Money.zero("USD"), Money.zero("USD"))


@pytest.mark.parametrize(
    ("ratios", "error", "match"),
    [
        ([], InvalidInputError, "at least one ratio"),
        ([0, 0], InvalidInputError, "all zero"),
        ([1, -1], InvalidInputError, r"ratio 1 is negative \(-1\)"),
        ([Decimal("-0.5")], InvalidInputError, r"ratio 0 is negative \(-0\.5\)"),
        ([Decimal("NaN")], InvalidInputError, "NaN"),
        ([Decimal("Infinity")], InvalidInputError, "Infinity"),
        (["1"], UnsupportedTypeError, r"ratio 0 takes an int"),
        ([None], UnsupportedTypeError, "takes an int"),
        ([1, 0.5], UnsupportedTypeError, "ratio 1 got the float 0.5"),
    ],
)
def test_allocate_refuses_bad_ratios(
    ratios: list[object], error: type[Exception], match: str
) -> None:
    with pytest.raises(error, match=match):
        Money.of("1", "USD").allocate(ratios)  # type: ignore[arg-type]


@given(amount=money(), parts=st.integers(1, 50))
def test_split_is_exact_and_even(amount: Money, parts: int) -> None:
    pieces = amount.split(parts)
    assert len(pieces) == parts
    assert sum(pieces, Money.zero(amount.currency)) == amount
    magnitudes = [abs(piece.amount_minor) for piece in pieces]
    assert max(magnitudes) - min(magnitudes) <= 1
    assert magnitudes == sorted(magnitudes, reverse=True)
    assert (-amount).split(parts) == tuple(-piece for piece in pieces)


def test_split_examples_and_errors() -> None:
    assert [str(part) for part in Money.of("10.00", "USD").split(3)] == [
        "3.34 USD",
        "3.33 USD",
        "3.33 USD",
    ]
    assert Money.of("-10", "JPY").split(4) == (
        Money(-3, "JPY"),
        Money(-3, "JPY"),
        Money(-2, "JPY"),
        Money(-2, "JPY"),
    )
    assert Money.of("0.01", "USD").split(3) == (
        Money(1, "USD"),
        Money(0, "USD"),
        Money(0, "USD"),
    )
    for bad in (0, -2):
        with pytest.raises(InvalidInputError, match=f"1 to 10,000 parts, not {bad}"):
            Money.of("1", "USD").split(bad)
    with pytest.raises(UnsupportedTypeError, match="int number of parts"):
        Money.of("1", "USD").split("3")  # type: ignore[arg-type]


# -- convert -------------------------------------------------------------------------------


def test_convert() -> None:
    ten = Money.of("10.00", "USD")
    assert ten.convert("0.92", "EUR") == Money.of("9.20", "EUR")
    assert ten.convert(Decimal("151.5"), "JPY") == Money.of("1515", "JPY")
    assert ten.convert("0.3", "KWD") == Money.of("3.000", "KWD")
    assert Money.of("1", "USD").convert("0.333", "EUR", rounding=decimal.ROUND_HALF_EVEN) == (
        Money.of("0.33", "EUR")
    )
    with pytest.raises(PrecisionError, match=r"rounding=decimal\.ROUND_HALF_EVEN"):
        Money.of("1", "USD").convert("0.333", "EUR")
    for rate in ("0", "-1.5", 0):
        with pytest.raises(InvalidInputError, match="positive"):
            ten.convert(rate, "EUR")


@given(amount=money(), rate=exact_decimals(max_places=8), to=currencies(), mode=rounding_modes())
def test_convert_equals_the_decimal_reference(
    amount: Money, rate: Decimal, to: Currency, mode: RoundingMode
) -> None:
    assume(rate > 0)
    exact = EXACT.multiply(amount.amount, rate)
    expected = exact.quantize(quantum(to), rounding=mode, context=EXACT)
    converted = amount.convert(rate, to, rounding=mode)
    assert converted.currency is to
    assert converted.amount == expected


def test_amounts_in_two_private_currencies_of_one_code_do_not_mix() -> None:
    whole = Currency("ZZP", 0, 0, "Loyalty points")
    hundredths = Currency("ZZP", 0, 2, "Loyalty points")
    a, b = Money(100, whole), Money(100, hundredths)
    assert a != b
    with pytest.raises(CurrencyMismatchError):
        a + b
    with pytest.raises(CurrencyMismatchError):
        a - b
    with pytest.raises(CurrencyMismatchError):
        a < b  # noqa: B015
    assert a + Money(1, Currency("ZZP", 0, 0, "Loyalty points")) == Money(101, whole)


@pytest.mark.parametrize("digits", [4_301, 20_000])
def test_huge_amounts_show_without_a_foreign_error(digits: int) -> None:
    huge = Money(10**digits, "USD")
    for text in (str(huge), repr(huge), format(huge, ","), f"{-huge}"):
        assert "USD" in text
        assert digits < 5_000 or "digits" in text
    assert huge.amount == Decimal(10**digits).scaleb(-2, context=Context(prec=digits + 5))
    assert str(Money(10**4000, "JPY")) == "1" + "0" * 4000 + " JPY"


@pytest.mark.parametrize(
    "factor",
    [
        Fraction(10**4400 + 1, 3),  # the message would need 4,400 digits
        Fraction(1, 5**200_000),  # 5^n: counting its decimal places takes quadratic time
        Fraction(1, 7 * 10**5000),
        10**5000,
        -(10**5000),
    ],
    ids=["long-message", "five-power", "huge-denominator", "huge-int", "huge-negative-int"],
)
def test_huge_fractions_and_ints_are_refused_quickly(factor: object) -> None:
    started = time.perf_counter()
    m = Money.of("1.00", "USD")
    messages = []
    for call in (
        lambda: Money.of(factor, "USD"),  # type: ignore[arg-type]
        lambda: m.multiply(factor),  # type: ignore[arg-type]
        lambda: m.convert(factor, "EUR"),  # type: ignore[arg-type]
        lambda: m.allocate([factor, 1]),  # type: ignore[list-item]
    ):
        try:
            call()
        except CommerceKitError as exc:
            messages.append(str(exc))
    assert all(len(message) < 2_000 for message in messages)
    assert time.perf_counter() - started < 1.0
