"""``Catalog``: products, variants with unique SKUs, attributes, images, price lists.

Writes (admin edits) run on the primary and return a consistency token; reads
take that token and may be served by a replica that has replayed it, so an
admin sees their edit at once while shoppers' reads spread over replicas.
Listing is keyset-paginated by product id (``after=`` the last id seen), with
filters by text, attributes, price range and activity (``_search.py``).
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

import attrs
from sqlalchemy import bindparam, select, update

from commercekit.commerce._shared import check_id, chunked, new_id, rowcount, wall_clock
from commercekit.errors import InvalidInputError, NotFoundError, UnknownSkuError
from commercekit.money import Currency, Money, currency
from commercekit.repository import Database, TokenLike, UnitOfWork
from commercekit.typing import WallClock

from . import _tables as t
from ._search import attribute_index, filter_products, search_text

__all__ = ["DEFAULT_CHANNEL", "Catalog", "Product", "ProductPage", "Variant"]

DEFAULT_CHANNEL = "default"
"""The sales channel used when none is named."""

_MAX_PAGE = 500


@attrs.frozen
class Variant:
    """One sellable variant of a product, named by its SKU."""

    sku: str
    product_id: str
    attributes: Mapping[str, str]
    active: bool


@attrs.frozen
class Product:
    """A product and its variants; *images* are logical asset names the shop maps to URLs."""

    id: str
    name: str
    attributes: Mapping[str, str]
    images: tuple[str, ...]
    active: bool
    variants: tuple[Variant, ...]


@attrs.frozen
class ProductPage:
    """One page of a listing; pass *next_after* as ``after=`` for the next (None: last page)."""

    products: tuple[Product, ...]
    next_after: str | None


def _attrs(value: Mapping[str, str] | None) -> str:
    data = dict(value or {})
    for k, v in data.items():
        if not isinstance(k, str) or not isinstance(v, str):
            raise InvalidInputError("attributes map str to str")
    return json.dumps(data, sort_keys=True)


_p, _v, _pr = t.prices.c, t.variants.c, t.products.c
_PRICES = (  # the checkout's price read, built once (SQLAlchemy keys its cache once)
    select(_v.sku, _v.active, _pr.active, _p.amount_minor)
    .join(t.products, _pr.id == _v.product_id)
    .outerjoin(
        t.prices,
        (_p.sku == _v.sku)
        & (_p.channel == bindparam("channel"))
        & (_p.currency == bindparam("currency")),
    )
    .where(_v.sku.in_(bindparam("skus", expanding=True)))
)


class Catalog:
    """The catalog service. See the module docstring."""

    def __init__(self, db: Database, *, clock: WallClock = wall_clock) -> None:
        self._db = db
        self._clock = clock

    # -- admin writes (each returns the commit's consistency token) ---------------------

    def add_product(
        self,
        name: str,
        variants: Iterable[str | tuple[str, Mapping[str, str]]],
        *,
        product_id: str | None = None,
        attributes: Mapping[str, str] | None = None,
        images: Sequence[str] = (),
        active: bool = True,
    ) -> tuple[Product, str | None]:
        """Add a product and its variants (SKUs must be new); return it and the write's token."""
        pid = check_id(product_id, "product_id") if product_id is not None else new_id()
        if not isinstance(name, str) or not name.strip() or len(name) > 200:
            raise InvalidInputError("a product name is 1 to 200 characters")
        specs = [(v, {}) if isinstance(v, str) else (v[0], dict(v[1])) for v in variants]
        if not specs:
            raise InvalidInputError("a product needs at least one variant")
        skus = [check_id(sku, "sku") for sku, _ in specs]
        if len(set(skus)) != len(skus):
            raise InvalidInputError("a product lists one SKU twice")
        for image in images:
            check_id(image, "image name", max_len=200)
        with self._db.unit_of_work() as uow:
            maps = [dict(attributes or {}), *(a for _, a in specs)]
            uow.session.execute(
                t.products.insert().values(
                    id=pid,
                    name=name,
                    attributes=_attrs(attributes),
                    images=json.dumps(list(images)),
                    active=active,
                    created_at=self._clock(),
                    search_text=search_text(name, maps),
                    attribute_index=attribute_index(maps),
                )
            )
            uow.session.execute(
                t.variants.insert(),
                [
                    {"sku": sku, "product_id": pid, "attributes": _attrs(a), "active": True}
                    for sku, a in specs
                ],
            )
        product = Product(
            pid,
            name,
            dict(attributes or {}),
            tuple(images),
            active,
            tuple(Variant(sku, pid, a, True) for sku, a in specs),
        )
        return product, uow.token

    def set_active(self, product_id: str, active: bool) -> str | None:
        """Show or hide a product; return the write's token."""
        check_id(product_id, "product_id")
        with self._db.unit_of_work() as uow:
            if not rowcount(
                uow.session.execute(
                    update(t.products).where(t.products.c.id == product_id).values(active=active)
                )
            ):
                raise NotFoundError(f"no product {product_id!r}")
        return uow.token

    def set_price(self, sku: str, price: Money, *, channel: str = DEFAULT_CHANNEL) -> str | None:
        """Set the price of *sku* in *price*'s currency on *channel*'s price list."""
        check_id(sku, "sku")
        check_id(channel, "channel")
        if not isinstance(price, Money) or price.amount_minor < 0:
            raise InvalidInputError("a price is a Money of zero or more")
        p = t.prices.c
        with self._db.unit_of_work() as uow:
            s = uow.session
            if s.execute(select(t.variants.c.sku).where(t.variants.c.sku == sku)).first() is None:
                raise UnknownSkuError(f"no product variant has SKU {sku!r}")
            key = (p.sku == sku, p.channel == channel, p.currency == price.currency.code)
            if not rowcount(
                s.execute(update(t.prices).where(*key).values(amount_minor=price.amount_minor))
            ):
                s.execute(
                    t.prices.insert().values(
                        sku=sku,
                        channel=channel,
                        currency=price.currency.code,
                        amount_minor=price.amount_minor,
                    )
                )
        return uow.token

    # -- reads (replicas first; pass the token of a write to see it) --------------------

    def has_sku(self, sku: str) -> bool:
        """True when an active variant of an active product has *sku*."""
        try:
            variant = self.variant(sku)
        except UnknownSkuError:
            return False
        return variant.active

    def product_of(self, sku: str) -> str | None:
        """The product id of *sku* when an active variant of an active product has it, else None.

        One read: what :meth:`has_sku` answers, with the product (``Carts``
        uses it to check a SKU and name its product in Segment's events).
        """
        try:
            variant = self.variant(sku)
        except UnknownSkuError:
            return None
        return variant.product_id if variant.active else None

    def variant(self, sku: str, *, token: TokenLike = None) -> Variant:
        """The variant with *sku*, or :class:`UnknownSkuError`."""
        check_id(sku, "sku")
        v, pr = t.variants.c, t.products.c
        with self._db.unit_of_work(read_only=True, token=token) as uow:
            row = uow.session.execute(
                select(v.sku, v.product_id, v.attributes, v.active, pr.active)
                .join(t.products, pr.id == v.product_id)
                .where(v.sku == sku)
            ).first()
        if row is None:
            raise UnknownSkuError(f"no product variant has SKU {sku!r}")
        return Variant(row[0], row[1], json.loads(row[2]), bool(row[3]) and bool(row[4]))

    def price(
        self,
        sku: str,
        currency_code: Currency | str,
        *,
        channel: str = DEFAULT_CHANNEL,
        token: TokenLike = None,
    ) -> Money:
        """The price of *sku* in *currency_code* on *channel* (NotFoundError if unpriced)."""
        return self.prices([sku], currency_code, channel=channel, token=token)[sku]

    def prices(
        self,
        skus: Iterable[str],
        currency_code: Currency | str,
        *,
        channel: str = DEFAULT_CHANNEL,
        token: TokenLike = None,
    ) -> dict[str, Money]:
        """The prices of several SKUs at once (every one must be priced and sellable).

        One query per 500 SKUs, in one unit of work (replicas first).
        """
        unit = currency(currency_code) if isinstance(currency_code, str) else currency_code
        wanted = sorted({check_id(s, "sku") for s in skus})
        params = {"channel": channel, "currency": unit.code}
        found: dict[str, Any] = {}
        with self._db.unit_of_work(read_only=True, token=token) as uow:
            for part in chunked(wanted):  # portable IN lists however many SKUs
                rows = uow.session.execute(_PRICES, {**params, "skus": list(part)})
                found.update((row[0], row) for row in rows)
        out: dict[str, Money] = {}
        for sku in wanted:
            row = found.get(sku)
            if row is None or not (row[1] and row[2]):
                raise UnknownSkuError(f"no sellable product variant has SKU {sku!r}")
            if row[3] is None:
                raise NotFoundError(f"{sku!r} has no {unit.code} price on channel {channel!r}")
            out[sku] = Money.from_minor(int(row[3]), unit)
        return out

    def product(self, product_id: str, *, token: TokenLike = None) -> Product:
        """The product with its variants, or :class:`NotFoundError`."""
        check_id(product_id, "product_id")
        with self._db.unit_of_work(read_only=True, token=token) as uow:
            found = self._products(uow, [product_id])
        if not found:
            raise NotFoundError(f"no product {product_id!r}")
        return found[0]

    def list_products(
        self,
        *,
        limit: int = 50,
        after: str | None = None,
        include_inactive: bool = False,
        text: str | None = None,
        attributes: Mapping[str, str] | None = None,
        min_price: Money | None = None,
        max_price: Money | None = None,
        channel: str = DEFAULT_CHANNEL,
        active: bool | None = None,
        token: TokenLike = None,
    ) -> ProductPage:
        """A page of products in id order (keyset: pass the previous page's *next_after*).

        Filters (all optional, all apply): *text*, every word of it found
        (case-insensitive) in the name or an attribute value of the product or
        its variants; *attributes*, exact ``name -> value`` pairs the product or
        one of its variants has; *min_price* / *max_price*, some active variant
        priced within on *channel* (in the bounds' currency); *active*, only
        active (the default) or only inactive products; *include_inactive*:
        both. See ``_search.py`` for how they stay portable.
        """
        if isinstance(limit, bool) or not isinstance(limit, int) or not 1 <= limit <= _MAX_PAGE:
            raise InvalidInputError(f"limit is 1 to {_MAX_PAGE}")
        check_id(channel, "channel")
        pr = t.products.c
        query = select(pr.id).order_by(pr.id).limit(limit + 1)
        if active is None:
            active = None if include_inactive else True
        if active is not None:
            query = query.where(pr.active.is_(bool(active)))
        if after is not None:
            query = query.where(pr.id > check_id(after, "after"))
        query = filter_products(
            query,
            text=text,
            attributes=attributes,
            min_price=min_price,
            max_price=max_price,
            channel=channel,
        )
        with self._db.unit_of_work(read_only=True, token=token) as uow:
            ids = list(uow.session.execute(query).scalars())
            products = self._products(uow, ids[:limit])
        return ProductPage(tuple(products), ids[limit - 1] if len(ids) > limit else None)

    @staticmethod
    def _products(uow: UnitOfWork, ids: list[str]) -> list[Product]:
        if not ids:
            return []
        pr, v = t.products.c, t.variants.c
        s = uow.session
        rows = s.execute(
            select(pr.id, pr.name, pr.attributes, pr.images, pr.active)
            .where(pr.id.in_(ids))
            .order_by(pr.id)
        ).all()
        by_product: dict[str, list[Variant]] = {}
        for sku, pid, attributes, active in s.execute(
            select(v.sku, v.product_id, v.attributes, v.active)
            .where(v.product_id.in_(ids))
            .order_by(v.sku)
        ):
            by_product.setdefault(pid, []).append(
                Variant(sku, pid, json.loads(attributes), bool(active))
            )
        return [
            Product(
                pid,
                name,
                json.loads(attributes),
                tuple(json.loads(images)),
                bool(active),
                tuple(by_product.get(pid, [])),
            )
            for pid, name, attributes, images, active in rows
        ]
