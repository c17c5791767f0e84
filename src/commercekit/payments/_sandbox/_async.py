"""AsyncSandboxGateway: the sandbox behind the async gateway protocol, for async tests and demos.

The sandbox does no I/O (its books are in process, its faults are raised, not
slept), so its async twin awaits nothing: each coroutine runs the sync
sandbox's method, the one place its rules are written.
"""

from __future__ import annotations

from commercekit.money import Currency, Money
from commercekit.payments._core._results import AnyResult, Operation, PaymentResult
from commercekit.payments._sandbox._gateway import SandboxGateway
from commercekit.payments._transports._owned import OwnsAsyncTransport
from commercekit.payments._typing import GatewayCapabilities, PaymentSource

__all__ = ["AsyncSandboxGateway"]


class AsyncSandboxGateway(OwnsAsyncTransport):
    """An :class:`AsyncPaymentGateway` over *sandbox* (a new :class:`SandboxGateway` if None).

    Read the provider's side (``operations``, ``charge``, ``authenticate``)
    on :attr:`sandbox`. It takes ``await aclose()`` and ``async with`` as the
    HTTP gateways do (there is nothing to close).
    """

    def __init__(self, sandbox: SandboxGateway | None = None) -> None:
        self.sandbox = sandbox if sandbox is not None else SandboxGateway()

    @property
    def name(self) -> str:
        """The sandbox's provider name."""
        return self.sandbox.name

    @property
    def capabilities(self) -> GatewayCapabilities:
        """The sandbox's capabilities."""
        return self.sandbox.capabilities

    async def authorize(
        self,
        amount: Money,
        source: PaymentSource,
        *,
        idempotency_key: str,
        return_url: str | None = None,
    ) -> AnyResult:
        """See :meth:`SandboxGateway.authorize`."""
        return self.sandbox.authorize(
            amount, source, idempotency_key=idempotency_key, return_url=return_url
        )

    async def purchase(
        self,
        amount: Money,
        source: PaymentSource,
        *,
        idempotency_key: str,
        return_url: str | None = None,
    ) -> AnyResult:
        """See :meth:`SandboxGateway.purchase`."""
        return self.sandbox.purchase(
            amount, source, idempotency_key=idempotency_key, return_url=return_url
        )

    async def capture(
        self, reference: str, amount: Money, *, idempotency_key: str
    ) -> PaymentResult:
        """See :meth:`SandboxGateway.capture`."""
        return self.sandbox.capture(reference, amount, idempotency_key=idempotency_key)

    async def void(self, reference: str, *, idempotency_key: str) -> PaymentResult:
        """See :meth:`SandboxGateway.void`."""
        return self.sandbox.void(reference, idempotency_key=idempotency_key)

    async def refund(self, reference: str, amount: Money, *, idempotency_key: str) -> PaymentResult:
        """See :meth:`SandboxGateway.refund`."""
        return self.sandbox.refund(reference, amount, idempotency_key=idempotency_key)

    async def verify(
        self, source: PaymentSource, currency: Currency, *, idempotency_key: str
    ) -> PaymentResult:
        """See :meth:`SandboxGateway.verify`."""
        return self.sandbox.verify(source, currency, idempotency_key=idempotency_key)

    async def complete_action(self, reference: str, *, idempotency_key: str) -> AnyResult:
        """See :meth:`SandboxGateway.complete_action`."""
        return self.sandbox.complete_action(reference, idempotency_key=idempotency_key)

    async def lookup(
        self, operation: Operation, *, idempotency_key: str, reference: str | None
    ) -> AnyResult | None:
        """See :meth:`SandboxGateway.lookup`."""
        return self.sandbox.lookup(operation, idempotency_key=idempotency_key, reference=reference)

    def __repr__(self) -> str:
        return f"AsyncSandboxGateway({self.sandbox!r})"
