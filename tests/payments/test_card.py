"""Cards: Luhn, brands, masking, and digits that never show."""

from __future__ import annotations

import pickle

import pytest
from hypothesis import given
from hypothesis import strategies as st

from commercekit.errors import InvalidInputError, UnsupportedTypeError
from commercekit.payments import (
    Card,
    CardBrand,
    CardNumber,
    ProviderToken,
    SecurityCode,
    luhn_valid,
    mask_number,
)


@pytest.mark.parametrize(
    ("number", "brand"),
    [
        ("4242424242424242", CardBrand.VISA),
        ("5555555555554444", CardBrand.MASTERCARD),
        ("2223003122003222", CardBrand.MASTERCARD),
        ("378282246310005", CardBrand.AMEX),
        ("6011111111111117", CardBrand.DISCOVER),
        ("3056930009020004", CardBrand.DINERS),
        ("3566002020360505", CardBrand.JCB),
        ("6200000000000005", CardBrand.UNIONPAY),
    ],
)
def test_brands_are_detected(number: str, brand: CardBrand) -> None:
    assert CardNumber(number).brand is brand


def test_masking_shows_first_six_and_last_four_at_most() -> None:
    assert CardNumber("4242 4242 4242 4242").masked == "424242******4242"
    assert CardNumber("378282246310005").masked == "378282*****0005"
    assert mask_number("123456789012") == "********9012"


@given(st.text(alphabet="0123456789", min_size=12, max_size=19))
def test_a_number_is_never_shown(digits: str) -> None:
    if not luhn_valid(digits):
        with pytest.raises(InvalidInputError) as info:
            CardNumber(digits)
        assert digits not in str(info.value)
        return
    number = CardNumber(digits)
    card = Card(number, 1, 2030, cvv="9731")
    for text in (repr(number), str(number), f"{number}", repr(card), str(card), f"{card!r:>80}"):
        assert digits not in text
        assert "9731" not in text.replace(number.masked, "")  # the shown digits may hold it
    assert number.reveal() == digits


def test_luhn() -> None:
    assert luhn_valid("4242424242424242")
    assert not luhn_valid("4242424242424241")
    assert not luhn_valid("42x2")


@pytest.mark.parametrize("bad", ["1234", "4242-4242-4242-424a", "4242424242424241", "4" * 20])
def test_bad_numbers_are_refused(bad: str) -> None:
    with pytest.raises(InvalidInputError):
        CardNumber(bad)


def test_types_and_expiry_are_checked() -> None:
    with pytest.raises(UnsupportedTypeError):
        CardNumber(4242424242424242)  # type: ignore[arg-type]
    with pytest.raises(InvalidInputError, match="exp_month"):
        Card("4242424242424242", 13, 2030)
    with pytest.raises(InvalidInputError, match="exp_year"):
        Card("4242424242424242", 1, 30)
    with pytest.raises(InvalidInputError, match="security code"):
        SecurityCode("12")
    with pytest.raises(InvalidInputError):
        ProviderToken("")
    card = Card("4242424242424242", 5, 2030, cvv="123")
    assert card.expired(2030, 6)
    assert not card.expired(2030, 5)
    assert card.without_cvv().cvv is None


def test_card_data_does_not_pickle_or_change() -> None:
    number = CardNumber("4242424242424242")
    with pytest.raises(TypeError, match="CardVault"):
        pickle.dumps(number)
    with pytest.raises(TypeError):
        pickle.dumps(SecurityCode("123"))
    with pytest.raises(AttributeError):
        number._digits = "1"  # type: ignore[misc]
    assert number == CardNumber("4242 4242 4242 4242")
    assert hash(number) == hash(CardNumber("4242424242424242"))
    assert SecurityCode("123") == SecurityCode("123")
    assert str(SecurityCode("123")) == "***"


@pytest.mark.parametrize(
    ("month", "year"),
    [(10**4300, 2030), (12, 10**4300), (12, "x" * 100_000), (None, 2030)],
    ids=["huge-month", "huge-year", "long-year", "no-month"],
)
def test_hostile_expiry_fields_get_a_short_typed_error(month: object, year: object) -> None:
    with pytest.raises(InvalidInputError) as caught:
        Card("4242424242424242", month, year)  # type: ignore[arg-type]
    assert len(str(caught.value)) < 120
