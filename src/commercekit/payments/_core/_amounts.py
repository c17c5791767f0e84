"""Per-provider currency quirks: how a provider writes an amount, and what it refuses.

ISO 4217 says how many decimals a currency has; providers do not always
agree. Stripe writes ISK with two decimals although it has none, and wants
three-decimal currencies (BHD, JOD, KWD, OMR, TND) in multiples of 10. An
:class:`AmountRules` turns :class:`~commercekit.money.Money` into the
provider's integer and back, and refuses an amount the provider would
refuse, before anything is sent, naming the nearest amounts it would take.
"""

from __future__ import annotations

from collections.abc import Mapping
from types import MappingProxyType
from typing import Final

import attrs

from commercekit.errors import InvalidInputError
from commercekit.money import Currency, Money, currency

__all__ = ["ISO_AMOUNTS", "STRIPE_AMOUNTS", "AmountRules"]


def _ten(power: int) -> int:
    result: int = 10**power
    return result


def _frozen_map(value: Mapping[str, int]) -> Mapping[str, int]:
    return MappingProxyType({code.upper(): int(n) for code, n in value.items()})


@attrs.frozen
class AmountRules:
    """How one provider writes amounts.

    *exponents* overrides the ISO exponent of a currency code (the provider's
    decimal places); *multiples* says an amount in a currency, in the
    provider's units, must be a multiple of that number; *supported*, when
    given, is the set of currency codes the provider takes at all.
    """

    exponents: Mapping[str, int] = attrs.field(factory=dict, converter=_frozen_map)
    multiples: Mapping[str, int] = attrs.field(factory=dict, converter=_frozen_map)
    supported: frozenset[str] | None = None

    def exponent(self, unit: Currency) -> int:
        """The number of decimals the provider writes for *unit*."""
        return self.exponents.get(unit.code, unit.exponent)

    def to_provider(self, amount: Money) -> int:
        """Return *amount* as the provider's integer, or raise if the provider would refuse it.

        Raises:
            InvalidInputError: the provider does not take the currency, or
                the amount is not a multiple the provider accepts (the
                message names the nearest amounts that are).
        """
        unit = amount.currency
        if self.supported is not None and unit.code not in self.supported:
            raise InvalidInputError(f"this provider does not take {unit.code}")
        shift = self.exponent(unit) - unit.exponent
        if shift >= 0:
            value = amount.amount_minor * _ten(shift)
        else:
            value, rest = divmod(amount.amount_minor, _ten(-shift))
            if rest:
                raise InvalidInputError(
                    f"{amount} has more decimals than this provider writes for {unit.code}"
                )
        multiple = self.multiples.get(unit.code, 1)
        if value % multiple:
            low = value - value % multiple
            raise InvalidInputError(
                f"this provider takes {unit.code} only in steps of "
                f"{self.from_provider(multiple, unit)}; {amount} is not one: use "
                f"{self.from_provider(low, unit)} or {self.from_provider(low + multiple, unit)}"
            )
        return value

    def from_provider(self, value: int, unit: Currency | str) -> Money:
        """Return the provider's integer *value* in *unit* as Money."""
        unit = currency(unit) if isinstance(unit, str) else unit
        shift = self.exponent(unit) - unit.exponent
        if shift >= 0:
            minor, rest = divmod(value, _ten(shift))
            if rest:
                raise InvalidInputError(
                    f"the provider sent {value} {unit.code} units, which is not a whole "
                    f"number of {unit.code} minor units"
                )
            return Money.from_minor(minor, unit)
        return Money.from_minor(value * _ten(-shift), unit)


ISO_AMOUNTS: Final = AmountRules()
"""Amounts exactly as ISO 4217 writes them, with no further rule."""

STRIPE_AMOUNTS: Final = AmountRules(
    exponents={"ISK": 2},
    multiples={"ISK": 100, "BHD": 10, "JOD": 10, "KWD": 10, "OMR": 10, "TND": 10},
)
"""Stripe's special cases: ISK written with two decimals in whole krónur, and
three-decimal currencies rounded to tens (its "special cases" table)."""
