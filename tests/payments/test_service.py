"""PaymentService: exactly once, typed errors, retries, reconciliation, metrics."""

from __future__ import annotations

import pytest

from commercekit.errors import (
    ConflictError,
    CurrencyMismatchError,
    InvalidInputError,
    InvalidStateError,
    OutcomeUnknownError,
    UnknownCurrencyError,
)
from commercekit.metrics import InMemoryMetrics
from commercekit.money import Money
from commercekit.payments import (
    ActionRequired,
    Card,
    CardVault,
    DeclineCode,
    InMemoryIdempotencyStore,
    InMemoryVaultStore,
    Operation,
    OperationInFlightError,
    Outcome,
    PaymentResult,
    PaymentService,
    PaymentState,
    ProviderToken,
    RecordStatus,
    RetryPolicy,
    SandboxFault,
    SandboxGateway,
    StaticKeyRing,
)

VISA = "4242424242424242"


def usd(text: str) -> Money:
    return Money.of(text, "USD")


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


class Env:
    def __init__(self, **sandbox: object) -> None:
        self.gateway = SandboxGateway(**sandbox)  # type: ignore[arg-type]
        self.store = InMemoryIdempotencyStore()
        self.metrics = InMemoryMetrics()
        self.clock = Clock()
        self.slept: list[float] = []
        self.service = self.new_service()

    def new_service(self, **kw: object) -> PaymentService:
        return PaymentService(
            self.gateway,
            self.store,
            metrics=self.metrics,
            clock=self.clock,
            sleep=self.slept.append,
            **kw,  # type: ignore[arg-type]
        )

    def count(self, name: str, op: Operation, **tags: str) -> float:
        return self.metrics.value(name, operation=op.value, provider="sandbox", **tags)


def card(number: str = VISA) -> Card:
    return Card(number, 12, 2031, cvv="123")


def test_authorize_capture_refund_in_parts() -> None:
    env = Env()
    s = env.service
    auth = s.authorize("p1", usd("10.00"), card())
    assert isinstance(auth, PaymentResult)
    assert auth.approved
    assert auth.status is PaymentState.AUTHORIZED
    assert s.capture("p1", usd("4.00")).status is PaymentState.PARTIALLY_CAPTURED
    assert s.capture("p1", usd("6.00")).status is PaymentState.CAPTURED
    assert s.refund("p1", usd("1.00")).status is PaymentState.PARTIALLY_REFUNDED
    assert s.refund("p1").status is PaymentState.REFUNDED
    payment = s.payment("p1")
    assert (payment.authorized_minor, payment.captured_minor, payment.refunded_minor) == (
        1000,
        1000,
        1000,
    )
    assert env.count("commercekit_payments_attempts_total", Operation.CAPTURE) == 2
    assert (
        env.metrics.distribution(
            "commercekit_payments_latency_seconds", operation="authorize", provider="sandbox"
        ).count
        == 1
    )


def test_same_key_same_request_replays_without_calling_the_provider() -> None:
    env = Env()
    first = env.service.purchase("p1", usd("5.00"), card(), idempotency_key="k")
    again = env.service.purchase("p1", usd("5.00"), card(), idempotency_key="k")
    assert again == first
    assert len(env.gateway.operations) == 1
    assert env.count("commercekit_payments_replays_total", Operation.PURCHASE) == 1


def test_same_key_other_request_conflicts_and_changes_nothing() -> None:
    env = Env()
    env.service.authorize("p1", usd("5.00"), card(), idempotency_key="k")
    with pytest.raises(ConflictError, match="another request"):
        env.service.authorize("p1", usd("6.00"), card(), idempotency_key="k")
    assert len(env.gateway.operations) == 1


def test_a_key_in_flight_elsewhere_is_refused() -> None:
    env = Env()
    env.store.begin(
        "p1:authorize",
        scope="p1",
        operation="authorize",
        fingerprint="x",
        request="{}",
        owner="other-worker",
        now=env.clock.now,
        lease_s=30,
    )
    with pytest.raises(OperationInFlightError):
        env.service.capture("p1", usd("1.00"))
    assert env.gateway.operations == []


