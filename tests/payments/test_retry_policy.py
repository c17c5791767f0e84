"""commercekit.payments.RetryPolicy: the shared policy with the payment service's own defaults."""

from __future__ import annotations

import random

import pytest

import commercekit.payments
import commercekit.repository
from commercekit._retry import RetryPolicy as SharedRetryPolicy
from commercekit.errors import RateLimitedError, UnavailableError
from commercekit.payments import PaymentRetryPolicy, RetryPolicy


def _old_delay_s(
    attempt: int, exc: BaseException | None, rng: random.Random, base_s: float, max_s: float
) -> float:
    """What the payments RetryPolicy.delay_s answered before the policies became one."""
    hinted = getattr(exc, "retry_after_s", None)
    if isinstance(hinted, int | float) and hinted > 0:
        return min(float(hinted), max_s)
    return rng.uniform(0, min(max_s, base_s * 2 ** (attempt - 1)))


def test_a_payments_policy_built_by_hand_keeps_the_payment_defaults() -> None:
    assert RetryPolicy is PaymentRetryPolicy
    policy = RetryPolicy()
    assert (policy.attempts, policy.initial_wait_s, policy.max_wait_s) == (4, 0.05, 2.0)
    assert policy.max_reconcile_rounds == 3
    assert RetryPolicy(attempts=6).max_wait_s == 2.0
    with pytest.warns(DeprecationWarning, match="max_attempts"):
        assert RetryPolicy(max_attempts=6).initial_wait_s == 0.05
    # still the one policy: the repository and the service take either
    assert isinstance(policy, SharedRetryPolicy)
    assert issubclass(commercekit.payments.RetryPolicy, commercekit.repository.RetryPolicy)
    shared = commercekit.repository.RetryPolicy()
    assert (shared.attempts, shared.initial_wait_s, shared.max_wait_s) == (3, 0.01, 0.5)


def test_the_service_default_is_a_payments_policy_built_by_hand() -> None:
    from commercekit.payments._core._reconcile import PAYMENT_RETRY

    assert RetryPolicy() == PAYMENT_RETRY


@pytest.mark.parametrize("policy", [RetryPolicy(), commercekit.repository.RetryPolicy()])
def test_delay_s_is_a_deprecated_alias_giving_the_old_answer(policy: SharedRetryPolicy) -> None:
    errors: list[BaseException | None] = [
        None,
        UnavailableError("refused"),
        RateLimitedError("slow down", retry_after_s=1.25),
        RateLimitedError("slow down", retry_after_s=60.0),
    ]
    for attempt in range(1, 7):
        for exc in errors:
            seed = attempt * 31 + len(str(exc))
            with pytest.warns(DeprecationWarning, match=r"delay_s\(\) is deprecated; use wait_s"):
                got = policy.delay_s(attempt, exc, random.Random(seed))
            old = _old_delay_s(
                attempt, exc, random.Random(seed), policy.initial_wait_s, policy.max_wait_s
            )
            assert got == old == policy.wait_s(attempt, exc, random.Random(seed))


def test_one_policy_built_for_both_parts_still_serves_the_payment_services() -> None:
    """A commercekit RetryPolicy is no payments.RetryPolicy now, and every service takes it."""
    import asyncio
    import inspect
    import sys

    from commercekit.money import Money
    from commercekit.payments import (
        AsyncPaymentService,
        AsyncSandboxGateway,
        Card,
        InMemoryIdempotencyStore,
        PaymentService,
        SandboxFault,
        SandboxGateway,
    )
    from commercekit.repository import Database, Node, ReplicatedTopology, sqlite_engine

    shared = commercekit.repository.RetryPolicy(attempts=2, initial_wait_s=0.0, max_wait_s=0.0)
    assert not isinstance(shared, RetryPolicy)  # the subclass: users must not need it
    for service in (PaymentService, AsyncPaymentService):
        annotation = inspect.signature(service.__init__).parameters["retry"].annotation
        assert annotation == "RetryPolicy | None"
        assert vars(sys.modules[service.__module__])["RetryPolicy"] is SharedRetryPolicy

    def sandbox() -> SandboxGateway:
        return SandboxGateway(
            faults=lambda op, key: SandboxFault.RATE_LIMITED if op == "authorize" else None
        )

    card = Card("4242424242424242", 12, 2031, cvv="123")
    waits: list[float] = []
    sync = PaymentService(sandbox(), InMemoryIdempotencyStore(), retry=shared, sleep=waits.append)
    with pytest.raises(RateLimitedError):
        sync.authorize("p1", Money.of("5.00", "EUR"), card)
    assert waits == [0.0]  # attempts=2: one wait, capped by the shared policy's max_wait_s

    async def main() -> None:
        async def sleep(seconds: float) -> None:
            waits.append(seconds)

        service = AsyncPaymentService(
            AsyncSandboxGateway(sandbox()), InMemoryIdempotencyStore(), retry=shared, sleep=sleep
        )
        with pytest.raises(RateLimitedError):
            await service.authorize("p2", Money.of("5.00", "EUR"), card)

    waits.clear()
    asyncio.run(main())
    assert waits == [0.0]
    Database(ReplicatedTopology(Node("p", sqlite_engine())), retry=shared).close()
