"""Pure pricing arithmetic: lines, discounts, tax per line, shipping, totals that add up exactly.

The rounding rule, per line: a line's amount is ``unit price x quantity``
(exact); a discount is spread over the lines in proportion to their amounts
with :meth:`Money.allocate` (no minor unit lost or invented); then each line's
tax is rounded once, half to even, to the currency's minor unit:

* prices exclusive of tax: ``tax = round(net x rate)``, ``gross = net + tax``;
* prices inclusive of tax: ``tax = round(gross x rate / (1 + rate))``, ``net = gross - tax``.

Shipping is taxed the same way, as one more line. So for every quote, in
every currency: ``sum(net) + tax == total`` and ``subtotal - discount +
shipping + (tax if prices exclude it) == total``, to the minor unit.
"""

from __future__ import annotations

import decimal
from collections.abc import Mapping, Sequence
from decimal import Decimal
from fractions import Fraction

import attrs

from commercekit.errors import CurrencyMismatchError, InvalidInputError
from commercekit.money import Currency, Money

__all__ = ["Quote", "QuoteLine", "compute_quote", "tax_of"]


@attrs.frozen
class QuoteLine:
    """One priced line: amount before discount, the discount, and net + tax = gross after it."""

    sku: str
    qty: int
    unit_price: Money
    amount: Money
    discount: Money
    net: Money
    tax: Money
    gross: Money


@attrs.frozen
class Quote:
    """A priced basket. Every part is Money in one currency and the parts add up exactly."""

    currency: Currency
    lines: tuple[QuoteLine, ...]
    prices_include_tax: bool
    tax_rate: Decimal
    subtotal: Money
    discount: Money
    shipping: Money
    shipping_tax: Money
    tax: Money
    total: Money
    voucher: str | None = None

    def snapshot(self) -> dict[str, object]:
        """Plain JSON-ready data (minor units), as an order keeps it."""
        return {
            "currency": self.currency.code,
            "prices_include_tax": self.prices_include_tax,
            "tax_rate": str(self.tax_rate),
            "voucher": self.voucher,
            "lines": [
                {
                    "sku": ln.sku,
                    "qty": ln.qty,
                    "unit_price_minor": ln.unit_price.amount_minor,
                    "discount_minor": ln.discount.amount_minor,
                    "net_minor": ln.net.amount_minor,
                    "tax_minor": ln.tax.amount_minor,
                    "gross_minor": ln.gross.amount_minor,
                }
                for ln in self.lines
            ],
            "subtotal_minor": self.subtotal.amount_minor,
            "discount_minor": self.discount.amount_minor,
            "shipping_minor": self.shipping.amount_minor,
            "shipping_tax_minor": self.shipping_tax.amount_minor,
            "tax_minor": self.tax.amount_minor,
            "total_minor": self.total.amount_minor,
        }


def tax_of(amount: Money, rate: Decimal, *, inclusive: bool) -> Money:
    """The tax in (inclusive) or on (exclusive) *amount* at *rate*, rounded half to even once."""
    exact = Fraction(rate)
    factor = exact / (1 + exact) if inclusive else exact  # exact: rounded once, below
    return amount.multiply(factor, rounding=decimal.ROUND_HALF_EVEN)


def compute_quote(
    unit_prices: Mapping[str, Money],
    quantities: Sequence[tuple[str, int]],
    *,
    currency: Currency,
    tax_rate: Decimal,
    prices_include_tax: bool,
    discount: Money | None,
    shipping: Money,
    voucher: str | None = None,
) -> Quote:
    """Price *quantities* (SKU, qty) at *unit_prices*; see the module docstring for the rule."""
    if tax_rate < 0 or tax_rate > 1:
        raise InvalidInputError(f"tax rate {tax_rate} is outside 0..1")
    zero = Money.zero(currency)
    amounts: list[Money] = []
    for sku, qty in quantities:
        price = unit_prices[sku]
        if price.currency != currency:
            raise CurrencyMismatchError(
                f"{sku!r} is priced in {price.currency.code}; the cart is in {currency.code}"
            )
        amounts.append(price * qty)
    if shipping.currency != currency:
        raise CurrencyMismatchError(f"shipping is in {shipping.currency.code}, not {currency.code}")
    subtotal = sum(amounts, zero)
    off = discount if discount is not None else zero
    if off.currency != currency:
        raise CurrencyMismatchError(f"the discount is in {off.currency.code}, not {currency.code}")
    off = min(off, subtotal)  # a discount never pushes the basket below zero
    if off.amount_minor and subtotal.amount_minor:
        shares = off.allocate([a.amount_minor for a in amounts])
    else:
        shares = tuple(zero for _ in amounts)
    lines: list[QuoteLine] = []
    for (sku, qty), amount, share in zip(quantities, amounts, shares, strict=True):
        after = amount - share
        tax = tax_of(after, tax_rate, inclusive=prices_include_tax)
        net, gross = (after - tax, after) if prices_include_tax else (after, after + tax)
        lines.append(QuoteLine(sku, qty, unit_prices[sku], amount, share, net, tax, gross))
    shipping_tax = tax_of(shipping, tax_rate, inclusive=prices_include_tax)
    shipping_gross = shipping if prices_include_tax else shipping + shipping_tax
    tax = sum((ln.tax for ln in lines), zero) + shipping_tax
    total = sum((ln.gross for ln in lines), zero) + shipping_gross
    return Quote(
        currency=currency,
        lines=tuple(lines),
        prices_include_tax=prices_include_tax,
        tax_rate=tax_rate,
        subtotal=subtotal,
        discount=off,
        shipping=shipping,
        shipping_tax=shipping_tax,
        tax=tax,
        total=total,
        voucher=voucher,
    )
