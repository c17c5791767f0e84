"""AsyncPaymentService: the sync service's flows on asyncio, without ever blocking the loop."""

from __future__ import annotations

import asyncio
import time
from pathlib import Path

import pytest

from commercekit.errors import ConfigurationError, RateLimitedError
from commercekit.money import Money
from commercekit.payments import (
    AnyResult,
    AsyncPaymentService,
    AsyncSandboxGateway,
    AsyncSqlAlchemyIdempotencyStore,
    Card,
    InMemoryIdempotencyStore,
    PaymentService,
    PaymentSource,
    PaymentState,
    RetryPolicy,
    SandboxGateway,
)

CARD = Card("4242 4242 4242 4242", 12, 2031, cvv="123")


class ThrottledOnce(AsyncSandboxGateway):
    """The sandbox, answering 429 with Retry-After to the first authorization."""

    throttled = False

    async def authorize(
        self,
        amount: Money,
        source: PaymentSource,
        *,
        idempotency_key: str,
        return_url: str | None = None,
    ) -> AnyResult:
        if not self.throttled:
            self.throttled = True
            raise RateLimitedError("slow down", retry_after_s=0.5)
        return await super().authorize(
            amount, source, idempotency_key=idempotency_key, return_url=return_url
        )


def test_a_retry_awaits_its_wait_and_never_sleeps_the_thread(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    def blocked(seconds: float) -> None:
        raise AssertionError("time.sleep in async code")

    monkeypatch.setattr(time, "sleep", blocked)
    waits: list[float] = []

    async def sleep(seconds: float) -> None:
        waits.append(seconds)

    async def main() -> None:
        gateway = ThrottledOnce()
        service = AsyncPaymentService(
            gateway, InMemoryIdempotencyStore(), sleep=sleep, retry=RetryPolicy(attempts=3)
        )
        result = await service.authorize("a-1", Money.of("5.00", "EUR"), CARD)
        assert result.approved
        assert waits == [0.5]  # Retry-After honoured, capped by max_wait_s
        assert (await service.capture("a-1")).status is PaymentState.CAPTURED

    asyncio.run(main())


def test_a_sleep_that_cannot_be_awaited_is_a_configuration_error() -> None:
    with pytest.raises(ConfigurationError, match="async sleep"):
        AsyncPaymentService(ThrottledOnce(), InMemoryIdempotencyStore(), sleep=time.sleep)  # type: ignore[arg-type]

    async def main() -> None:
        service = AsyncPaymentService(
            ThrottledOnce(),
            InMemoryIdempotencyStore(),
            sleep=lambda _s: None,  # type: ignore[arg-type]
        )
        with pytest.raises(ConfigurationError, match="async sleep"):
            await service.authorize("a-1", Money.of("5.00", "EUR"), CARD)

    asyncio.run(main())


def test_concurrent_checkouts_on_an_async_sql_store_charge_once_per_key(tmp_path: Path) -> None:
    from sqlalchemy.ext.asyncio import create_async_engine

    async def main() -> None:
        engine = create_async_engine(f"sqlite+aiosqlite:///{tmp_path / 'pay.db'}")
        store = AsyncSqlAlchemyIdempotencyStore(engine)
        await store.create_tables()
        gateway = AsyncSandboxGateway()
        service = AsyncPaymentService(gateway, store)
        amount = Money.of("9.99", "USD")
        attempts = [service.authorize(f"p-{i % 5}", amount, CARD) for i in range(20)]
        results = await asyncio.gather(*attempts, return_exceptions=True)
        approved = [r for r in results if not isinstance(r, BaseException) and r.approved]
        assert approved  # the losers of a race are told to retry, never charged again
        charged = [key for key, result in gateway.sandbox.operations if result.approved]
        assert sorted(set(charged)) == sorted(charged)  # one charge per key
        assert len(charged) <= 5
        payment = await service.payment("p-0")
        assert payment.state is PaymentState.AUTHORIZED
        await engine.dispose()

    asyncio.run(main())


def test_a_sync_service_refuses_an_async_gateway_with_a_clear_error() -> None:
    service = PaymentService(AsyncSandboxGateway(), InMemoryIdempotencyStore())  # type: ignore[arg-type]
    with pytest.raises(ConfigurationError, match="Async"):
        service.authorize("s-1", Money.of("1.00", "USD"), CARD)
    assert SandboxGateway().name == "sandbox"


def test_the_async_service_refuses_a_sync_gateway() -> None:
    with pytest.raises(ConfigurationError, match="async gateway"):
        AsyncPaymentService(SandboxGateway(), InMemoryIdempotencyStore())  # type: ignore[arg-type]
