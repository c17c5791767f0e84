"""The shape of commercekit.payments: its public names, its folders and its module sizes.

The public names are those of the flat layout before the part was grouped into
sub-packages; none may disappear. Every folder stays small enough to read, every
module under 400 lines unless it says why, and ``__init__.py`` only re-exports.
"""

from __future__ import annotations

import ast
import pathlib

import commercekit.payments

ROOT = pathlib.Path(commercekit.payments.__file__).parent

PUBLIC_BEFORE = frozenset(
    {
        "ADYEN_AMOUNTS",
        "ADYEN_REFUSAL_CODES",
        "AMAZON_PAY_AMOUNTS",
        "AMAZON_PAY_DECLINE_CODES",
        "ActionRequired",
        "AdyenGateway",
        "AmazonPayConfig",
        "AmazonPayGateway",
        "AmazonPayNotifications",
        "AmazonPaySigner",
        "AmountRules",
        "AnyResult",
        "AsyncHttpTransport",
        "AsyncHttpxTransport",
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
        "ISO_AMOUNTS",
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
        "PaymentService",
        "PaymentSource",
        "PaymentState",
        "ProviderToken",
        "RateLimitedError",
        "RecordStatus",
        "RedirectDetails",
        "RetryPolicy",
        "SANDBOX_CARDS",
        "STRIPE_AMOUNTS",
        "STRIPE_DECLINE_CODES",
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
        "TRANSITIONS",
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
    }
)
MAX_LINES = 400
MAX_MODULES = 15


def test_public_names_are_a_superset_of_the_flat_layouts() -> None:
    assert set(commercekit.payments.__all__) >= PUBLIC_BEFORE


def test_no_folder_holds_more_than_fifteen_modules() -> None:
    for folder in [ROOT, *(p for p in ROOT.rglob("*") if p.is_dir() and p.name != "__pycache__")]:
        modules = [p for p in folder.glob("*.py") if p.name != "__init__.py"]
        assert len(modules) <= MAX_MODULES, f"{folder} holds {len(modules)} modules"


def test_long_modules_say_why() -> None:
    for path in ROOT.rglob("*.py"):
        text = path.read_text()
        if text.count("\n") > MAX_LINES:
            assert "longer than 400 lines because" in text, f"{path} is long and says not why"


def test_init_only_re_exports() -> None:
    for path in ROOT.rglob("__init__.py"):
        tree = ast.parse(path.read_text())
        for node in tree.body:
            assert not isinstance(node, ast.ClassDef), f"{path} defines class {node.name}"
            if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
                assert node.name == "__getattr__", f"{path} defines {node.name}"
