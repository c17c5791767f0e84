"""The composition root: every commercekit service the shop uses, built once from Settings.

This is the one place that knows which concrete parts run: the database
topology, the payment gateway, the event log, the cart store and the asset
manifest. The web layer receives a :class:`Shop` and calls only its services.

The commerce services are synchronous (the web layer runs them in the thread
pool); the shop's own table (its customers' accounts) is read and written
through :class:`AsyncDatabase`, the repository's asyncio twin, from the
``async`` handlers themselves.
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import secrets
import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass

import sqlalchemy as sa

from commercekit.analytics import (
    AnalyticsEvent,
    AnalyticsStore,
    LogRecord,
    Reports,
    open_log,
)
from commercekit.cdn import AssetManifest
from commercekit.commerce import Commerce, metadata
from commercekit.commerce.cart import CartStore, RedisCartStore
from commercekit.commerce.catalog import Product
from commercekit.commerce.pricing import FlatShipping
from commercekit.errors import (
    CommerceKitError,
    ConflictError,
    DuplicateError,
    NotFoundError,
)
from commercekit.metrics import PrometheusMetrics
from commercekit.money import Money
from commercekit.payments import PaymentService, SandboxGateway, SqlAlchemyIdempotencyStore
from commercekit.repository import AsyncDatabase, Database, ReplicatedTopology
from shop.settings import Settings

__all__ = ["CatalogView", "Listing", "Shop", "build_shop"]

shop_metadata = sa.MetaData()
customers = sa.Table(
    "shop_customers",
    shop_metadata,
    sa.Column("id", sa.String(40), primary_key=True),
    sa.Column("email", sa.String(200), nullable=False, unique=True),
    sa.Column("password", sa.String(200), nullable=False),
    sa.Column("created_at", sa.Float, nullable=False),
)


def hash_password(password: str, salt: bytes | None = None) -> str:
    """scrypt (RFC 7914) as ``scrypt$<salt hex>$<hash hex>``."""
    salt = salt or secrets.token_bytes(16)
    digest = hashlib.scrypt(password.encode(), salt=salt, n=2**14, r=8, p=1, dklen=32)
    return f"scrypt${salt.hex()}${digest.hex()}"


def check_password(password: str, stored: str) -> bool:
    """Compare in constant time."""
    try:
        _, salt, _ = stored.split("$")
    except ValueError:
        return False
    return hmac.compare_digest(hash_password(password, bytes.fromhex(salt)), stored)


@dataclass(frozen=True)
class Listing:
    """A product as the storefront lists it: price, stock and image URLs resolved."""

    product: Product
    price: Money
    available: int
    images: tuple[str, ...]
    category: str
    stock: dict[str, int]

    @property
    def id(self) -> str:
        return self.product.id


class CatalogView:
    """The storefront's read of the catalog: products with price, stock and image URLs.

    Search, filters and keyset pages are the catalog service's
    (``list_products``); this class only adds what a page shows beside each
    product: its lowest active price (``Catalog.prices``), its stock
    (``Inventory.available_many``, one read per page) and its CDN image URLs.
    Listing pages read live; a product's page may show stock up to *ttl_s*
    old. The checkout's reservation is what guards against overselling, not
    the page.
    """

    def __init__(self, shop: Shop, ttl_s: float = 2.0) -> None:
        self._shop, self._ttl = shop, ttl_s
        # The product page is the hottest read (and the cart's lines read it too):
        # each app server keeps a product's listing for ttl_s.
        self._recent: dict[str, tuple[float, Listing]] = {}

    def page(
        self,
        *,
        text: str = "",
        category: str = "",
        max_price: Money | None = None,
        in_stock: bool = False,
        after: str | None = None,
        limit: int = 12,
    ) -> tuple[list[Listing], str | None]:
        """(listings, cursor of the next page or None): every filter applies.

        *in_stock* filters on live stock after the catalog's filters, reading
        on until the page is full, so the cursor is the last product looked at.
        """
        catalog = self._shop.commerce.catalog
        out: list[Listing] = []
        while True:
            page = catalog.list_products(
                text=text or None,
                attributes={"category": category} if category else None,
                max_price=max_price,
                limit=limit,
                after=after,
            )
            for listing in self.listings(page.products):
                if in_stock and listing.available <= 0:
                    continue
                out.append(listing)
                if len(out) == limit:
                    more = listing.id != page.products[-1].id or page.next_after is not None
                    return out, listing.id if more else None
            if page.next_after is None:
                return out, None
            after = page.next_after

    def get(self, product_id: str) -> Listing:
        """An active product as the storefront shows it, up to *ttl_s* old (else NotFoundError)."""
        now = time.monotonic()
        kept = self._recent.get(product_id)
        if kept is not None and now - kept[0] < self._ttl:
            return kept[1]
        product = self._shop.commerce.catalog.product(product_id)
        found = self.listings([product]) if product.active else []
        if not found:
            raise NotFoundError(f"no product {product_id!r}")
        if len(self._recent) > 10_000:
            self._recent.clear()
        self._recent[product_id] = (now, found[0])
        return found[0]

    def invalidate(self) -> None:
        """Forget the kept listings (this process changed stock or prices)."""
        self._recent.clear()

    def listings(self, products: Sequence[Product]) -> list[Listing]:
        """Price, stock and image URLs for *products* (those with no active variant drop out)."""
        shop = self._shop
        live = {p.id: [v.sku for v in p.variants if v.active] for p in products}
        skus = [sku for group in live.values() for sku in group]
        if not skus:
            return []
        prices = shop.commerce.catalog.prices(skus, shop.settings.currency)
        stock = shop.commerce.inventory.available_many(skus)  # one read for the page
        out = []
        for p in products:
            if not live[p.id]:
                continue
            mine = {sku: stock[sku] for sku in live[p.id]}
            out.append(
                Listing(
                    product=p,
                    price=min((prices[s] for s in live[p.id]), key=lambda m: m.amount),
                    available=sum(mine.values()),
                    images=tuple(shop.image_url(i) for i in p.images),
                    category=p.attributes.get("category", ""),
                    stock=mine,
                )
            )
        return out

    def all(self) -> list[Listing]:
        """Every active product (the admin's stock view), a page at a time."""
        out: list[Listing] = []
        after: str | None = None
        while True:
            page = self._shop.commerce.catalog.list_products(limit=200, after=after)
            out.extend(self.listings(page.products))
            if page.next_after is None:
                return out
            after = page.next_after


class Shop:
    """The services of one app server process."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.metrics = PrometheusMetrics()
        self.metrics.gauge(
            "shop_process_start_time_seconds",
            description="When this process started (Unix time); rates since start divide by it",
            unit="seconds",
        ).set(time.time())
        topology = ReplicatedTopology.from_urls(settings.database_url, list(settings.replica_urls))
        self.topology = topology
        self.db = Database(topology, metrics=self.metrics)
        engine = topology.primary.engine
        self.gateway = SandboxGateway()
        store = SqlAlchemyIdempotencyStore(engine)
        store.create_tables()
        self.payments = PaymentService(self.gateway, store, metrics=self.metrics)
        currency = settings.currency
        self.cart_store: CartStore | None = None
        if settings.cart_store == "redis":
            self.cart_store = RedisCartStore.from_url(
                settings.cart_redis_url,
                prefix=settings.cart_redis_prefix,
                ttl_s=settings.cart_ttl_s,
            )
        self.commerce = Commerce.from_database(
            self.db,
            payments=self.payments,
            metrics=self.metrics,
            tax_rates={settings.region: "0.19"},
            prices_include_tax=True,
            shipping=FlatShipping(
                {currency: Money.of("4.90", currency)}, {currency: Money.of("50", currency)}
            ),
            cart_store=self.cart_store,
        )
        self.db.create_all(metadata)
        self.db.create_all(shop_metadata)
        self.events = open_log(settings.events_url)
        self.catalog = CatalogView(self)
        self._manifest: AssetManifest | None = None
        self._reports: Reports | None = None
        self._reports_topology: ReplicatedTopology | None = None
        self._pending: list[AnalyticsEvent] = []
        self._pending_lock = threading.Lock()
        self._adb: AsyncDatabase | None = None
        self._also: dict[str, tuple[float, list[str]]] = {}

    @property
    def adb(self) -> AsyncDatabase:
        """The asyncio twin of :attr:`db` on the same topology, for the shop's own table.

        Made on first use, from inside the event loop that then owns its
        connections (:meth:`aclose` closes them there).
        """
        if self._adb is None:
            settings = self.settings
            topology = ReplicatedTopology.from_urls(
                settings.database_url, list(settings.replica_urls), asyncio=True
            )
            self._adb = AsyncDatabase(topology, metrics=self.metrics)
        return self._adb

    async def aclose(self) -> None:
        """Close the asyncio database's connections (on the loop that opened them)."""
        if self._adb is not None:
            adb, self._adb = self._adb, None
            await adb.dispose()

    def close(self) -> None:
        """Close the database connections and the event log (the process is done with them)."""
        self.db.close()
        self.topology.dispose()
        if self._reports_topology is not None:
            self._reports_topology.dispose()
        if isinstance(self.cart_store, RedisCartStore):
            self.cart_store.close()
        self.events.close()

    # -- images through the edge -----------------------------------------------------------

    @property
    def manifest(self) -> AssetManifest:
        if self._manifest is None:
            path = self.settings.data_dir / "manifest.json"
            self._manifest = (
                AssetManifest.from_json(path.read_text())
                if path.exists()
                else AssetManifest("/assets/", {})
            )
        return self._manifest

    def reload_manifest(self) -> None:
        self._manifest = None

    def image_url(self, name: str) -> str:
        """The CDN URL of a product image (fingerprinted, so cached for ever at the edge)."""
        try:
            path = self.manifest.url(name)
        except NotFoundError:
            return ""
        return self.settings.asset_base + path

    # -- analytics -------------------------------------------------------------------------

    @property
    def reports(self) -> Reports:
        """Reports over the aggregates the analytics consumer keeps (read here, written there)."""
        if self._reports is None:
            from shop.services import FUNNEL

            self._reports_topology = ReplicatedTopology.from_urls(self.settings.analytics_url)
            db = Database(self._reports_topology)
            store = AnalyticsStore(db, funnels=[FUNNEL])
            store.create()
            self._reports = Reports(store)
        return self._reports

    def also_bought(self, product_id: str, k: int = 4) -> list[str]:
        """ "Customers who bought this also bought": product ids, best first (none if unknown).

        The orders' events name each line's product in ``product_id``, so the
        aggregates pair products. Kept for 5 s per product and app server.
        """
        now = time.monotonic()
        kept = self._also.get(product_id)
        if kept is not None and now - kept[0] < 5.0:
            return kept[1]
        try:
            found = [r.product for r in self.reports.also_bought(product_id, k=k)]
        except CommerceKitError:
            return []
        if len(self._also) > 10_000:
            self._also.clear()
        self._also[product_id] = (now, found)
        return found

    def track(self, event: AnalyticsEvent) -> None:
        """Queue a browsing event; :meth:`flush_events` publishes the queue in one batch."""
        with self._pending_lock:
            self._pending.append(event)

    def flush_events(self) -> int:
        with self._pending_lock:
            batch, self._pending = self._pending, []
        if batch:
            self.events.publish([LogRecord(e.event_id, e.to_bytes(), e.who) for e in batch])
        return len(batch)

    # -- customers -------------------------------------------------------------------------

    async def sign_in(self, email: str, password: str) -> tuple[str, bool]:
        """(customer id, created): an unknown email opens an account with that password.

        The account is read and written through :attr:`adb` on the event loop;
        only scrypt, which is CPU, runs in a worker thread, and never while a
        transaction is open.
        """
        email = email.strip().lower()
        c = customers.c
        find = sa.select(c.id, c.password).where(c.email == email)
        for _ in range(2):
            async with self.adb.unit_of_work() as uow:
                row = (await uow.session.execute(find)).first()
            if row is not None:
                if not await asyncio.to_thread(check_password, password, row[1]):
                    raise ConflictError("that email is registered with another password")
                return row[0], False
            hashed = await asyncio.to_thread(hash_password, password)
            cid = "cus_" + secrets.token_hex(8)
            try:
                async with self.adb.unit_of_work() as uow:
                    await uow.session.execute(
                        customers.insert().values(
                            id=cid, email=email, password=hashed, created_at=time.time()
                        )
                    )
            except DuplicateError:
                continue  # the same email signed up at the same moment: check against it
            return cid, True
        raise ConflictError("that email is being registered right now; try again")


def build_shop(settings: Settings | None = None) -> Shop:
    """Build the shop's services from *settings* (default: the environment)."""
    return Shop(settings or Settings.from_env())
