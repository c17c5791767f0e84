"""The asyncio seams of commercekit.payments: the same contracts as ``_typing``, awaited.

An :class:`AsyncPaymentGateway` and an :class:`AsyncIdempotencyStore` keep
every promise of :class:`~commercekit.payments.PaymentGateway` and
:class:`~commercekit.payments.IdempotencyStore` (the same arguments, results
and errors); only their methods are coroutines.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Protocol

if TYPE_CHECKING:
    from commercekit.money import Currency, Money
    from commercekit.payments._core._records import Claim, IdempotencyRecord
    from commercekit.payments._core._results import AnyResult, Operation, PaymentResult
    from commercekit.payments._typing import GatewayCapabilities, PaymentSource

__all__ = ["AsyncIdempotencyStore", "AsyncPaymentGateway"]


class AsyncPaymentGateway(Protocol):
    """:class:`~commercekit.payments.PaymentGateway` for asyncio: the same contract, awaited."""

    @property
    def name(self) -> str:
        """A short provider name for metrics and records."""
        ...

    @property
    def capabilities(self) -> GatewayCapabilities:
        """What this provider allows."""
        ...

    async def authorize(
        self,
        amount: Money,
        source: PaymentSource,
        *,
        idempotency_key: str,
        return_url: str | None = None,
    ) -> AnyResult:
        """Hold *amount* on *source*; capture it later."""
        ...

    async def purchase(
        self,
        amount: Money,
        source: PaymentSource,
        *,
        idempotency_key: str,
        return_url: str | None = None,
    ) -> AnyResult:
        """Authorize and capture *amount* at once."""
        ...

    async def capture(
        self, reference: str, amount: Money, *, idempotency_key: str
    ) -> PaymentResult:
        """Capture *amount* (all or part) of an authorization."""
        ...

    async def void(self, reference: str, *, idempotency_key: str) -> PaymentResult:
        """Release an authorization that was not captured."""
        ...

    async def refund(self, reference: str, amount: Money, *, idempotency_key: str) -> PaymentResult:
        """Return *amount* (all or part) of what was captured."""
        ...

    async def verify(
        self, source: PaymentSource, currency: Currency, *, idempotency_key: str
    ) -> PaymentResult:
        """Check a card with a zero-amount authorization."""
        ...

    async def complete_action(self, reference: str, *, idempotency_key: str) -> AnyResult:
        """Read where a payment stands after the customer's action."""
        ...

    async def lookup(
        self, operation: Operation, *, idempotency_key: str, reference: str | None
    ) -> AnyResult | None:
        """Find the operation sent with *idempotency_key*; None when the provider never saw it."""
        ...


class AsyncIdempotencyStore(Protocol):
    """:class:`~commercekit.payments.IdempotencyStore` for asyncio: the same contract, awaited."""

    async def begin(
        self,
        key: str,
        *,
        scope: str,
        operation: str,
        fingerprint: str,
        request: str,
        owner: str,
        now: float,
        lease_s: float,
    ) -> Claim:
        """Claim *key* for *owner* until ``now + lease_s``, or say why not."""
        ...

    async def complete(self, key: str, *, owner: str, result: str, now: float) -> None:
        """Record *result* for *key* and free its scope."""
        ...

    async def release(self, key: str, *, owner: str, unknown: bool) -> None:
        """Give up *key*: forget it, or mark its outcome unknown."""
        ...

    async def get(self, key: str) -> IdempotencyRecord | None:
        """The record of *key*, or None."""
        ...

    async def history(self, scope: str) -> list[IdempotencyRecord]:
        """The completed records of *scope*, oldest first."""
        ...

    async def unresolved(self, now: float) -> list[IdempotencyRecord]:
        """Records whose outcome is unknown, or pending with a lease that has run out."""
        ...
