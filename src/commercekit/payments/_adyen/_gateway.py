"""AdyenGateway and AsyncAdyenGateway: Adyen's Checkout API (v71), sync and asyncio.

Both run the same flows (:class:`~._flows.AdyenFlows`, whose docstring tells
how each operation maps onto Adyen); only the transport differs.
"""

from __future__ import annotations

from collections.abc import Mapping

from commercekit.payments._adyen._codes import ADYEN_AMOUNTS
from commercekit.payments._adyen._flows import AdyenFlows, RedirectDetails
from commercekit.payments._adyen._wire import AdyenClient
from commercekit.payments._core._amounts import AmountRules
from commercekit.payments._transports._gateways import AsyncFlowGateway, FlowGateway
from commercekit.payments._transports._httpx import AsyncHttpTransport
from commercekit.payments._typing import HttpTransport

__all__ = ["AdyenGateway", "AsyncAdyenGateway", "RedirectDetails"]

_TEST_URL = "https://checkout-test.adyen.com/v71"


class AdyenGateway(FlowGateway):
    """A :class:`PaymentGateway` over Adyen's Checkout API.

    *base_url* is the test endpoint unless given; live accounts use
    ``https://{prefix}-checkout-live.adyenpayments.com/checkout/v71``.
    *return_url* is where Adyen sends the shopper back after 3-D Secure when
    a call names none. *multiple_captures* says whether Adyen enabled
    multiple partial captures on the account (off unless asked for).
    *transport* defaults to a pooled :class:`HttpxTransport`, which
    ``close()`` or ``with`` closes (one passed in is the caller's to close).
    """

    def __init__(
        self,
        api_key: str,
        merchant_account: str,
        *,
        return_url: str,
        transport: HttpTransport | None = None,
        base_url: str = _TEST_URL,
        timeout_s: float = 30.0,
        amounts: AmountRules = ADYEN_AMOUNTS,
        multiple_captures: bool = False,
        details: RedirectDetails | None = None,
        name: str = "adyen",
    ) -> None:
        self._client = AdyenClient(
            api_key,
            self._adopt(transport),
            base_url=base_url,
            timeout_s=timeout_s,
        )
        self._adyen = AdyenFlows(
            self._client,
            merchant_account,
            return_url=return_url,
            amounts=amounts,
            multiple_captures=multiple_captures,
            details=details,
            name=name,
        )
        self._flows = self._adyen
        self._provider = "Adyen"

    def shopper_returned(self, reference: str, details: Mapping[str, str]) -> None:
        """Keep what the shopper brought back for *reference* (``{"redirectResult": ...}``)."""
        self._adyen.shopper_returned(reference, details)

    def __repr__(self) -> str:
        return repr(self._adyen).replace("AdyenFlows", "AdyenGateway", 1)


class AsyncAdyenGateway(AsyncFlowGateway):
    """An :class:`AsyncPaymentGateway` over Adyen's Checkout API: :class:`AdyenGateway`, awaited.

    *transport* defaults to a pooled :class:`AiohttpTransport` (the
    ``[http]`` extra); close it with ``await gateway.aclose()`` or ``async with``.
    """

    def __init__(
        self,
        api_key: str,
        merchant_account: str,
        *,
        return_url: str,
        transport: AsyncHttpTransport | None = None,
        base_url: str = _TEST_URL,
        timeout_s: float = 30.0,
        amounts: AmountRules = ADYEN_AMOUNTS,
        multiple_captures: bool = False,
        details: RedirectDetails | None = None,
        name: str = "adyen",
    ) -> None:
        self._transport = self._adopt(transport)
        self._client = AdyenClient(api_key, self._transport, base_url=base_url, timeout_s=timeout_s)
        self._adyen = AdyenFlows(
            self._client,
            merchant_account,
            return_url=return_url,
            amounts=amounts,
            multiple_captures=multiple_captures,
            details=details,
            name=name,
        )
        self._flows = self._adyen
        self._provider = "Adyen"

    def shopper_returned(self, reference: str, details: Mapping[str, str]) -> None:
        """Keep what the shopper brought back for *reference* (``{"redirectResult": ...}``)."""
        self._adyen.shopper_returned(reference, details)

    def __repr__(self) -> str:
        return repr(self._adyen).replace("AdyenFlows", "AsyncAdyenGateway", 1)
