"""Amazon Pay (Checkout v2): the gateway, its signing, its wire format and its notifications."""

from commercekit.payments._amazonpay._codes import AMAZON_PAY_AMOUNTS, AMAZON_PAY_DECLINE_CODES
from commercekit.payments._amazonpay._gateway import AmazonPayGateway, AsyncAmazonPayGateway
from commercekit.payments._amazonpay._notifications import AmazonPayNotifications
from commercekit.payments._amazonpay._session import CheckoutSession
from commercekit.payments._amazonpay._signing import (
    ALGORITHMS,
    AmazonPaySigner,
    SignedRequest,
    canonical_request,
    string_to_sign,
)
from commercekit.payments._amazonpay._sns import SnsMessage, SnsVerifier, sns_canonical_string
from commercekit.payments._amazonpay._wire import (
    AmazonPayConfig,
    AmazonPayRefusal,
    amazon_pay_idempotency_key,
)

__all__ = [
    "ALGORITHMS",
    "AMAZON_PAY_AMOUNTS",
    "AMAZON_PAY_DECLINE_CODES",
    "AmazonPayConfig",
    "AmazonPayGateway",
    "AmazonPayNotifications",
    "AmazonPayRefusal",
    "AmazonPaySigner",
    "AsyncAmazonPayGateway",
    "CheckoutSession",
    "SignedRequest",
    "SnsMessage",
    "SnsVerifier",
    "amazon_pay_idempotency_key",
    "canonical_request",
    "sns_canonical_string",
    "string_to_sign",
]
