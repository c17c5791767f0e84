"""Catalog: unique SKUs, price lists per currency and channel, keyset listing, activation."""

from __future__ import annotations

import pytest

from commercekit.commerce.catalog import Catalog
from commercekit.errors import DuplicateError, InvalidInputError, NotFoundError, UnknownSkuError
from commercekit.money import Money
from commercekit.repository import Database
from tests.commerce._shop import check_listing_filters


def test_products_variants_prices_and_listing(db: Database) -> None:
    catalog = Catalog(db)
    for i in range(7):
        catalog.add_product(
            f"Product {i}",
            [f"P{i}-S", (f"P{i}-L", {"size": "L"})],
            product_id=f"p{i:02d}",
            images=[f"products/p{i}.jpg"],
        )
    _, token = catalog.add_product("Hidden", ["H-1"], product_id="p99", active=False)
    catalog.set_price("P1-S", Money.of("9.90", "EUR"))
    catalog.set_price("P1-S", Money.of("10.90", "EUR"))  # a second set replaces it
    catalog.set_price("P1-S", Money.of("12.00", "USD"), channel="app")
    assert catalog.price("P1-S", "EUR") == Money.of("10.90", "EUR")
    assert catalog.price("P1-S", "USD", channel="app") == Money.of("12.00", "USD")
    with pytest.raises(NotFoundError):
        catalog.price("P1-S", "USD")
    seen: list[str] = []
    page = catalog.list_products(limit=3, token=token)
    while True:
        seen += [p.id for p in page.products]
        if page.next_after is None:
            break
        page = catalog.list_products(limit=3, after=page.next_after, token=token)
    assert seen == [f"p{i:02d}" for i in range(7)]
    assert catalog.product("p03").variants[0].attributes == {"size": "L"}
    assert catalog.has_sku("P1-L")
    assert not catalog.has_sku("H-1")
    assert not catalog.has_sku("X")
    catalog.set_active("p99", True)
    assert catalog.has_sku("H-1")


def test_skus_are_unique_and_bad_input_is_typed(db: Database) -> None:
    catalog = Catalog(db)
    catalog.add_product("Tee", ["TEE"])
    with pytest.raises(DuplicateError):
        catalog.add_product("Other tee", ["TEE"])
    with pytest.raises(InvalidInputError):
        catalog.add_product("Twice", ["A", "A"])
    with pytest.raises(InvalidInputError):
        catalog.add_product("None", [])
    with pytest.raises(UnknownSkuError):
        catalog.set_price("NOPE", Money.of("1", "EUR"))
    with pytest.raises(UnknownSkuError):
        catalog.variant("NOPE")
    with pytest.raises(InvalidInputError):
        catalog.list_products(limit=0)


def test_listing_filters_by_text_attributes_price_and_activity(db: Database) -> None:
    check_listing_filters(Catalog(db), "t1")


def test_prices_of_a_long_list_are_read_in_portable_chunks(
    db: Database, monkeypatch: pytest.MonkeyPatch
) -> None:
    from commercekit.commerce import _shared

    catalog = Catalog(db)
    skus = [f"C-{i}" for i in range(5)]
    catalog.add_product("Chunked", skus, product_id="chunked")
    for i, sku in enumerate(skus):
        catalog.set_price(sku, Money.from_minor(100 + i, "EUR"))
    monkeypatch.setattr(_shared, "IN_LIST_MAX", 2)  # 5 SKUs: three statements
    got = catalog.prices(reversed(skus), "EUR")
    assert got == {s: Money.from_minor(100 + i, "EUR") for i, s in enumerate(skus)}
    assert len(list(_shared.chunked(skus))) == 3
