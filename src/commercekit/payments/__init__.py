"""Payments: one interface over several providers, exactly once, with card data kept safe.

::

    from commercekit.payments import Card, InMemoryIdempotencyStore, PaymentService, SandboxGateway
    from commercekit.money import Money

    service = PaymentService(SandboxGateway(), InMemoryIdempotencyStore())
    card = Card("4242 4242 4242 4242", 12, 2030, cvv="123")
    service.authorize("order-42", Money.of("19.99", "USD"), card)
    service.capture("order-42")

See ``docs/payments.md``: the gateway protocol, the state machine and ledger,
idempotency and reconciliation, the vault, webhooks, metrics and failure
behaviour.
"""

from typing import TYPE_CHECKING, Any

from commercekit.errors import OperationInFlightError, RateLimitedError
from commercekit.payments._adyen._codes import ADYEN_AMOUNTS, ADYEN_REFUSAL_CODES
from commercekit.payments._adyen._gateway import AdyenGateway, AsyncAdyenGateway, RedirectDetails
from commercekit.payments._amazonpay import (
    AMAZON_PAY_AMOUNTS,
    AMAZON_PAY_DECLINE_CODES,
    AmazonPayConfig,
    AmazonPayGateway,
    AmazonPayNotifications,
    AmazonPaySigner,
    AsyncAmazonPayGateway,
    CheckoutSession,
    SnsMessage,
    SnsVerifier,
)
from commercekit.payments._async_typing import AsyncIdempotencyStore, AsyncPaymentGateway
from commercekit.payments._card import (
    Card,
    CardBrand,
    CardNumber,
    ProviderToken,
    SecurityCode,
    luhn_valid,
    mask_number,
)
from commercekit.payments._core._amounts import ISO_AMOUNTS, STRIPE_AMOUNTS, AmountRules
from commercekit.payments._core._async_service import AsyncPaymentService
from commercekit.payments._core._idempotency import InMemoryIdempotencyStore
from commercekit.payments._core._ledger import Payment
from commercekit.payments._core._reconcile import PaymentRetryPolicy
from commercekit.payments._core._reconcile import PaymentRetryPolicy as RetryPolicy
from commercekit.payments._core._records import Claim, ClaimKind, IdempotencyRecord, RecordStatus
from commercekit.payments._core._results import (
    ActionRequired,
    AnyResult,
    DeclineCode,
    Operation,
    Outcome,
    PaymentResult,
)
from commercekit.payments._core._service import PaymentService, ServiceSource
from commercekit.payments._core._state import TRANSITIONS, PaymentEvent, PaymentState, transition
from commercekit.payments._redact import redact_provider_text
from commercekit.payments._sandbox._async import AsyncSandboxGateway
from commercekit.payments._sandbox._cards import SANDBOX_CARDS
from commercekit.payments._sandbox._faults import SandboxFault
from commercekit.payments._sandbox._gateway import SandboxGateway
from commercekit.payments._stripe._declines import STRIPE_DECLINE_CODES
from commercekit.payments._stripe._gateway import AsyncStripeGateway, StripeGateway
from commercekit.payments._transports._aiohttp import AiohttpTransport
from commercekit.payments._transports._http import (
    HttpRequest,
    HttpResponse,
    MockTransport,
    UrllibTransport,
)
from commercekit.payments._transports._httpx import (
    AsyncHttpTransport,
    AsyncHttpxTransport,
    HttpxTransport,
)
from commercekit.payments._typing import (
    Clock,
    GatewayCapabilities,
    HttpTransport,
    IdempotencyStore,
    KeyRing,
    PaymentGateway,
    PaymentSource,
    Sleep,
    VaultRecord,
    VaultStore,
)
from commercekit.payments._vault._card_vault import (
    CardToken,
    CardVault,
    InMemoryVaultStore,
    StaticKeyRing,
)
from commercekit.payments._webhooks._processor import (
    HmacSignatureVerifier,
    StripeSignatureVerifier,
    WebhookEvent,
    WebhookOutcome,
    WebhookProcessor,
    stripe_signature,
)

if TYPE_CHECKING:
    from commercekit.payments._sql._async_idempotency import AsyncSqlAlchemyIdempotencyStore
    from commercekit.payments._sql._idempotency import SqlAlchemyIdempotencyStore
    from commercekit.payments._vault._sql import SqlAlchemyVaultStore

__all__ = [
    "ADYEN_AMOUNTS",
    "ADYEN_REFUSAL_CODES",
    "AMAZON_PAY_AMOUNTS",
    "AMAZON_PAY_DECLINE_CODES",
    "ISO_AMOUNTS",
    "SANDBOX_CARDS",
    "STRIPE_AMOUNTS",
    "STRIPE_DECLINE_CODES",
    "TRANSITIONS",
    "ActionRequired",
    "AdyenGateway",
    "AiohttpTransport",
    "AmazonPayConfig",
    "AmazonPayGateway",
    "AmazonPayNotifications",
    "AmazonPaySigner",
    "AmountRules",
    "AnyResult",
    "AsyncAdyenGateway",
    "AsyncAmazonPayGateway",
    "AsyncHttpTransport",
    "AsyncHttpxTransport",
    "AsyncIdempotencyStore",
    "AsyncPaymentGateway",
    "AsyncPaymentService",
    "AsyncSandboxGateway",
    "AsyncSqlAlchemyIdempotencyStore",
    "AsyncStripeGateway",
    "Card",
    "CardBrand",
    "CardNumber",
    "CardToken",
    "CardVault",
    "CheckoutSession",
    "Claim",
    "ClaimKind",
    "Clock",
    "DeclineCode",
    "GatewayCapabilities",
    "HmacSignatureVerifier",
    "HttpRequest",
    "HttpResponse",
    "HttpTransport",
    "HttpxTransport",
    "IdempotencyRecord",
    "IdempotencyStore",
    "InMemoryIdempotencyStore",
    "InMemoryVaultStore",
    "KeyRing",
    "MockTransport",
    "Operation",
    "OperationInFlightError",
    "Outcome",
    "Payment",
    "PaymentEvent",
    "PaymentGateway",
    "PaymentResult",
    "PaymentRetryPolicy",
    "PaymentService",
    "PaymentSource",
    "PaymentState",
    "ProviderToken",
    "RateLimitedError",
    "RecordStatus",
    "RedirectDetails",
    "RetryPolicy",
    "SandboxFault",
    "SandboxGateway",
    "SecurityCode",
    "ServiceSource",
    "Sleep",
    "SnsMessage",
    "SnsVerifier",
    "SqlAlchemyIdempotencyStore",
    "SqlAlchemyVaultStore",
    "StaticKeyRing",
    "StripeGateway",
    "StripeSignatureVerifier",
    "UrllibTransport",
    "VaultRecord",
    "VaultStore",
    "WebhookEvent",
    "WebhookOutcome",
    "WebhookProcessor",
    "luhn_valid",
    "mask_number",
    "redact_provider_text",
    "stripe_signature",
    "transition",
]

# The SQL stores import SQLAlchemy (about 0.2 s), so they load on first use: a
# process that only talks to a gateway never pays for it.
_LAZY = {
    "SqlAlchemyIdempotencyStore": "commercekit.payments._sql._idempotency",
    "AsyncSqlAlchemyIdempotencyStore": "commercekit.payments._sql._async_idempotency",
    "SqlAlchemyVaultStore": "commercekit.payments._vault._sql",
}


def __getattr__(name: str) -> Any:
    if name not in _LAZY:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    import importlib

    value = getattr(importlib.import_module(_LAZY[name]), name)
    globals()[name] = value
    return value
