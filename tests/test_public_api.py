"""Each public module's ``__all__`` names exactly its public names, and they are documented."""

from __future__ import annotations

import importlib
import inspect
import pkgutil

import pytest

import commercekit


def public_modules() -> list[str]:
    names = ["commercekit"]
    for info in pkgutil.walk_packages(commercekit.__path__, "commercekit."):
        if not any(part.startswith("_") for part in info.name.split(".")):
            names.append(info.name)
    return names


@pytest.mark.parametrize("name", public_modules())
def test_all_matches_the_public_names(name: str) -> None:
    module = importlib.import_module(name)
    exported = set(module.__all__)
    for attr in exported:
        assert getattr(module, attr) is not None, f"{name}.{attr} is in __all__ but missing"
    defined = {
        attr
        for attr, value in vars(module).items()
        if not attr.startswith("_")
        and not inspect.ismodule(value)
        and attr not in {"annotations", "TYPE_CHECKING", "Any"}
    }
    assert defined <= exported, f"{name} defines public names missing from __all__"


@pytest.mark.parametrize("name", public_modules())
def test_public_names_have_docstrings(name: str) -> None:
    module = importlib.import_module(name)
    assert module.__doc__
    for attr in module.__all__:
        value = getattr(module, attr)
        if inspect.isclass(value) or inspect.isfunction(value):
            assert inspect.getdoc(value), f"{name}.{attr} has no docstring"


def test_version_is_set() -> None:
    from packaging.version import Version

    assert Version(commercekit.__version__) >= Version("0.0.0")  # PEP 440, from the git tag


def test_nothing_runs_at_import_time() -> None:
    import subprocess
    import sys

    code = (
        "import threading, commercekit, commercekit.metrics, commercekit.errors, "
        "commercekit.testing; print(threading.active_count())"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, timeout=60
    )
    assert out.stdout.strip() == "1"


