"""Pricing: totals that add up in every currency, vouchers used exactly once, refund allocation."""

from __future__ import annotations

import threading
from decimal import Decimal

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from commercekit.commerce.catalog import Catalog
from commercekit.commerce.pricing import FlatShipping, Pricing, allocate_refund, compute_quote
from commercekit.errors import (
    CurrencyMismatchError,
    InvalidInputError,
    NotFoundError,
    UnknownSkuError,
    VoucherExhaustedError,
    VoucherInvalidError,
)
from commercekit.money import Money, currency
from commercekit.repository import Database
from tests.commerce.conftest import FakeClock

CURRENCIES = ["EUR", "USD", "JPY", "KWD", "CLF"]


@st.composite
def baskets(draw: st.DrawFn) -> tuple[object, ...]:
    unit = currency(draw(st.sampled_from(CURRENCIES)))
    n = draw(st.integers(1, 6))
    prices = {f"S{i}": Money.from_minor(draw(st.integers(0, 10**7)), unit) for i in range(n)}
    qty = [(f"S{i}", draw(st.integers(1, 50))) for i in range(n)]
    rate = Decimal(draw(st.integers(0, 2700))) / 10000
    discount = Money.from_minor(draw(st.integers(0, 10**8)), unit)
    shipping = Money.from_minor(draw(st.integers(0, 10**5)), unit)
    return unit, prices, qty, rate, draw(st.booleans()), discount, shipping


@settings(max_examples=100, deadline=None)
@given(baskets())
def test_lines_tax_shipping_and_discount_add_up_to_the_total(basket: tuple[object, ...]) -> None:
    unit, prices, qty, rate, inclusive, discount, shipping = basket
    q = compute_quote(
        prices,  # type: ignore[arg-type]
        qty,  # type: ignore[arg-type]
        currency=unit,  # type: ignore[arg-type]
        tax_rate=rate,  # type: ignore[arg-type]
        prices_include_tax=inclusive,  # type: ignore[arg-type]
        discount=discount,  # type: ignore[arg-type]
        shipping=shipping,  # type: ignore[arg-type]
    )
    zero = Money.zero(q.currency)
    net = sum((ln.net for ln in q.lines), zero)
    shipping_net = q.shipping - q.shipping_tax if inclusive else q.shipping
    assert net + shipping_net + q.tax == q.total
    assert q.subtotal - q.discount + q.shipping + (zero if inclusive else q.tax) == q.total
    assert sum((ln.discount for ln in q.lines), zero) == q.discount <= q.subtotal
    for ln in q.lines:
        assert ln.net + ln.tax == ln.gross
        assert ln.gross >= zero
        assert ln.tax >= zero


@settings(max_examples=100, deadline=None)
@given(st.data())
def test_partial_refunds_never_exceed_a_line_and_lose_no_unit(data: st.DataObject) -> None:
    unit = currency(data.draw(st.sampled_from(CURRENCIES)))
    paid = [Money.from_minor(data.draw(st.integers(0, 10**6)), unit) for _ in range(4)]
    refunded = [Money.zero(unit)] * 4
    for _ in range(data.draw(st.integers(1, 5))):
        left = sum(p.amount_minor - r.amount_minor for p, r in zip(paid, refunded, strict=True))
        if left == 0:
            break
        amount = Money.from_minor(data.draw(st.integers(1, left)), unit)
        parts = allocate_refund(amount, paid, refunded)
        assert sum((p for p in parts), Money.zero(unit)) == amount
        refunded = [r + p for r, p in zip(refunded, parts, strict=True)]
        assert all(r <= p for r, p in zip(refunded, paid, strict=True))
    with pytest.raises(InvalidInputError):
        allocate_refund(sum(paid, Money.zero(unit)) + Money.from_minor(1, unit), paid)


def test_per_line_rounding_inclusive_and_exclusive() -> None:
    eur = currency("EUR")
    prices = {"A": Money.of("19.99", "EUR"), "B": Money.of("0.10", "EUR")}
    q = compute_quote(
        prices,
        [("A", 3), ("B", 1)],
        currency=eur,
        tax_rate=Decimal("0.19"),
        prices_include_tax=True,
        discount=Money.of("5.00", "EUR"),
        shipping=Money.of("4.90", "EUR"),
    )
    # 5.00 over 59.97 and 0.10: 4.99 + 0.01 (the left-over cent to the larger remainder)
    assert [str(ln.discount) for ln in q.lines] == ["4.99 EUR", "0.01 EUR"]
    # tax in each line, rounded once: 54.98 * 19/119 = 8.778..., 0.09 * 19/119 = 0.014...
    assert [str(ln.tax) for ln in q.lines] == ["8.78 EUR", "0.01 EUR"]
    assert str(q.shipping_tax) == "0.78 EUR"  # 4.90 * 19/119 = 0.782...
    assert str(q.total) == "59.97 EUR"  # 54.98 + 0.09 + 4.90


