"""StripeGateway and AsyncStripeGateway: Stripe's PaymentIntents API, sync and asyncio.

Both run the same flows (:class:`~._flows.StripeFlows`: the requests, how the
answers read, what they mean); only the transport differs.
"""

from __future__ import annotations

from commercekit.payments._core._amounts import STRIPE_AMOUNTS, AmountRules
from commercekit.payments._stripe._flows import StripeFlows
from commercekit.payments._stripe._wire import StripeClient
from commercekit.payments._transports._gateways import AsyncFlowGateway, FlowGateway
from commercekit.payments._transports._httpx import AsyncHttpTransport
from commercekit.payments._typing import HttpTransport

__all__ = ["AsyncStripeGateway", "StripeGateway"]


class StripeGateway(FlowGateway):
    """A :class:`PaymentGateway` over Stripe's HTTP API.

    *transport* defaults to a pooled :class:`HttpxTransport` (the ``[http]`` extra;
    :class:`UrllibTransport` without it); pass a
    :class:`MockTransport` in tests. *base_url* points elsewhere for
    imitations such as localstripe. ``close()`` or ``with`` closes the
    transport it made (one passed in is the caller's to close).
    """

    def __init__(
        self,
        api_key: str,
        *,
        transport: HttpTransport | None = None,
        base_url: str = "https://api.stripe.com",
        timeout_s: float = 30.0,
        stripe_version: str | None = None,
        amounts: AmountRules = STRIPE_AMOUNTS,
        name: str = "stripe",
    ) -> None:
        self._client = StripeClient(
            api_key,
            self._adopt(transport),
            base_url=base_url,
            timeout_s=timeout_s,
            stripe_version=stripe_version,
        )
        self._flows = StripeFlows(self._client, amounts=amounts, name=name)
        self._provider = "Stripe"

    def __repr__(self) -> str:
        return f"StripeGateway({self._client!r})"


class AsyncStripeGateway(AsyncFlowGateway):
    """An :class:`AsyncPaymentGateway` over Stripe's HTTP API: :class:`StripeGateway`, awaited.

    *transport* defaults to a pooled :class:`AiohttpTransport` (the
    ``[http]`` extra); close it with ``await gateway.aclose()`` or ``async with``.
    """

    def __init__(
        self,
        api_key: str,
        *,
        transport: AsyncHttpTransport | None = None,
        base_url: str = "https://api.stripe.com",
        timeout_s: float = 30.0,
        stripe_version: str | None = None,
        amounts: AmountRules = STRIPE_AMOUNTS,
        name: str = "stripe",
    ) -> None:
        self._transport = self._adopt(transport)
        self._client = StripeClient(
            api_key,
            self._transport,
            base_url=base_url,
            timeout_s=timeout_s,
            stripe_version=stripe_version,
        )
        self._flows = StripeFlows(self._client, amounts=amounts, name=name)
        self._provider = "Stripe"

    def __repr__(self) -> str:
        return f"AsyncStripeGateway({self._client!r})"