# Every public module's ``__all__`` as it stood before the parts were regrouped into
# sub-packages. Each must stay a superset: a name may be added, never dropped, except the
# internals listed in DEPRECATED, which left ``__all__`` but still import (with a
# DeprecationWarning that says where they went).
SNAPSHOT: dict[str, str] = {
    "commercekit": """
        __version__
    """,
    "commercekit.analytics": """
        AnalyticsConsumer AnalyticsEvent AnalyticsStore ApplyResult CartAbandonment
        Cohort Delivery ECOMMERCE_EVENTS EventLog FunnelDay FunnelReport FunnelSpec
        GA4Client GA4_EVENT_NAMES JetStreamLog JsonLinesLog LineItem LogRecord LogSink
        OutboxRelay ProductCount ProductRevenue Recommendation RedisStreamsLog Reports
        RevenueDay SearchCount SqlEventLog checkout_started dashboard_file
        dashboard_from_catalogue ecommerce_event from_metrics_event ga4_event
        ga4_payload open_log order_completed order_refunded product_added
        product_removed product_viewed products_searched record rules_file
    """,
    "commercekit.balancer": """
        CallableProbe CappedRingBalancer Clock DEFAULT_TABLE_SIZE Hasher HealthChecker
        HealthProbe HealthTarget HttpProbe KetamaBalancer Key KeyedBalancer Lease
        LeastLoadedBalancer MaglevBalancer NodeHealth NodeStatus Nodes OutlierDetection
        RoundRobinBalancer SlowStart TcpProbe hash_key
    """,
    "commercekit.cdn": """
        AccessLog Action AdminHandler AssetManifest AssetOrigin AwsCredentials
        BodyStream BodyWriter Breaker CacheControl CacheOutcome CachePolicy CacheStore
        Clock CloudFrontPurger CloudFrontSigner CloudflarePurger Coalescer
        DirectoryOrigin EdgeCache EdgeNetwork FastlyPurger FrequencySketch Headers
        HmacUrlSigner HttpOrigin IMMUTABLE MalformedHeaderError ManualClock MemoryStore
        MockOrigin Origin OriginError OriginTimeoutError ProxyHandler ProxyServer
        PurgeKind PurgeRejectedError PurgeResult PurgeSelector PurgeUnavailableError
        Purger RedisStore Request Response SignatureError SignatureExpiredError
        StoreUnavailableError StoredBody StoredResponse TieredStore UrlSigner WsgiProxy
        asgi_app cloudfront_policy decide normalize_url parse_cache_control serve
        sigv4_headers store_decision
    """,
    "commercekit.commerce": """
        BROWSING_EVENTS BusinessEvents Commerce MAX_QUANTITY MONEY_EVENTS OUTBOX
        OUTBOX_TOPIC event_slug metadata money_text
    """,
    "commercekit.commerce.cart": """
        Cart CartChange CartRecord CartState CartStatus CartStore Carts Dot RedisCartStore
        SqlCartStore
    """,
    "commercekit.commerce.catalog": """
        Catalog DEFAULT_CHANNEL Product ProductPage Variant
    """,
    "commercekit.commerce.checkout": """
        Checkout CheckoutResult CheckoutStatus FaultHook Recovered STEPS
    """,
    "commercekit.commerce.inventory": """
        DEFAULT_LOCATION Drift Inventory InventoryReport Reservation ReservationLine
        ReservationStatus StockLevel sum_demand verify_inventory
    """,
    "commercekit.commerce.migrations": """
        VERSION_TABLE alembic_config downgrade upgrade
    """,
    "commercekit.commerce.orders": """
        FULFILMENT_TRANSITIONS FulfilmentStatus ORDER_TRANSITIONS Order OrderEvent
        OrderLine OrderStatus Orders PAYMENT_TRANSITIONS PaymentStatus order_number
        transition
    """,
    "commercekit.commerce.pricing": """
        FlatShipping PriceLookup Pricing Quote QuoteLine ShippingRule Voucher
        VoucherKind Vouchers allocate_refund compute_quote tax_of
    """,
    "commercekit.errors": """
        CartFrozenError CheckoutInProgressError CommerceKitError CommitOutcomeUnknownError
        ConfigurationError ConflictError CurrencyMismatchError DatabaseUnavailableError
        DuplicateError EmptyCartError InvalidInputError InvalidStateError
        InvalidTransitionError MalformedHeaderError MissingExtraError NotFoundError
        OperationInFlightError OriginError OriginTimeoutError OutOfStockError
        OutcomeUnknownError PaymentDeclinedError PrecisionError PurgeRejectedError
        PurgeUnavailableError RateLimitedError ReadOnlyError RepositoryError
        SerializationFailureError SignatureError SignatureExpiredError StaleVersionError
        StoreUnavailableError TransientError UnavailableError UnknownCurrencyError
        UnknownSkuError UnsupportedTypeError VoucherExhaustedError VoucherInvalidError
        is_transient
    """,
    "commercekit.metrics": """
        AttributeValue CompositeMetrics Counter DEFAULT_MAX_SERIES_PER_METRIC Event
        EventChannel EventSink Gauge Histogram HistogramSnapshot InMemoryMetrics Metrics
        MetricsSnapshot NullMetrics OVERFLOW_TAG_VALUE OpenTelemetryMetrics
        PrometheusMetrics QuantileSketch SpanHandle TRACING_AVAILABLE Tags Timer TraceContext
        current_span current_traceparent format_traceparent parse_traceparent refresh_tracing
        routed_request_span span traced
    """,
    "commercekit.money": """
        Currency Factor ISO_4217_PUBLISHED Money ROUNDING_MODES RoundingMode currencies
        currency
    """,
    "commercekit.payments": """
        ADYEN_AMOUNTS ADYEN_REFUSAL_CODES AMAZON_PAY_AMOUNTS AMAZON_PAY_DECLINE_CODES
        ActionRequired AdyenGateway AmazonPayConfig AmazonPayGateway
        AmazonPayNotifications AmazonPaySigner AmountRules AnyResult AsyncHttpTransport
        AsyncHttpxTransport Card CardBrand CardNumber CardToken CardVault
        CheckoutSession Claim ClaimKind Clock DeclineCode GatewayCapabilities
        HmacSignatureVerifier HttpRequest HttpResponse HttpTransport HttpxTransport
        ISO_AMOUNTS IdempotencyRecord IdempotencyStore InMemoryIdempotencyStore
        InMemoryVaultStore KeyRing MockTransport Operation OperationInFlightError
        Outcome Payment PaymentEvent PaymentGateway PaymentResult PaymentService
        PaymentSource PaymentState ProviderToken RateLimitedError RecordStatus
        RedirectDetails RetryPolicy SANDBOX_CARDS STRIPE_AMOUNTS STRIPE_DECLINE_CODES
        SandboxFault SandboxGateway SecurityCode ServiceSource Sleep SnsMessage
        SnsVerifier SqlAlchemyIdempotencyStore SqlAlchemyVaultStore StaticKeyRing
        StripeGateway StripeSignatureVerifier TRANSITIONS UrllibTransport VaultRecord
        VaultStore WebhookEvent WebhookOutcome WebhookProcessor luhn_valid mask_number
        redact_provider_text stripe_signature transition
    """,
    "commercekit.repository": """
        Clock CommitOutcomeUnknownError CommitTime CommitTimePositions Committed
        ConsistencyToken Database DatabaseUnavailableError FallbackReason GtidPosition
        Lsn MariaDbPositions Node OrderSpec Outbox OutboxClaim OutboxEvent Page Position
        PositionSource PostgresPositions ReadOnlyError ReadRepository ReadSettings
        ReplicaStatus ReplicaView ReplicatedTopology Repository RepositoryError
        RetryPolicy Role Route RoutingPolicy SerializationFailureError ShardPlacement
        ShardedTopology StaleVersionError Target TokenLike Topology TopologyNode
        UnitOfWork Versioned capped_shards configure_sqlite engine_from_url in_rotation
        ketama_shards keys_to_move new_event_id route_read route_write sqlite_engine
    """,
    "commercekit.typing": """
        AsyncSleep MonotonicClock Sleep WallClock
    """,
    "commercekit.testing": """
        InMemoryIdempotencyStore InMemoryMetrics InMemoryVaultStore ManualClock
        MockOrigin MockTransport SandboxGateway
    """,
}

