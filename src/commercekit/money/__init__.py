"""Money and currencies: integer minor units with an ISO 4217 currency, never a float.

::

    >>> from commercekit.money import Money
    >>> price = Money.of("19.99", "USD")
    >>> price * 3
    Money('59.97', 'USD')
    >>> [str(part) for part in Money.of("100.00", "USD").split(3)]
    ['33.34 USD', '33.33 USD', '33.33 USD']

See ``docs/money.md`` for the rules: what is exact, what rounds and only when
told, and what raises which error.
"""

from commercekit.money._allocate import ROUNDING_MODES, RoundingMode
from commercekit.money._currency import ISO_4217_PUBLISHED, Currency, currencies, currency
from commercekit.money._money import Factor, Money

__all__ = [
    "ISO_4217_PUBLISHED",
    "ROUNDING_MODES",
    "Currency",
    "Factor",
    "Money",
    "RoundingMode",
    "currencies",
    "currency",
]
