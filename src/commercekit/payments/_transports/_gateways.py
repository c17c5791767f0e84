"""The sync and async shells of an HTTP gateway, over one set of flows per provider.

A provider's rules (the requests it is sent, how its answers read, what
each answer means for the payment) are written once, as flows (see
:mod:`commercekit.payments._core._flow`) whose only effect is
``transport.handle(request)``. :class:`FlowGateway` runs them over a sync
:class:`HttpTransport`, :class:`AsyncFlowGateway` awaits them over an
:class:`AsyncHttpTransport`. Both turn an answer that cannot be read (a
missing field, a wrong type) into :class:`~commercekit.errors.OutcomeUnknownError`,
as :func:`unreadable_answers` does for gateways written the plain way.
"""

from __future__ import annotations

from typing import Protocol, TypeVar

from commercekit.errors import CommerceKitError, OutcomeUnknownError
from commercekit.money import Currency, Money
from commercekit.payments._core._flow import Flow, adrive, drive
from commercekit.payments._core._results import AnyResult, Operation, PaymentResult
from commercekit.payments._transports._http import UNREADABLE
from commercekit.payments._transports._owned import OwnsAsyncTransport, OwnsTransport
from commercekit.payments._typing import GatewayCapabilities, PaymentSource

__all__ = ["AsyncFlowGateway", "FlowGateway", "GatewayFlows", "readable"]

_T = TypeVar("_T")


class GatewayFlows(Protocol):
    """A provider's operations as flows: :class:`PaymentGateway`'s methods, each a Flow."""

    @property
    def name(self) -> str:
        """The provider name."""
        ...

    @property
    def capabilities(self) -> GatewayCapabilities:
        """What the provider allows."""
        ...

    def authorize(
        self, amount: Money, source: PaymentSource, *, idempotency_key: str, return_url: str | None
    ) -> Flow[AnyResult]:
        """See :meth:`PaymentGateway.authorize`."""
        ...

    def purchase(
        self, amount: Money, source: PaymentSource, *, idempotency_key: str, return_url: str | None
    ) -> Flow[AnyResult]:
        """See :meth:`PaymentGateway.purchase`."""
        ...

    def capture(
        self, reference: str, amount: Money, *, idempotency_key: str
    ) -> Flow[PaymentResult]:
        """See :meth:`PaymentGateway.capture`."""
        ...

    def void(self, reference: str, *, idempotency_key: str) -> Flow[PaymentResult]:
        """See :meth:`PaymentGateway.void`."""
        ...

    def refund(self, reference: str, amount: Money, *, idempotency_key: str) -> Flow[PaymentResult]:
        """See :meth:`PaymentGateway.refund`."""
        ...

    def verify(
        self, source: PaymentSource, currency: Currency, *, idempotency_key: str
    ) -> Flow[PaymentResult]:
        """See :meth:`PaymentGateway.verify`."""
        ...

    def complete_action(self, reference: str, *, idempotency_key: str) -> Flow[AnyResult]:
        """See :meth:`PaymentGateway.complete_action`."""
        ...

    def lookup(
        self, operation: Operation, *, idempotency_key: str, reference: str | None
    ) -> Flow[AnyResult | None]:
        """See :meth:`PaymentGateway.lookup`."""
        ...


def readable(provider: str, method: str, flow: Flow[_T]) -> Flow[_T]:
    """*flow*, with a failure to read *provider*'s answer turned into OutcomeUnknownError."""
    try:
        return (yield from flow)
    except CommerceKitError:
        raise
    except UNREADABLE as exc:
        raise OutcomeUnknownError(
            f"{provider}'s answer to {method} could not be read ({type(exc).__name__}); the "
            "call may have taken effect: look it up before trying again"
        ) from exc