@pytest.mark.parametrize(
    ("number", "code"),
    [
        ("4000000000000002", DeclineCode.CARD_DECLINED),
        ("4000000000009995", DeclineCode.INSUFFICIENT_FUNDS),
        ("4000000000000069", DeclineCode.EXPIRED_CARD),
        ("4000000000000127", DeclineCode.INCORRECT_CVC),
        ("4000000000000119", DeclineCode.PROCESSING_ERROR),
    ],
)
def test_declines_are_results_with_a_standard_code(number: str, code: DeclineCode) -> None:
    env = Env()
    result = env.service.authorize("p1", usd("5.00"), card(number))
    assert isinstance(result, PaymentResult)
    assert result.outcome is Outcome.DECLINED
    assert result.decline_code is code
    assert env.service.payment("p1").state is PaymentState.FAILED
    assert env.count("commercekit_payments_declines_total", Operation.AUTHORIZE, code=code.value)
    with pytest.raises(InvalidStateError):
        env.service.capture("p1", usd("5.00"))


@pytest.mark.parametrize("success", [True, False])
def test_three_d_secure_is_a_typed_action(success: bool) -> None:
    env = Env()
    result = env.service.purchase("p1", usd("5.00"), card("4000000000003220"))
    assert isinstance(result, ActionRequired)
    assert result.redirect_url
    assert "secret" not in repr(result)
    assert env.service.payment("p1").state is PaymentState.REQUIRES_ACTION
    pending = env.service.complete_action("p1")
    assert isinstance(pending, ActionRequired)  # the customer has not answered yet
    env.gateway.authenticate(result.reference, success=success)
    done = env.service.complete_action("p1")
    expected = PaymentState.CAPTURED if success else PaymentState.FAILED
    assert done.status is expected
    assert env.service.complete_action("p1") == done  # asked again: the same answer
    assert env.service.payment("p1").state is expected


def test_a_timeout_after_the_charge_is_looked_up_not_charged_twice() -> None:
    env = Env(honor_idempotency_keys=False)
    result = env.service.authorize("p1", usd("5.00"), card("4000000000000093"))
    assert result.approved
    assert len(env.gateway.operations) == 1
    assert env.count("commercekit_payments_outcome_unknown_total", Operation.AUTHORIZE) == 1
    assert env.metrics.value(
        "commercekit_payments_reconciliations_total",
        operation="authorize",
        provider="sandbox",
        outcome="found",
    )


def test_transient_errors_are_retried_with_the_same_key_and_retry_after() -> None:
    faults = iter([SandboxFault.RATE_LIMITED, SandboxFault.RESET_BEFORE_SEND])
    env = Env(faults=lambda op, key: next(faults, None), honor_idempotency_keys=False)
    result = env.service.authorize("p1", usd("5.00"), card())
    assert result.approved
    assert env.slept[0] == 1.0  # Retry-After
    assert len(env.slept) == 2
    assert env.count("commercekit_payments_retries_total", Operation.AUTHORIZE) == 2
    assert env.count("commercekit_payments_attempts_total", Operation.AUTHORIZE) == 3
    assert len(env.gateway.operations) == 1


def test_an_unknown_outcome_that_cannot_be_looked_up_stays_unresolved() -> None:
    calls: list[str] = []
    faulty = [True]

    def faults(op: str, key: str) -> SandboxFault | None:
        calls.append(op)
        if not faulty[0]:
            return None
        if op == "authorize":
            return SandboxFault.TIMEOUT_AFTER_COMMIT
        return SandboxFault.RESET_BEFORE_SEND if op == "lookup" else None

    env = Env(faults=faults, honor_idempotency_keys=False)
    with pytest.raises(OutcomeUnknownError, match="reconcile"):
        env.service.authorize("p1", usd("5.00"), card())
    record = env.store.get("p1:authorize")
    assert record is not None
    assert record.status is RecordStatus.UNKNOWN
    with pytest.raises(OperationInFlightError, match="unknown"):  # nothing else runs meanwhile
        env.service.capture("p1", usd("1.00"))
    faulty[0] = False
    found = env.service.reconcile()
    assert [r.status for r in found] == [PaymentState.AUTHORIZED]
    assert env.service.payment("p1").state is PaymentState.AUTHORIZED
    assert len(env.gateway.operations) == 1  # charged once


def test_a_crash_before_the_local_commit_is_recovered_after_the_lease() -> None:
    env = Env(honor_idempotency_keys=False)
    real = env.store.complete

    def crash(*args: object, **kw: object) -> None:
        raise SystemExit("killed")

    env.store.complete = crash  # type: ignore[method-assign]
    with pytest.raises(SystemExit):
        env.service.authorize("p1", usd("5.00"), card())
    env.store.complete = real  # type: ignore[method-assign]
    with pytest.raises(OperationInFlightError):  # the lease still runs
        env.new_service().authorize("p1", usd("5.00"), card())
    env.clock.now += 31
    result = env.new_service().authorize("p1", usd("5.00"), card())
    assert result.approved
    assert len(env.gateway.operations) == 1


