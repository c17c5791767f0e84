"""A visitor who browses as a guest, signs in and checks out is one person in the analytics."""

from __future__ import annotations

import asyncio
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from commercekit.analytics import AnalyticsConsumer, AnalyticsStore, OutboxRelay, open_log
from commercekit.commerce import OUTBOX
from commercekit.payments import Card
from commercekit.repository import Database, ReplicatedTopology
from tests.shop._procs import CHECKOUT_ADDRESS, shop_env


def test_browsing_before_sign_in_and_the_order_after_count_as_one_person(tmp_path: Path) -> None:
    from shop.root import build_shop
    from shop.seed import seed
    from shop.services import FUNNEL
    from shop.settings import Settings
    from shop.store import Session, Storefront

    settings = Settings.from_env(shop_env(tmp_path, SHOP_SEED_PRODUCTS="6"))
    shop = build_shop(settings)
    try:
        seed(shop)
        listing = next(i for i in shop.catalog.all() if i.available > 0)
        sku = next(s for s, n in listing.stock.items() if n > 0)
        front = Storefront(shop)
        visitor = Session({"sid": "visitor-1"})

        async def journey() -> None:
            try:
                await front.product(visitor, listing.id)  # as a guest
                await front.add(visitor, sku)
                await front.sign_in(visitor, "ada@example.com", "secret-1")
                placed = await front.checkout(
                    visitor, Card("4242424242424242", 12, 2030, cvv="123"), CHECKOUT_ADDRESS
                )
                assert not hasattr(placed, "challenge")
            finally:
                await shop.aclose()

        with ThreadPoolExecutor(1) as pool:  # a loop of its own (the browser tests hold one)
            pool.submit(asyncio.run, journey()).result()
        shop.flush_events()
        store = AnalyticsStore(
            Database(ReplicatedTopology.from_urls(settings.analytics_url)), funnels=[FUNNEL]
        )
        store.create()
        OutboxRelay(shop.db, OUTBOX, open_log(settings.events_url)).run_once()
        consumer = AnalyticsConsumer(open_log(settings.events_url), store, poll_timeout_s=0)
        assert consumer.run(idle_exit_s=0) >= 5  # viewed, added, identify, checkout, order
        funnel = shop.reports.funnel(FUNNEL.name).total
        assert funnel.counts == (1, 1, 1, 1)  # the funnel used to lose them at the sign-in
        assert shop.reports.cart_abandonment().abandoned == 0
        (bought,) = shop.reports.top_products("bought")
        assert bought.product == listing.id  # the product, not the SKU
    finally:
        shop.close()
