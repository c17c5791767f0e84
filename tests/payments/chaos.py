"""A seeded chaos harness: one payment's life per run, with faults at the transport.

Each run authorizes a payment, answers 3-D Secure if asked, then captures
(sometimes in parts, sometimes trying to capture too much) and refunds
(sometimes too much), or voids. Faults strike the provider calls (connection
resets before sending and after the provider committed, timeouts, 500s, 429
with Retry-After, 409 in flight) and the local commit (a crash between the
provider's answer and the store). The caller behaves as a real one does:
retries with the same key, restarts after a crash. At the end, faults stop,
the service reconciles, and the provider's books are compared with ours.

A world with a *loop* runs the async twins: :class:`AsyncPaymentService` over
the async gateway, each call through the loop in a thread.
"""

from __future__ import annotations

import enum
import json
import random
from collections import Counter
from collections.abc import Callable
from typing import Any, Protocol

import attrs
from anyio.from_thread import BlockingPortal

from commercekit.errors import (
    CommerceKitError,
    InvalidInputError,
    InvalidStateError,
    OutcomeUnknownError,
    TransientError,
    UnavailableError,
)
from commercekit.money import Money
from commercekit.payments import (
    ActionRequired,
    AnyResult,
    AsyncPaymentService,
    Card,
    HttpRequest,
    HttpResponse,
    HttpTransport,
    IdempotencyStore,
    Operation,
    OperationInFlightError,
    PaymentGateway,
    PaymentService,
    PaymentState,
    RetryPolicy,
)
from tests.payments.blocking import Blocking


class Fault(enum.Enum):
    RESET_BEFORE_SEND = "reset_before_send"
    RESET_AFTER_COMMIT = "reset_after_commit"
    TIMEOUT_BEFORE_COMMIT = "timeout_before_commit"
    TIMEOUT_AFTER_COMMIT = "timeout_after_commit"
    HTTP_500 = "http_500"
    HTTP_500_AFTER_COMMIT = "http_500_after_commit"
    HTTP_429 = "http_429"
    HTTP_409 = "http_409"


def _status(code: int, **headers: str) -> HttpResponse:
    return HttpResponse(code, headers, json.dumps({"error": {"type": "api_error"}}).encode())


class FaultTransport:
    """Wraps a transport and injects one seeded fault into some requests."""

    def __init__(self, inner: HttpTransport, rng: random.Random, rate: float) -> None:
        self.inner = inner
        self.rng = rng
        self.rate = rate
        self.enabled = True
        self.injected: Counter[str] = Counter()

    def handle(self, request: HttpRequest) -> HttpResponse:
        if not self.enabled or self.rng.random() >= self.rate:
            return self.inner.handle(request)
        fault = self.rng.choice(list(Fault))
        self.injected[fault.value] += 1
        match fault:
            case Fault.RESET_BEFORE_SEND:
                raise UnavailableError("connection reset before the request was sent")
            case Fault.TIMEOUT_BEFORE_COMMIT:
                raise OutcomeUnknownError("read timed out")
            case Fault.HTTP_500:
                return _status(500)
            case Fault.HTTP_429:
                return _status(429, **{"Retry-After": "1"})
            case Fault.HTTP_409:
                return _status(409)
        self.inner.handle(request)  # the provider commits; the answer is lost
        if fault is Fault.HTTP_500_AFTER_COMMIT:
            return _status(500)
        raise OutcomeUnknownError("connection reset after the request was sent")


class AsyncFaultTransport:
    """:class:`FaultTransport` behind the async transport seam (the fake is in process)."""

    def __init__(self, faulty: FaultTransport) -> None:
        self.faulty = faulty

    async def handle(self, request: HttpRequest) -> HttpResponse:
        return self.faulty.handle(request)


async def _no_wait(seconds: float) -> None:
    return None


CARDS = {
    "ok": "4242424242424242",
    "declined": "4000000000000002",
    "funds": "4000000000009995",
    "3ds": "4000000000003220",
}
CURRENCIES = ("USD", "EUR", "JPY", "KWD")


class SimulatedCrash(Exception):
    """The process died between the provider's answer and the local commit."""


class FakeClock:
    def __init__(self) -> None:
        self.now = 1_700_000_000.0

    def __call__(self) -> float:
        self.now += 0.001
        return self.now


