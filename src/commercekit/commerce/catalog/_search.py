"""Catalog listing filters: text search, attributes, price range, active; the same on every engine.

Two columns of ``ck_products``, written with the product, make the filters
portable (plain ``LIKE`` on SQLite, PostgreSQL and MariaDB, no JSON functions
or full-text engines):

* ``search_text``: the product's name and every attribute value of it and its
  variants, case-folded in Python (SQLite's ``lower()`` folds ASCII only), one
  per line. A text query matches a product when every word of it is found.
* ``attribute_index``: every attribute pair of the product and its variants,
  each the hex digits of the UTF-8 JSON array ``["name","value"]`` between two
  ``|``. A pattern ``|<hex>|`` can only match one whole pair (hex has no
  ``|``), and lower-case hex has no letter case for SQLite's ASCII
  case-insensitive ``LIKE`` to fold: ``size=L`` is one ``LIKE``, exact and
  case-sensitive on every engine.

On MariaDB both columns compare in a binary collation (no accent folding).
The filters scan the product rows (keyset pages keep each page's cost bounded
by the scan to fill it); a catalog of millions of products wants a search
engine in front instead.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from typing import Any

from sqlalchemy import Select, select

from commercekit.errors import InvalidInputError
from commercekit.money import Money

from . import _tables as t

__all__ = ["attribute_index", "filter_products", "search_text"]

_MAX_WORDS = 10


def _pair(name: str, value: str) -> str:
    return "|" + json.dumps([name, value], separators=(",", ":")).encode().hex() + "|"


def search_text(name: str, attribute_maps: Iterable[Mapping[str, str]]) -> str:
    """The case-folded text a product is searched by: its name and attribute values."""
    parts = [name]
    for attributes in attribute_maps:
        parts.extend(attributes.values())
    return "\n".join(p.casefold() for p in parts)


def attribute_index(attribute_maps: Iterable[Mapping[str, str]]) -> str:
    """Every (name, value) pair of the product and its variants, each ``|<hex>|``."""
    pairs = sorted({_pair(k, v) for attributes in attribute_maps for k, v in attributes.items()})
    return "".join(pairs)


def filter_products(
    query: Select[Any],
    *,
    text: str | None,
    attributes: Mapping[str, str] | None,
    min_price: Money | None,
    max_price: Money | None,
    channel: str,
) -> Select[Any]:
    """*query* over ``ck_products`` narrowed by the listing's filters (each optional; all apply)."""
    pr = t.products.c
    if text is not None:
        if not isinstance(text, str) or len(text) > 200:
            raise InvalidInputError("a search text is a str of at most 200 characters")
        words = text.casefold().split()
        if len(words) > _MAX_WORDS:
            raise InvalidInputError(f"a search text has at most {_MAX_WORDS} words")
        for word in words:
            query = query.where(pr.search_text.contains(word, autoescape=True))
    if attributes:
        for name, value in attributes.items():
            if not isinstance(name, str) or not isinstance(value, str):
                raise InvalidInputError("attribute filters map str to str")
            query = query.where(pr.attribute_index.contains(_pair(name, value), autoescape=True))
    if min_price is not None or max_price is not None:
        query = query.where(_priced_within(min_price, max_price, channel))
    return query


def _priced_within(low: Money | None, high: Money | None, channel: str) -> Any:
    """Some variant of the product has a price in [low, high] on *channel*."""
    for bound in (low, high):
        if bound is not None and not isinstance(bound, Money):
            raise InvalidInputError("price filters are Money")
    if low is not None and high is not None:
        if low.currency != high.currency:
            raise InvalidInputError(
                f"min_price is in {low.currency.code}, max_price in {high.currency.code}"
            )
        if low > high:
            raise InvalidInputError(f"min_price {low} is above max_price {high}")
    unit = (low or high).currency  # type: ignore[union-attr]
    p, v = t.prices.c, t.variants.c
    conditions = [
        v.product_id == t.products.c.id,
        v.active.is_(True),
        p.channel == channel,
        p.currency == unit.code,
    ]
    if low is not None:
        conditions.append(p.amount_minor >= low.amount_minor)
    if high is not None:
        conditions.append(p.amount_minor <= high.amount_minor)
    return (
        select(1).select_from(t.variants.join(t.prices, p.sku == v.sku)).where(*conditions).exists()
    )
