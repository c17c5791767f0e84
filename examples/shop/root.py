"""The composition root: every commercekit service the shop uses, built once from Settings.

This is the one place that knows which concrete parts run: the database
topology, the payment gateway, the event log and the asset manifest. The web
layer receives a :class:`Shop` and calls only its services.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
import threading
import time
from dataclasses import dataclass

import sqlalchemy as sa

from commercekit.analytics import (
    AnalyticsEvent,
    AnalyticsStore,
    EventLog,
    LogRecord,
    Reports,
    SqlEventLog,
    open_log,
)
from commercekit.cdn import AssetManifest
from commercekit.commerce import Commerce, metadata
from commercekit.commerce.catalog import Product
from commercekit.commerce.pricing import FlatShipping
from commercekit.errors import CommerceKitError, ConflictError, NotFoundError
from commercekit.metrics import PrometheusMetrics
from commercekit.money import Money
from commercekit.payments import PaymentService, SandboxGateway, SqlAlchemyIdempotencyStore
from commercekit.repository import Database, ReplicatedTopology, engine_from_url
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
order_owners = sa.Table(
    "shop_order_owners",
    shop_metadata,
    sa.Column("order_id", sa.String(40), primary_key=True),
    sa.Column("owner", sa.String(80), nullable=False, index=True),
    sa.Column("number", sa.String(40), nullable=False),
    sa.Column("placed_at", sa.Float, nullable=False),
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
    """The storefront's read model: the active catalog with prices and stock, kept a few seconds.

    Pages show stock from this snapshot (at most *ttl_s* old); the checkout's
    reservation is what guards against overselling, not the page.

    The catalog service pages products by id; search and filters run over
    this snapshot, which every app server refreshes on its own.
    """

    def __init__(self, shop: Shop, ttl_s: float = 3.0) -> None:
        self._shop, self._ttl = shop, ttl_s
        self._lock = threading.Lock()
        self._at = 0.0
        self._items: list[Listing] = []

    def items(self) -> list[Listing]:
        with self._lock:
            if time.monotonic() - self._at > self._ttl:
                self._items = self._load()
                self._at = time.monotonic()
            return self._items

    def invalidate(self) -> None:
        with self._lock:
            self._at = 0.0

    def _load(self) -> list[Listing]:
        shop = self._shop
        products: list[Product] = []
        after: str | None = None
        while True:
            page = shop.commerce.catalog.list_products(limit=500, after=after)
            products.extend(page.products)
            if page.next_after is None:
                break
            after = page.next_after
        skus = [v.sku for p in products for v in p.variants if v.active]
        prices = shop.commerce.catalog.prices(skus, shop.settings.currency) if skus else {}
        out = []
        for p in products:
            live = [v.sku for v in p.variants if v.active]
            if not live:
                continue
            stock = {sku: shop.commerce.inventory.available(sku) for sku in live}
            out.append(
                Listing(
                    product=p,
                    price=min((prices[s] for s in live), key=lambda m: m.amount),
                    available=sum(stock.values()),
                    images=tuple(shop.image_url(i) for i in p.images),
                    category=p.attributes.get("category", ""),
                    stock=stock,
                )
            )
        return out

    def get(self, product_id: str) -> Listing:
        for item in self.items():
            if item.id == product_id:
                return item
        raise NotFoundError(f"no product {product_id!r}")


def event_log(url: str, *, consumer: str | None = None) -> EventLog:
    """The event log *url* names (``open_log``), with SQLite files opened here.

    ``open_log`` loses the leading slash of an absolute SQLite path
    (``sqlite:////data/events.db``), so the shop builds that one itself.
    """
    if url.startswith("sqlite:"):
        path, _, query = url.partition("?")
        group = dict(p.partition("=")[::2] for p in query.split("&") if p).get("group", "shop")
        log = SqlEventLog(engine_from_url(path), group=group)
        log.create()
        return log
    return open_log(url, consumer=consumer)


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
        self.commerce = Commerce.from_database(
            self.db,
            payments=self.payments,
            metrics=self.metrics,
            tax_rates={settings.region: "0.19"},
            prices_include_tax=True,
            shipping=FlatShipping(
                {currency: Money.of("4.90", currency)}, {currency: Money.of("50", currency)}
            ),
        )
        self.db.create_all(metadata)
        self.db.create_all(shop_metadata)
        self.events = event_log(settings.events_url)
        self.catalog = CatalogView(self)
        self._manifest: AssetManifest | None = None
        self._reports: Reports | None = None
        self._reports_topology: ReplicatedTopology | None = None
        self._pending: list[AnalyticsEvent] = []
        self._pending_lock = threading.Lock()

    def close(self) -> None:
        """Close the database connections and the event log (the process is done with them)."""
        self.db.close()
        self.topology.dispose()
        if self._reports_topology is not None:
            self._reports_topology.dispose()
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
        """ "Customers who bought this also bought": product ids, best first (none if unknown)."""
        try:
            return [r.product for r in self.reports.also_bought(product_id, k=k)]
        except CommerceKitError:
            return []

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

    # -- customers and their orders --------------------------------------------------------

    def sign_in(self, email: str, password: str) -> tuple[str, bool]:
        """(customer id, created): an unknown email opens an account with that password."""
        email = email.strip().lower()
        with self.db.unit_of_work() as uow:
            row = uow.session.execute(
                sa.select(customers.c.id, customers.c.password).where(customers.c.email == email)
            ).first()
            if row is not None:
                if not check_password(password, row[1]):
                    raise ConflictError("that email is registered with another password")
                return row[0], False
            cid = "cus_" + secrets.token_hex(8)
            uow.session.execute(
                customers.insert().values(
                    id=cid, email=email, password=hash_password(password), created_at=time.time()
                )
            )
            return cid, True

    def own_order(self, order_id: str, number: str, owner: str) -> None:
        with self.db.unit_of_work() as uow:
            exists = uow.session.execute(
                sa.select(order_owners.c.order_id).where(order_owners.c.order_id == order_id)
            ).first()
            if exists is None:
                uow.session.execute(
                    order_owners.insert().values(
                        order_id=order_id, owner=owner, number=number, placed_at=time.time()
                    )
                )

    def orders_of(self, owners: list[str]) -> list[tuple[str, str, float]]:
        with self.db.unit_of_work() as uow:
            rows = uow.session.execute(
                sa.select(order_owners.c.order_id, order_owners.c.number, order_owners.c.placed_at)
                .where(order_owners.c.owner.in_(owners))
                .order_by(order_owners.c.placed_at.desc())
            ).all()
        return [(r[0], r[1], r[2]) for r in rows]

    def owner_of(self, order_id: str) -> str | None:
        with self.db.unit_of_work() as uow:
            row = uow.session.execute(
                sa.select(order_owners.c.owner).where(order_owners.c.order_id == order_id)
            ).first()
        return None if row is None else str(row[0])


def build_shop(settings: Settings | None = None) -> Shop:
    """Build the shop's services from *settings* (default: the environment)."""
    return Shop(settings or Settings.from_env())