class CrashingStore:
    """Wraps a store; ``complete`` sometimes dies before writing, as a killed process would."""

    def __init__(self, inner: IdempotencyStore, chance: Callable[[], bool]) -> None:
        self.inner = inner
        self.chance = chance
        self.crashes = 0

    def begin(self, key: str, **kw: object) -> object:
        return self.inner.begin(key, **kw)  # type: ignore[arg-type]

    def complete(self, key: str, **kw: object) -> None:
        if self.chance():
            self.crashes += 1
            raise SimulatedCrash(key)
        self.inner.complete(key, **kw)  # type: ignore[arg-type]

    def release(self, key: str, **kw: object) -> None:
        self.inner.release(key, **kw)  # type: ignore[arg-type]

    def get(self, key: str) -> object:
        return self.inner.get(key)

    def history(self, scope: str) -> object:
        return self.inner.history(scope)

    def unresolved(self, now: float) -> object:
        return self.inner.unresolved(now)


class Provider(Protocol):
    """The provider's own books, read behind the gateway's back."""

    def executed(self, payment_id: str) -> Counter[str]:
        """How often each idempotency key of *payment_id* changed something at the provider."""
        ...

    def books(self, reference: str) -> tuple[int, int, int]:
        """(authorized, captured, refunded) as the provider holds them."""
        ...

    def authenticate(self, reference: str, success: bool) -> None:
        """Answer a 3-D Secure challenge."""
        ...


@attrs.define
class Tally:
    runs: int = 0
    double_charges: int = 0
    double_refunds: int = 0
    double_captures: int = 0
    lost_operations: int = 0
    over_captures: int = 0
    over_refunds: int = 0
    unresolved: int = 0
    not_settled: int = 0
    refused_over: int = 0
    crashes: int = 0
    faults: int = 0
    finals: Counter[str] = attrs.field(factory=Counter)

    def failures(self) -> dict[str, int]:
        return {
            name: getattr(self, name)
            for name in (
                "double_charges",
                "double_refunds",
                "double_captures",
                "lost_operations",
                "over_captures",
                "over_refunds",
                "unresolved",
                "not_settled",
            )
            if getattr(self, name)
        }


@attrs.define
class World:
    """Everything one chaos run touches."""

    gateway: PaymentGateway
    store: IdempotencyStore
    provider: Provider
    faults_on: Callable[[bool], None]
    single_capture: bool = False
    loop: BlockingPortal | None = None  # set when gateway is an async twin


class Caller:
    """A shop's code: retries with the same key, restarts its process after a crash."""

    def __init__(self, world: World, rng: random.Random, tally: Tally) -> None:
        self.world = world
        self.rng = rng
        self.tally = tally
        self.clock = FakeClock()
        self.crashing = CrashingStore(world.store, lambda: rng.random() < 0.03)
        self.service = self._new_service()

    def _new_service(self) -> PaymentService:
        retry = RetryPolicy(attempts=3, max_reconcile_rounds=2)
        if self.world.loop is None:
            return PaymentService(
                self.world.gateway,
                self.crashing,  # type: ignore[arg-type]
                clock=self.clock,
                sleep=lambda s: None,
                lease_s=30.0,
                retry=retry,
                rng=self.rng,
            )
        gateway: Any = self.world.gateway
        twin = AsyncPaymentService(
            gateway,
            self.crashing,  # type: ignore[arg-type]
            clock=self.clock,
            sleep=_no_wait,
            lease_s=30.0,
            retry=retry,
            rng=self.rng,
        )
        return Blocking(twin, self.world.loop)  # type: ignore[return-value]

    def call(self, do: Callable[[PaymentService], AnyResult]) -> AnyResult | None:
        """Run *do* until it answers; None when the ledger refused it (which is counted)."""
        for _ in range(12):
            try:
                return do(self.service)
            except SimulatedCrash:
                self.clock.now += 31.0  # the restarted process comes back after the lease
                self.service = self._new_service()
            except OperationInFlightError as exc:
                self.clock.now += (exc.retry_after_s or 1.0) + 0.1
            except (TransientError, OutcomeUnknownError):
                continue
            except (InvalidInputError, InvalidStateError):
                self.tally.refused_over += 1
                return None
        self.world.faults_on(False)
        try:
            return do(self.service)
        finally:
            self.world.faults_on(True)


