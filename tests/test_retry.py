"""The one RetryPolicy: what it retries, how long it waits, and the names it used to have."""

from __future__ import annotations

import asyncio
import random
from collections.abc import Callable

import attrs
import pytest

import commercekit.payments
import commercekit.repository
from commercekit._retry import RetryPolicy
from commercekit.errors import (
    ConfigurationError,
    OutcomeUnknownError,
    RateLimitedError,
    UnavailableError,
)


def test_both_parts_share_one_class() -> None:
    assert commercekit.repository.RetryPolicy is RetryPolicy
    # payments' is the same class with the payment service's defaults, nothing else
    payments = commercekit.payments.RetryPolicy
    assert payments.__bases__ == (RetryPolicy,)
    assert [a.name for a in attrs.fields(payments)] == [a.name for a in attrs.fields(RetryPolicy)]
    fields = {a.name for a in attrs.fields(payments)}
    assert not [n for n in vars(payments) if not n.startswith("__") and n not in fields]


def test_transient_errors_are_retried_up_to_attempts_and_others_never() -> None:
    calls: list[int] = []
    waits: list[float] = []

    def flaky() -> str:
        calls.append(1)
        if len(calls) < 3:
            raise UnavailableError("refused")
        return "ok"

    policy = RetryPolicy(attempts=3, initial_wait_s=0.01, max_wait_s=0.05)
    retried: list[BaseException] = []
    assert policy.call(flaky, sleep=waits.append, on_retry=retried.append) == "ok"
    assert len(calls) == 3
    assert len(waits) == len(retried) == 2
    assert all(0 <= w <= 0.05 for w in waits)

    def unknown() -> str:
        calls.append(1)
        raise OutcomeUnknownError("read timeout after sending")

    calls.clear()
    with pytest.raises(OutcomeUnknownError):
        policy.call(unknown, sleep=waits.append)
    assert len(calls) == 1

    def always() -> str:
        calls.append(1)
        raise UnavailableError("refused")

    calls.clear()
    with pytest.raises(UnavailableError):
        policy.call(always, sleep=waits.append)
    assert len(calls) == 3


def test_retry_after_is_the_wait_up_to_the_cap() -> None:
    policy = RetryPolicy(attempts=3, initial_wait_s=0.01, max_wait_s=1.5)
    rng = random.Random(1)
    assert policy.wait_s(1, RateLimitedError("slow down", retry_after_s=1.0), rng) == 1.0
    assert policy.wait_s(1, RateLimitedError("slow down", retry_after_s=9.0), rng) == 1.5
    assert 0 <= policy.wait_s(5, UnavailableError("x"), rng) <= 0.16


def test_acall_awaits_its_waits_and_never_blocks() -> None:
    waits: list[float] = []
    calls: list[int] = []

    async def sleep(seconds: float) -> None:
        waits.append(seconds)

    async def flaky() -> str:
        calls.append(1)
        if len(calls) < 2:
            raise RateLimitedError("429", retry_after_s=0.25)
        return "ok"

    policy = RetryPolicy(attempts=4, max_wait_s=1.0)
    assert asyncio.run(policy.acall(flaky, sleep=sleep)) == "ok"
    assert waits == [0.25]


def test_old_payment_names_still_work_with_a_warning() -> None:
    with pytest.warns(DeprecationWarning, match="max_attempts"):
        policy = RetryPolicy(max_attempts=2, base_delay_s=0.1, max_delay_s=1.0)
    assert (policy.attempts, policy.initial_wait_s, policy.max_wait_s) == (2, 0.1, 1.0)
    with pytest.warns(DeprecationWarning, match="use attempts"):
        assert policy.max_attempts == 2
    with pytest.raises(ConfigurationError), pytest.warns(DeprecationWarning, match="max_attempts"):
        RetryPolicy(attempts=2, max_attempts=3)


@pytest.mark.parametrize("bad", [{"attempts": 0}, {"initial_wait_s": -1}, {"max_wait_s": True}])
def test_bad_settings_are_refused(bad: dict[str, object]) -> None:
    with pytest.raises(ConfigurationError):
        RetryPolicy(**bad)


@pytest.mark.parametrize("sleep", [lambda _s: None, lambda _s: 0.5])
def test_acall_with_a_sleep_that_cannot_be_awaited_is_a_configuration_error(
    sleep: Callable[[float], object],
) -> None:
    calls: list[int] = []

    async def always() -> str:
        calls.append(1)
        raise UnavailableError("refused")

    with pytest.raises(ConfigurationError, match="async sleep"):
        asyncio.run(RetryPolicy(attempts=3).acall(always, sleep=sleep))  # type: ignore[arg-type]
    assert calls == [1]  # refused before anything was tried again


def test_call_with_an_async_sleep_is_a_configuration_error() -> None:
    calls: list[int] = []

    def always() -> str:
        calls.append(1)
        raise UnavailableError("refused")

    async def later(seconds: float) -> None:
        raise AssertionError("never awaited")

    for sleep in (asyncio.sleep, later, lambda s: later(s)):
        calls.clear()
        with pytest.raises(ConfigurationError, match="sync sleep"):
            RetryPolicy(attempts=3).call(always, sleep=sleep)  # type: ignore[arg-type]
        assert calls == [1]