# Internals that were public by accident: out of ``__all__``, importable with a warning.
DEPRECATED: dict[str, set[str]] = {
    "commercekit.cdn": {"FrequencySketch", "Coalescer", "sigv4_headers", "decide"},
}


@pytest.mark.parametrize("name", sorted(SNAPSHOT))
def test_all_is_a_superset_of_the_snapshot(name: str) -> None:
    module = importlib.import_module(name)
    recorded = set(SNAPSHOT[name].split())
    deprecated = DEPRECATED.get(name, set())
    missing = recorded - set(module.__all__) - deprecated
    assert not missing, f"{name} dropped public names: {sorted(missing)}"


@pytest.mark.parametrize(
    ("name", "attr"), sorted((name, attr) for name, attrs in DEPRECATED.items() for attr in attrs)
)
def test_deprecated_names_still_import_with_a_warning(name: str, attr: str) -> None:
    module = importlib.import_module(name)
    if attr in module.__all__:  # still public: nothing to warn about yet
        assert getattr(module, attr) is not None
        return
    with pytest.warns(DeprecationWarning, match=attr):
        value = getattr(module, attr)
    assert value is not None


def test_each_parts_clock_names_its_kind_of_time() -> None:
    import commercekit.balancer
    import commercekit.cdn
    import commercekit.metrics._timer
    import commercekit.payments
    from commercekit.typing import MonotonicClock, WallClock

    assert commercekit.cdn.Clock is WallClock  # compared with Date and Expires across machines
    assert commercekit.balancer.Clock is MonotonicClock  # ejections and slow start: intervals
    assert commercekit.metrics._timer.Clock is MonotonicClock  # latencies
    assert commercekit.payments.Clock is WallClock  # webhook timestamps, stored times
