"""The pricing service: tax per region, inclusive or exclusive prices, vouchers, shipping, refunds.

See ``docs/commerce.md`` ("Pricing") for the rounding rule.
"""

from ._quote import Quote, QuoteLine, compute_quote, tax_of
from ._refunds import allocate_refund
from ._service import FlatShipping, PriceLookup, Pricing, ShippingRule
from ._vouchers import Voucher, VoucherKind, Vouchers

__all__ = [
    "FlatShipping",
    "PriceLookup",
    "Pricing",
    "Quote",
    "QuoteLine",
    "ShippingRule",
    "Voucher",
    "VoucherKind",
    "Vouchers",
    "allocate_refund",
    "compute_quote",
    "tax_of",
]
