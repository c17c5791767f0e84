"""Tests for commercekit.money._currency and the ISO 4217 table behind it."""

from __future__ import annotations

import copy
import datetime
import pickle

import attrs
import pytest
from hypothesis import given

from commercekit.errors import (
    InvalidInputError,
    NotFoundError,
    UnknownCurrencyError,
    UnsupportedTypeError,
)
from commercekit.money import ISO_4217_PUBLISHED, Currency, currencies, currency
from commercekit.money._iso4217 import PUBLISHED, TABLE
from tests.strategies import currencies as any_currency

# (code, numeric, exponent, has_minor_unit, is_fund, name), checked against
# the published ISO 4217 list one by hand.
WELL_KNOWN = [
    ("USD", 840, 2, True, False, "US Dollar"),
    ("EUR", 978, 2, True, False, "Euro"),
    ("GBP", 826, 2, True, False, "Pound Sterling"),
    ("JPY", 392, 0, True, False, "Yen"),
    ("CHF", 756, 2, True, False, "Swiss Franc"),
    ("CNY", 156, 2, True, False, "Yuan Renminbi"),
    ("INR", 356, 2, True, False, "Indian Rupee"),
    ("KRW", 410, 0, True, False, "Won"),
    ("ISK", 352, 0, True, False, "Iceland Krona"),
    ("KWD", 414, 3, True, False, "Kuwaiti Dinar"),
    ("BHD", 48, 3, True, False, "Bahraini Dinar"),
    ("TND", 788, 3, True, False, "Tunisian Dinar"),
    ("OMR", 512, 3, True, False, "Rial Omani"),
    ("CLF", 990, 4, True, True, "Unidad de Fomento"),
    ("UYW", 927, 4, True, False, "Unidad Previsional"),
    ("CLP", 152, 0, True, False, "Chilean Peso"),
    ("ALL", 8, 2, True, False, "Lek"),
    ("XAU", 959, 0, False, False, "Gold"),
    ("XAG", 961, 0, False, False, "Silver"),
    ("XDR", 960, 0, False, False, "SDR (Special Drawing Right)"),
    ("XTS", 963, 0, False, False, "Codes specifically reserved for testing purposes"),
    (
        "XXX",
        999,
        0,
        False,
        False,
        "The codes assigned for transactions where no currency is involved",
    ),
]

NO_MINOR_UNIT = {
    "XAG", "XAU", "XBA", "XBB", "XBC", "XBD", "XDR", "XPD", "XPT", "XSU", "XTS", "XUA", "XXX",
}  # fmt: skip


@pytest.mark.parametrize(("code", "numeric", "exponent", "has_minor", "fund", "name"), WELL_KNOWN)
def test_well_known_entries(
    code: str, numeric: int, exponent: int, has_minor: bool, fund: bool, name: str
) -> None:
    found = Currency.of(code)
    assert (found.code, found.numeric, found.exponent) == (code, numeric, exponent)
    assert (found.has_minor_unit, found.is_fund, found.name) == (has_minor, fund, name)
    assert found.minor_per_major == 10**exponent


def test_table_is_list_one_of_2026_01_01() -> None:
    assert ISO_4217_PUBLISHED == PUBLISHED == datetime.date(2026, 1, 1)
    assert len(TABLE) == len(currencies()) == 178
    codes = [item.code for item in currencies()]
    assert codes == sorted(codes)
    assert len({item.numeric for item in currencies()}) == 178


def test_na_minor_units_are_flagged_with_exponent_zero() -> None:
    assert {item.code for item in currencies() if not item.has_minor_unit} == NO_MINOR_UNIT
    assert all(Currency.of(code).exponent == 0 for code in NO_MINOR_UNIT)


def test_fund_codes() -> None:
    funds = {item.code for item in currencies() if item.is_fund}
    assert funds == {"BOV", "CHE", "CHW", "CLF", "COU", "MXV", "USN", "UYI"}


def test_withdrawn_codes_are_not_in_the_table() -> None:
    for code in ("HRK", "SLL", "CUC", "DEM", "VEF", "ZWL"):
        with pytest.raises(UnknownCurrencyError):
            Currency.of(code)


