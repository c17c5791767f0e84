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