class FlowGateway(OwnsTransport):
    """A sync :class:`PaymentGateway` running a provider's flows (its transport is sync).

    ``close()`` or ``with`` closes the transport it made when given none.
    """

    _flows: GatewayFlows
    _provider: str

    @property
    def name(self) -> str:
        """The provider name given to the gateway."""
        return self._flows.name

    @property
    def capabilities(self) -> GatewayCapabilities:
        """What the provider allows."""
        return self._flows.capabilities

    def authorize(
        self,
        amount: Money,
        source: PaymentSource,
        *,
        idempotency_key: str,
        return_url: str | None = None,
    ) -> AnyResult:
        """Hold *amount* on *source*; capture it later."""
        flow = self._flows.authorize(
            amount, source, idempotency_key=idempotency_key, return_url=return_url
        )
        return self._run("authorize", flow)

    def purchase(
        self,
        amount: Money,
        source: PaymentSource,
        *,
        idempotency_key: str,
        return_url: str | None = None,
    ) -> AnyResult:
        """Authorize and capture *amount* at once."""
        flow = self._flows.purchase(
            amount, source, idempotency_key=idempotency_key, return_url=return_url
        )
        return self._run("purchase", flow)

    def capture(self, reference: str, amount: Money, *, idempotency_key: str) -> PaymentResult:
        """Capture *amount* of the authorization *reference*."""
        return self._run(
            "capture", self._flows.capture(reference, amount, idempotency_key=idempotency_key)
        )

    def void(self, reference: str, *, idempotency_key: str) -> PaymentResult:
        """Release the authorization *reference*."""
        return self._run("void", self._flows.void(reference, idempotency_key=idempotency_key))

    def refund(self, reference: str, amount: Money, *, idempotency_key: str) -> PaymentResult:
        """Refund *amount* of payment *reference*."""
        return self._run(
            "refund", self._flows.refund(reference, amount, idempotency_key=idempotency_key)
        )

    def verify(
        self, source: PaymentSource, currency: Currency, *, idempotency_key: str
    ) -> PaymentResult:
        """Check *source* with a zero-amount authorization."""
        return self._run(
            "verify", self._flows.verify(source, currency, idempotency_key=idempotency_key)
        )

    def complete_action(self, reference: str, *, idempotency_key: str) -> AnyResult:
        """Read where payment *reference* stands after the customer's action."""
        flow = self._flows.complete_action(reference, idempotency_key=idempotency_key)
        return self._run("complete_action", flow)

    def lookup(
        self, operation: Operation, *, idempotency_key: str, reference: str | None
    ) -> AnyResult | None:
        """Find the operation sent with *idempotency_key*; None when the provider never saw it."""
        flow = self._flows.lookup(operation, idempotency_key=idempotency_key, reference=reference)
        return self._run("lookup", flow)

    def _run(self, method: str, flow: Flow[_T]) -> _T:
        return drive(readable(self._provider, method, flow))


class AsyncFlowGateway(OwnsAsyncTransport):
    """An :class:`AsyncPaymentGateway` awaiting a provider's flows (its transport is async).

    ``await aclose()`` or ``async with`` closes the transport it made when given none.
    """

    _flows: GatewayFlows
    _provider: str

    @property
    def name(self) -> str:
        """The provider name given to the gateway."""
        return self._flows.name

    @property
    def capabilities(self) -> GatewayCapabilities:
        """What the provider allows."""
        return self._flows.capabilities

    async def authorize(
        self,
        amount: Money,
        source: PaymentSource,
        *,
        idempotency_key: str,
        return_url: str | None = None,
    ) -> AnyResult:
        """Hold *amount* on *source*; capture it later."""
        flow = self._flows.authorize(
            amount, source, idempotency_key=idempotency_key, return_url=return_url
        )
        return await self._run("authorize", flow)

    async def purchase(
        self,
        amount: Money,
        source: PaymentSource,
        *,
        idempotency_key: str,
        return_url: str | None = None,
    ) -> AnyResult:
        """Authorize and capture *amount* at once."""
        flow = self._flows.purchase(
            amount, source, idempotency_key=idempotency_key, return_url=return_url
        )
        return await self._run("purchase", flow)

    async def capture(
        self, reference: str, amount: Money, *, idempotency_key: str
    ) -> PaymentResult:
        """Capture *amount* of the authorization *reference*."""
        return await self._run(
            "capture", self._flows.capture(reference, amount, idempotency_key=idempotency_key)
        )

    async def void(self, reference: str, *, idempotency_key: str) -> PaymentResult:
        """Release the authorization *reference*."""
        return await self._run("void", self._flows.void(reference, idempotency_key=idempotency_key))

    async def refund(self, reference: str, amount: Money, *, idempotency_key: str) -> PaymentResult:
        """Refund *amount* of payment *reference*."""
        return await self._run(
            "refund", self._flows.refund(reference, amount, idempotency_key=idempotency_key)
        )

    async def verify(
        self, source: PaymentSource, currency: Currency, *, idempotency_key: str
    ) -> PaymentResult:
        """Check *source* with a zero-amount authorization."""
        return await self._run(
            "verify", self._flows.verify(source, currency, idempotency_key=idempotency_key)
        )

    async def complete_action(self, reference: str, *, idempotency_key: str) -> AnyResult:
        """Read where payment *reference* stands after the customer's action."""
        flow = self._flows.complete_action(reference, idempotency_key=idempotency_key)
        return await self._run("complete_action", flow)

    async def lookup(
        self, operation: Operation, *, idempotency_key: str, reference: str | None
    ) -> AnyResult | None:
        """Find the operation sent with *idempotency_key*; None when the provider never saw it."""
        flow = self._flows.lookup(operation, idempotency_key=idempotency_key, reference=reference)
        return await self._run("lookup", flow)

    async def _run(self, method: str, flow: Flow[_T]) -> _T:
        return await adrive(readable(self._provider, method, flow))