@given(any_currency())
def test_every_currency_is_found_every_way(item: Currency) -> None:
    assert Currency.of(item.code) is item
    assert Currency.of(item.code.lower()) is item
    assert Currency.of(item.code.title()) is item
    assert currency(item.numeric) is item
    assert currency(f"{item.numeric:03d}") is item
    assert currency(item) is item
    assert len(item.code) == 3
    assert item.code.isascii()
    assert item.code.isupper()
    assert 0 <= item.numeric <= 999
    assert item.exponent in (0, 2, 3, 4)
    assert item.has_minor_unit or item.exponent == 0


@given(any_currency())
def test_interned_through_copy_and_pickle(item: Currency) -> None:
    assert copy.copy(item) is item
    assert copy.deepcopy(item) is item
    assert pickle.loads(pickle.dumps(item)) is item


@given(any_currency(), any_currency())
def test_equality_and_hash_follow_the_code(first: Currency, second: Currency) -> None:
    assert (first == second) is (first.code == second.code)
    assert (first != second) is (first.code != second.code)
    if first == second:
        assert hash(first) == hash(second)


def test_str_and_repr() -> None:
    usd = Currency.of("USD")
    assert str(usd) == "USD"
    assert repr(usd) == "Currency.of('USD')"
    assert eval(repr(usd), {"Currency": Currency}) is usd
    assert Currency.of("USD") != "USD"


def test_is_frozen() -> None:
    with pytest.raises(attrs.exceptions.FrozenInstanceError):
        Currency.of("USD").exponent = 3  # type: ignore[misc]


def test_unknown_code_message_names_it_and_says_what_is_valid() -> None:
    with pytest.raises(UnknownCurrencyError) as caught:
        Currency.of("USX")
    message = str(caught.value)
    assert "'USX'" in message
    assert "ISO 4217" in message
    assert "'USD'" in message
    assert "840" in message
    assert "currencies()" in message
    assert "did you mean" in message
    assert isinstance(caught.value, LookupError)
    assert isinstance(caught.value, NotFoundError)


@pytest.mark.parametrize(
    "code", ["", "US", "USDD", "U$D", "123", "1000", 1000, -1, " USD", "\uff35\uff33\uff24"]
)
def test_unknown_codes(code: str | int) -> None:
    with pytest.raises(UnknownCurrencyError, match="ISO 4217"):
        currency(code)


@pytest.mark.parametrize("value", [True, 8.40, None, b"USD", ["USD"]])
def test_other_types_are_refused(value: object) -> None:
    with pytest.raises(UnsupportedTypeError, match="'USD'"):
        currency(value)  # type: ignore[arg-type]


def test_private_currency_outside_the_table() -> None:
    points = Currency("ZZP", 0, 0, "Loyalty points")
    assert points.code == "ZZP"
    assert points.has_minor_unit
    assert points.minor_per_major == 1
    assert points == Currency("ZZP", 0, 0, "Loyalty points")
    assert pickle.loads(pickle.dumps(points)) == points
    assert repr(points).startswith("Currency('ZZP', 0, 0,")
    with pytest.raises(UnknownCurrencyError):
        Currency.of("ZZP")


@pytest.mark.parametrize(
    ("args", "kwargs", "match"),
    [
        (("USD", 840, 2, "US Dollar"), {}, r"Currency\.of\('USD'\)"),
        (("usd", 1, 2, "x"), {}, "three letters"),
        (("ABC", 1000, 2, "x"), {}, "numeric"),
        (("ABC", 1, -1, "x"), {}, "exponent"),
        (("ABC", 1, 10**9, "x"), {}, "exponent"),
        (("ABC", 1, 2, "x"), {"has_minor_unit": False}, "exponent must be 0"),
    ],
)
def test_direct_construction_is_checked(
    args: tuple[object, ...], kwargs: dict[str, object], match: str
) -> None:
    with pytest.raises(InvalidInputError, match=match):
        Currency(*args, **kwargs)  # type: ignore[arg-type]


def test_private_currencies_with_one_code_are_equal_only_when_the_same() -> None:
    points = Currency("ZZP", 0, 0, "Loyalty points")
    cents = Currency("ZZP", 0, 2, "Loyalty points")
    renamed = Currency("ZZP", 0, 0, "Reward points")
    assert points != cents
    assert points != renamed
    assert (points == cents) is False
    assert points == Currency("ZZP", 0, 0, "Loyalty points")
    assert Currency.of("USD") == Currency.of("usd")
