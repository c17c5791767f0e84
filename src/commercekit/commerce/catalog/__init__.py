"""The catalog service: products, variants with unique SKUs, price lists per currency and channel.

See ``docs/commerce.md`` ("Catalog").
"""

from ._service import DEFAULT_CHANNEL, Catalog, Product, ProductPage, Variant

__all__ = ["DEFAULT_CHANNEL", "Catalog", "Product", "ProductPage", "Variant"]