@pytest.mark.parametrize(
    ("action", "error"),
    [
        (lambda s: s.authorize("p1", usd("0.00"), card()), InvalidInputError),
        (lambda s: s.authorize("p1", usd("-1.00"), card()), InvalidInputError),
        (lambda s: s.authorize("", usd("1.00"), card()), InvalidInputError),
        (lambda s: s.authorize("p1", Money.of("1", "XYZ"), card()), UnknownCurrencyError),
        (lambda s: s.authorize("p1", usd("1.00"), Card("4242424242424241", 1, 2030)), ValueError),
        (lambda s: s.capture("p1", usd("1.00")), InvalidStateError),
        (lambda s: s.refund("p1", usd("1.00")), InvalidStateError),
        (lambda s: s.void("p1"), InvalidStateError),
    ],
)
def test_bad_input_gets_a_typed_error_and_changes_nothing(action: object, error: type) -> None:
    env = Env()
    with pytest.raises(error):
        action(env.service)  # type: ignore[operator]
    assert env.gateway.operations == []
    assert env.store.history("p1") == []
    assert env.store.unresolved(10**9) == []


def test_the_ledger_refuses_what_a_lenient_provider_would_allow() -> None:
    env = Env(strict=False)
    s = env.service
    s.authorize("p1", usd("10.00"), card())
    with pytest.raises(InvalidInputError, match=r"only 10\.00 USD is left"):
        s.capture("p1", usd("10.01"))
    with pytest.raises(CurrencyMismatchError):
        s.capture("p1", Money.of("1.00", "EUR"))
    s.capture("p1", usd("3.00"))
    with pytest.raises(InvalidInputError, match=r"only 3\.00 USD is refundable"):
        s.refund("p1", usd("3.01"))
    s.refund("p1", usd("3.00"))
    with pytest.raises(InvalidStateError):
        s.capture("p1", usd("1.00"))
    assert env.gateway.charge(s.payment("p1").reference or "") == (
        1000,
        300,
        300,
        PaymentState.REFUNDED,
    )


def test_capture_of_a_voided_payment_is_refused() -> None:
    env = Env()
    env.service.authorize("p1", usd("10.00"), card())
    assert env.service.void("p1").status is PaymentState.VOIDED
    with pytest.raises(InvalidStateError, match="voided"):
        env.service.capture("p1", usd("1.00"))


def test_one_capture_only_where_the_provider_allows_one() -> None:
    env = Env(multiple_captures=False)
    env.service.authorize("p1", usd("10.00"), card())
    env.service.capture("p1", usd("4.00"))
    with pytest.raises(InvalidStateError, match="one capture"):
        env.service.capture("p1", usd("1.00"))


def test_verify_checks_a_card_without_holding_money() -> None:
    env = Env()
    ok = env.service.verify("v1", card(), "EUR")
    assert ok.approved
    assert ok.status is PaymentState.VOIDED
    bad = env.service.verify("v2", card("4000000000000002"), "EUR")
    assert bad.decline_code is DeclineCode.CARD_DECLINED


def test_sources_can_be_vault_tokens_and_provider_tokens() -> None:
    vault = CardVault(StaticKeyRing({"k1": b"k" * 32}, "k1"), InMemoryVaultStore())
    env = Env()
    service = env.new_service(vault=vault)
    token = vault.tokenize(card())
    assert service.purchase("p1", usd("1.00"), token).approved
    assert service.purchase("p2", usd("1.00"), ProviderToken("pm_card_visa")).approved
    declined = service.purchase("p3", usd("1.00"), ProviderToken("pm_card_chargeDeclined"))
    assert not declined.approved
    with pytest.raises(InvalidInputError, match="vault"):
        env.service.purchase("p4", usd("1.00"), token)


def test_fingerprint_key_tells_cards_with_the_same_last_digits_apart() -> None:
    env = Env()
    keyed = env.new_service(fingerprint_key=b"secret")
    keyed.authorize("p1", usd("1.00"), card(), idempotency_key="k")
    other = Card("4242424242424242", 11, 2031)
    with pytest.raises(ConflictError):
        keyed.authorize("p1", usd("1.00"), other, idempotency_key="k")


def test_retry_policy_is_validated() -> None:
    with pytest.raises(ValueError, match="attempts"):
        RetryPolicy(attempts=0)


