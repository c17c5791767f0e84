"""Money basics: exact amounts, explicit rounding, and splits that never lose a cent.

Run it as it is: ``python examples/money_basics.py``.
"""

from __future__ import annotations

import decimal
from collections.abc import Callable

from commercekit.errors import CurrencyMismatchError, PrecisionError, UnsupportedTypeError
from commercekit.money import Currency, Money


def main() -> None:
    # Amounts come in as text or Decimal, never as float, and are held in cents.
    lamp = Money.of("49.99", "USD")
    bulbs = Money.parse("3.49 USD") * 4
    subtotal = sum([lamp, bulbs], Money.zero("USD"))
    print(f"subtotal          {subtotal:>14,}")

    # Tax is a multiplication that needs rounding: say how, once.
    tax = subtotal.multiply("0.0825", rounding=decimal.ROUND_HALF_EVEN)
    total = subtotal + tax
    print(f"tax at 8.25%      {tax:>14,}")
    print(f"total             {total:>14,}")

    # Three friends split the bill: the parts add up to the total exactly.
    shares = total.split(3)
    print("split three ways ", ", ".join(str(share) for share in shares))
    assert sum(shares, Money.zero("USD")) == total

    # A 10.00 discount spread over the two lines in proportion to their prices.
    discount = Money.of("10.00", "USD").allocate([lamp.amount_minor, bulbs.amount_minor])
    print("discount by line ", ", ".join(str(part) for part in discount))

    # Currencies carry their ISO 4217 minor units.
    for code in ("JPY", "USD", "KWD", "CLF", "XAU"):
        unit = Currency.of(code)
        minor = "N.A." if not unit.has_minor_unit else str(unit.exponent)
        print(f"{unit.code} ({unit.name}): minor unit exponent {minor}, one is {Money.of(1, unit)}")

    # Mistakes get typed errors that say what to do.
    mistakes: list[Callable[[], object]] = [
        lambda: Money.parse("1.005", "USD"),
        lambda: lamp + Money.of("1", "EUR"),
        lambda: Money.of(0.1, "USD"),  # type: ignore[arg-type]  # a float, refused on purpose
    ]
    for mistake in mistakes:
        try:
            mistake()
        except (PrecisionError, CurrencyMismatchError, UnsupportedTypeError) as error:
            print(f"{type(error).__name__}: {error}")


if __name__ == "__main__":
    main()