def run_once(world: World, seed: int, tally: Tally) -> None:
    """One payment's life under faults, then the books are checked."""
    rng = random.Random(seed)
    caller = Caller(world, rng, tally)
    pid = f"pay-{seed}"
    code = rng.choice(CURRENCIES)
    total = rng.randint(1, 2000) * (10 if code == "KWD" else 1)
    amount = Money.from_minor(total, code)
    card = Card(
        CARDS[rng.choice(["ok", "ok", "ok", "ok", "declined", "funds", "3ds", "3ds"])],
        12,
        2031,
        cvv="123",
    )
    world.faults_on(True)

    result = caller.call(lambda s: s.authorize(pid, amount, card, idempotency_key=f"{pid}:auth"))
    if isinstance(result, ActionRequired):
        world.provider.authenticate(result.reference, rng.random() < 0.8)
        result = caller.call(lambda s: s.complete_action(pid, idempotency_key=f"{pid}:3ds"))
    payment = caller.service.payment(pid)
    if payment.state is PaymentState.AUTHORIZED:
        if rng.random() < 0.2:
            caller.call(lambda s: s.void(pid, idempotency_key=f"{pid}:void"))
        else:
            _captures_and_refunds(caller, rng, pid, amount, world.single_capture)

    world.faults_on(False)
    caller.service = caller._new_service()
    caller.crashing.chance = lambda: False
    caller.clock.now += 100.0
    caller.service.reconcile()
    payment = caller.service.payment(pid)
    if payment.state is PaymentState.AUTHORIZED:  # a shop voids what it will not capture
        caller.service.void(pid, idempotency_key=f"{pid}:final-void")
        payment = caller.service.payment(pid)
    _check(world, caller, pid, tally)


def _captures_and_refunds(
    caller: Caller, rng: random.Random, pid: str, amount: Money, single: bool
) -> None:
    left = amount.amount_minor
    parts = 1 if single else rng.randint(1, 3)
    step = 10 if amount.currency.exponent == 3 else 1
    for i in range(parts):
        if left <= 0:
            break
        want = left if i == parts - 1 else max(step, (rng.randint(1, left) // step) * step)
        if rng.random() < 0.15:
            want = left + step  # more than is left: the ledger must refuse
        part = Money.from_minor(want, amount.currency)
        result = caller.call(
            lambda s, p=part, i=i: s.capture(pid, p, idempotency_key=f"{pid}:cap{i}")
        )
        if result is not None and result.approved:
            left -= want
    captured = amount.amount_minor - left
    for i in range(rng.randint(0, 3)):
        if captured <= 0:
            break
        want = max(step, (rng.randint(1, captured) // step) * step)
        if rng.random() < 0.15:
            want = captured + step  # more than was captured: the ledger must refuse
        part = Money.from_minor(want, amount.currency)
        result = caller.call(
            lambda s, p=part, i=i: s.refund(pid, p, idempotency_key=f"{pid}:ref{i}")
        )
        if result is not None and result.approved:
            captured -= want


def _check(world: World, caller: Caller, pid: str, tally: Tally) -> None:
    tally.runs += 1
    tally.crashes += caller.crashing.crashes
    service = caller.service
    payment = service.payment(pid)
    tally.finals[payment.state.value] += 1
    executed = world.provider.executed(pid)
    for key, count in executed.items():
        if count <= 1:
            continue
        if ":auth" in key:
            tally.double_charges += 1
        elif ":ref" in key:
            tally.double_refunds += 1
        elif ":cap" in key:
            tally.double_captures += 1
    if payment.reference is not None and payment.state is not PaymentState.FAILED:
        authorized, captured, refunded = world.provider.books(payment.reference)
        if (captured, refunded) != (payment.captured_minor, payment.refunded_minor):
            tally.lost_operations += 1
        if captured > authorized:
            tally.over_captures += 1
        if refunded > captured:
            tally.over_refunds += 1
    mine = [r for r in world.store.unresolved(caller.clock.now + 1000) if r.scope == pid]
    tally.unresolved += len(mine)
    if not payment.state.is_settled:
        tally.not_settled += 1


def all_operations() -> tuple[Operation, ...]:
    return tuple(Operation)


__all__ = ["CommerceKitError", "Tally", "World", "run_once"]