@pytest.mark.parametrize("operation", ["capture", "refund"])
def test_a_keyed_retry_of_all_that_is_left_replays_the_first_answer(operation: str) -> None:
    from commercekit.payments import Card, InMemoryIdempotencyStore, PaymentService, SandboxGateway

    service = PaymentService(SandboxGateway(), InMemoryIdempotencyStore())
    service.authorize("p-rest", Money.of("10.00", "EUR"), Card("4242 4242 4242 4242", 12, 2030))
    if operation == "refund":
        service.capture("p-rest")
    first = getattr(service, operation)("p-rest", idempotency_key=f"{operation}-rest")
    again = getattr(service, operation)("p-rest", idempotency_key=f"{operation}-rest")
    assert again == first
    payment = service.payment("p-rest")
    done = payment.captured_minor if operation == "capture" else payment.refunded_minor
    assert done == 1000  # once, not twice


@pytest.mark.parametrize(
    ("payment_id", "key"),
    [
        ("order-\ud800", None),
        ("order-1", "key-\udfff"),
        ("order\n1", None),
        ("order-1", "key\x00"),
        ("order-1", "key\u2028"),
        (12345, None),
        ("order-1", b"key"),
    ],
)
def test_hostile_payment_ids_and_keys_are_refused_before_anything_is_stored(
    payment_id: object, key: object
) -> None:
    from commercekit.payments import Card, InMemoryIdempotencyStore, SandboxGateway

    store = InMemoryIdempotencyStore()
    gateway = SandboxGateway()
    service = PaymentService(gateway, store, sleep=lambda s: None)
    card = Card("4242424242424242", 12, 2031)
    calls = [
        lambda: service.authorize(payment_id, usd("1.00"), card, idempotency_key=key),  # type: ignore[arg-type]
        lambda: service.capture(payment_id, idempotency_key=key),  # type: ignore[arg-type]
        lambda: service.refund(payment_id, usd("1.00"), idempotency_key=key),  # type: ignore[arg-type]
        lambda: service.void(payment_id, idempotency_key=key),  # type: ignore[arg-type]
        lambda: service.verify(payment_id, card, "USD", idempotency_key=key),  # type: ignore[arg-type]
        lambda: service.complete_action(payment_id, idempotency_key=key),  # type: ignore[arg-type]
    ]
    for call in calls:
        with pytest.raises(InvalidInputError):
            call()
    assert store._records == {}
    assert gateway.operations == []


def test_a_non_ascii_idempotency_key_reaches_stripe_as_an_ascii_header() -> None:
    from commercekit.payments import Card, InMemoryIdempotencyStore, MockTransport, StripeGateway
    from tests.payments.fake_stripe import FakeStripe

    fake = FakeStripe()
    gateway = StripeGateway("sk_test_x", transport=MockTransport(fake), base_url="https://s.test")
    service = PaymentService(gateway, InMemoryIdempotencyStore(), sleep=lambda s: None)
    card = Card("4242424242424242", 12, 2031)
    first = service.authorize("заказ-1", usd("1.00"), card, idempotency_key="ключ-1")
    again = service.authorize("заказ-1", usd("1.00"), card, idempotency_key="ключ-1")
    assert first == again
    for request in fake.requests:
        request.headers["Idempotency-Key"].encode("ascii")


def test_unknown_outcomes_the_provider_has_no_record_of_end_as_a_safe_retry() -> None:
    from commercekit.errors import OutcomeUnknownError, TransientError, is_transient
    from commercekit.payments import (
        Card,
        InMemoryIdempotencyStore,
        RetryPolicy,
        SandboxFault,
        SandboxGateway,
    )

    failing = True

    def faults(operation: str, key: str) -> SandboxFault | None:
        return SandboxFault.TIMEOUT_BEFORE_COMMIT if failing and operation != "lookup" else None

    gateway = SandboxGateway(faults=faults)
    service = PaymentService(
        gateway,
        InMemoryIdempotencyStore(),
        sleep=lambda s: None,
        retry=RetryPolicy(attempts=1, max_reconcile_rounds=2),
    )
    card = Card("4242424242424242", 12, 2031)
    with pytest.raises(TransientError, match="retry with the same key") as caught:
        service.authorize("order-9", usd("5.00"), card, idempotency_key="k-9")
    assert not isinstance(caught.value, OutcomeUnknownError)
    assert is_transient(caught.value)
    failing = False
    result = service.authorize("order-9", usd("5.00"), card, idempotency_key="k-9")
    assert result.approved
    assert len(gateway.operations) == 1


@pytest.mark.parametrize("text", ["[" * 100_000, "{}", "[]", "not json"])
def test_a_stored_result_that_is_not_one_is_a_typed_error(text: str) -> None:
    from commercekit.payments._core._results import result_from_json

    with pytest.raises(InvalidInputError, match="stored payment result"):
        result_from_json(text)
