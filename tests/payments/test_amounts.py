"""Per-provider currency quirks: zero- and three-decimal currencies, multiples of 10 and 100."""

from __future__ import annotations

import pytest
from hypothesis import given

from commercekit.errors import InvalidInputError
from commercekit.money import Money
from commercekit.payments import ISO_AMOUNTS, STRIPE_AMOUNTS, AmountRules
from tests.strategies import money


def test_stripe_writes_isk_with_two_decimals_in_whole_kronur() -> None:
    assert STRIPE_AMOUNTS.to_provider(Money.of("5", "ISK")) == 500
    assert STRIPE_AMOUNTS.from_provider(500, "ISK") == Money.of("5", "ISK")


def test_zero_decimal_currencies_are_whole_units() -> None:
    assert STRIPE_AMOUNTS.to_provider(Money.of("500", "JPY")) == 500
    assert STRIPE_AMOUNTS.to_provider(Money.of("10.00", "USD")) == 1000


def test_three_decimal_currencies_go_in_tens_at_stripe() -> None:
    assert STRIPE_AMOUNTS.to_provider(Money.of("5.120", "KWD")) == 5120
    with pytest.raises(InvalidInputError, match=r"5\.120 KWD or 5\.130 KWD"):
        STRIPE_AMOUNTS.to_provider(Money.of("5.124", "KWD"))
    assert ISO_AMOUNTS.to_provider(Money.of("5.124", "KWD")) == 5124


def test_a_provider_with_fewer_decimals_refuses_what_it_cannot_write() -> None:
    rules = AmountRules(exponents={"CLP": 0, "IDR": 0}, multiples={"HUF": 100})
    assert rules.to_provider(Money.of("1500", "CLP")) == 1500
    assert rules.to_provider(Money.of("1500.00", "IDR")) == 1500
    with pytest.raises(InvalidInputError, match="more decimals"):
        rules.to_provider(Money.of("1500.50", "IDR"))
    with pytest.raises(InvalidInputError, match=r"steps of 1\.00 HUF"):
        rules.to_provider(Money.of("10.50", "HUF"))
    assert rules.from_provider(1500, "IDR") == Money.of("1500", "IDR")


def test_unsupported_currencies_are_refused() -> None:
    rules = AmountRules(supported=frozenset({"USD"}))
    with pytest.raises(InvalidInputError, match="EUR"):
        rules.to_provider(Money.of("1.00", "EUR"))


@given(money(min_minor=0, max_minor=10**12))
def test_iso_rules_round_trip_every_currency(amount: Money) -> None:
    assert ISO_AMOUNTS.from_provider(ISO_AMOUNTS.to_provider(amount), amount.currency) == amount
