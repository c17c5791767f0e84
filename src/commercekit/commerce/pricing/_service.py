"""``Pricing``: quotes for baskets (tax per region, vouchers, shipping) and refund allocation."""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from decimal import Decimal
from typing import Protocol

import attrs

from commercekit.commerce._instruments import CommerceInstruments
from commercekit.commerce._shared import check_id, check_quantity, wall_clock
from commercekit.errors import ConfigurationError, InvalidInputError
from commercekit.metrics import Metrics
from commercekit.money import Currency, Money
from commercekit.repository import Database
from commercekit.typing import WallClock

from ._quote import Quote, compute_quote
from ._vouchers import Vouchers

__all__ = ["FlatShipping", "PriceLookup", "Pricing", "ShippingRule"]


class PriceLookup(Protocol):
    """Unit prices of SKUs in a currency on a channel (the catalog's ``prices``)."""

    def __call__(
        self, skus: Sequence[str], currency_code: Currency, *, channel: str
    ) -> Mapping[str, Money]:
        """Every SKU's unit price, or a typed error for an unknown or unpriced one."""
        ...


class ShippingRule(Protocol):
    """The shipping cost of a basket (the seam for carriers' rate tables)."""

    def __call__(self, goods: Money, quantities: Mapping[str, int], region: str) -> Money:
        """What shipping costs for goods worth *goods* (after discount) to *region*."""
        ...


@attrs.frozen
class FlatShipping:
    """A flat fee per currency, free from *free_from* (per currency) upwards."""

    fees: Mapping[str, Money] = attrs.field(factory=dict)
    free_from: Mapping[str, Money] = attrs.field(factory=dict)

    def __call__(self, goods: Money, quantities: Mapping[str, int], region: str) -> Money:
        """The fee in *goods*' currency (0 when none is set or the basket ships free)."""
        code = goods.currency.code
        limit = self.free_from.get(code)
        if limit is not None and goods >= limit:
            return Money.zero(goods.currency)
        return self.fees.get(code, Money.zero(goods.currency))


class Pricing:
    """The pricing service: tax rates per region, inclusive or exclusive prices, vouchers.

    *tax_rates* maps a region (``"DE"``, ``"US-CA"``) to a rate (``Decimal("0.19")``);
    *prices_include_tax* says how the price lists are kept (EU shops: True).
    """

    def __init__(
        self,
        db: Database,
        prices: PriceLookup,
        *,
        tax_rates: Mapping[str, Decimal | str],
        prices_include_tax: bool = False,
        shipping: ShippingRule | None = None,
        metrics: Metrics | CommerceInstruments | None = None,
        clock: WallClock = wall_clock,
    ) -> None:
        self._prices = prices
        self._rates: dict[str, Decimal] = {}
        for region, rate in tax_rates.items():
            if not isinstance(rate, Decimal | str):
                raise ConfigurationError(f"tax rate of {region!r} must be a Decimal or a str")
            value = Decimal(rate)
            if not 0 <= value <= 1:
                raise ConfigurationError(f"tax rate of {region!r} is outside 0..1")
            self._rates[region] = value
        self._inclusive = prices_include_tax
        self._shipping: ShippingRule = shipping if shipping is not None else FlatShipping()
        m = metrics if isinstance(metrics, CommerceInstruments) else CommerceInstruments(metrics)
        self.vouchers = Vouchers(db, m=m, clock=clock)

    def rate(self, region: str) -> Decimal:
        """The tax rate of *region* (:class:`InvalidInputError` when it has none)."""
        check_id(region, "region")
        try:
            return self._rates[region]
        except KeyError:
            raise InvalidInputError(f"no tax rate for region {region!r}") from None

    def quote(
        self,
        lines: Mapping[str, int],
        currency_code: Currency,
        *,
        region: str,
        channel: str = "default",
        voucher: str | None = None,
    ) -> Quote:
        """Price *lines* (SKU -> qty) for *region*; vouchers are checked, not used (see redeem)."""
        if not lines:
            raise InvalidInputError("nothing to price: the basket is empty")
        quantities = sorted((check_id(s, "sku"), check_quantity(q)) for s, q in lines.items())
        rate = self.rate(region)
        unit_prices = self._prices([s for s, _ in quantities], currency_code, channel=channel)
        gross_goods = sum((unit_prices[s] * q for s, q in quantities), Money.zero(currency_code))
        discount = None
        if voucher is not None:
            discount = self.vouchers.check(voucher, currency_code).discount_on(gross_goods)
        goods_after = gross_goods - (discount or Money.zero(currency_code))
        shipping = self._shipping(goods_after, dict(quantities), region)
        return compute_quote(
            unit_prices,
            quantities,
            currency=currency_code,
            tax_rate=rate,
            prices_include_tax=self._inclusive,
            discount=discount,
            shipping=shipping,
            voucher=voucher,
        )

    @staticmethod
    def lookup_from(fn: Callable[..., Mapping[str, Money]]) -> PriceLookup:
        """Adapt a catalog's ``prices(skus, currency, channel=...)`` to :class:`PriceLookup`."""

        def lookup(
            skus: Sequence[str], currency_code: Currency, *, channel: str
        ) -> Mapping[str, Money]:
            return fn(skus, currency_code, channel=channel)

        return lookup