@pytest.fixture
def shop(db: Database, clock: FakeClock) -> tuple[Catalog, Pricing]:
    catalog = Catalog(db, clock=clock)
    catalog.add_product("Tee", ["TEE-M", "TEE-L"])
    catalog.set_price("TEE-M", Money.of("20.00", "EUR"))
    catalog.set_price("TEE-L", Money.of("22.00", "EUR"))
    pricing = Pricing(
        db,
        Pricing.lookup_from(catalog.prices),
        tax_rates={"DE": Decimal("0.19"), "US-OR": "0"},
        prices_include_tax=True,
        shipping=FlatShipping({"EUR": Money.of("4.90", "EUR")}, {"EUR": Money.of("50", "EUR")}),
        clock=clock,
    )
    return catalog, pricing


def test_quote_with_voucher_and_free_shipping(shop: tuple[Catalog, Pricing]) -> None:
    _, pricing = shop
    pricing.vouchers.create("TEN", percent=10)
    q = pricing.quote({"TEE-M": 2, "TEE-L": 1}, currency("EUR"), region="DE", voucher="TEN")
    assert (str(q.subtotal), str(q.discount), str(q.shipping)) == (
        "62.00 EUR",
        "6.20 EUR",
        "0.00 EUR",
    )
    assert str(q.total) == "55.80 EUR"
    small = pricing.quote({"TEE-M": 1}, currency("EUR"), region="DE")
    assert str(small.total) == "24.90 EUR"


def test_a_one_use_voucher_used_by_twenty_threads_succeeds_once(
    shop: tuple[Catalog, Pricing],
) -> None:
    _, pricing = shop
    pricing.vouchers.create("ONCE", amount=Money.of("5", "EUR"), max_uses=1)
    wins: list[int] = []
    refused: list[int] = []
    barrier = threading.Barrier(20)

    def use(i: int) -> None:
        barrier.wait()
        try:
            pricing.vouchers.redeem("ONCE", f"order-{i}")
            wins.append(i)
        except VoucherExhaustedError:
            refused.append(i)

    threads = [threading.Thread(target=use, args=(i,)) for i in range(20)]
    for th in threads:
        th.start()
    for th in threads:
        th.join()
    assert (len(wins), len(refused)) == (1, 19)
    assert pricing.vouchers.redeem("ONCE", f"order-{wins[0]}") is False  # same order: replay
    assert pricing.vouchers.release("ONCE", f"order-{wins[0]}") is True
    assert pricing.vouchers.redeem("ONCE", "order-x") is True


def test_bad_input_is_typed(shop: tuple[Catalog, Pricing], clock: FakeClock) -> None:
    _, pricing = shop
    eur = currency("EUR")
    pricing.vouchers.create("OLD", percent=5, ends_at=clock() - 1)
    pricing.vouchers.create("USD5", amount=Money.of("5", "USD"))
    cases = [
        (lambda: pricing.quote({"TEE-M": 1}, eur, region="DE", voucher="OLD"), VoucherInvalidError),
        (
            lambda: pricing.quote({"TEE-M": 1}, eur, region="DE", voucher="NOPE"),
            VoucherInvalidError,
        ),
        (
            lambda: pricing.quote({"TEE-M": 1}, eur, region="DE", voucher="USD5"),
            VoucherInvalidError,
        ),
        (lambda: pricing.quote({"GHOST": 1}, eur, region="DE"), UnknownSkuError),
        (lambda: pricing.quote({"TEE-M": 0}, eur, region="DE"), InvalidInputError),
        (lambda: pricing.quote({}, eur, region="DE"), InvalidInputError),
        (lambda: pricing.quote({"TEE-M": 1}, currency("USD"), region="DE"), NotFoundError),
        (lambda: pricing.quote({"TEE-M": 1}, eur, region="XX"), InvalidInputError),
    ]
    for call, error in cases:
        with pytest.raises(error):
            call()
    with pytest.raises(CurrencyMismatchError):
        compute_quote(
            {"A": Money.of("1", "USD")},
            [("A", 1)],
            currency=eur,
            tax_rate=Decimal(0),
            prices_include_tax=False,
            discount=None,
            shipping=Money.zero(eur),
        )
