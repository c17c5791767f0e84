"""The state table, transition(), and a Hypothesis state machine of a payment against the ledger."""

from __future__ import annotations

import pytest
from hypothesis import settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, invariant, precondition, rule

from commercekit.errors import InvalidInputError, InvalidStateError
from commercekit.money import Money
from commercekit.payments import (
    TRANSITIONS,
    Card,
    InMemoryIdempotencyStore,
    PaymentEvent,
    PaymentService,
    PaymentState,
    SandboxGateway,
    transition,
)


def test_every_state_has_a_row_and_terminal_states_allow_nothing() -> None:
    assert set(TRANSITIONS) == set(PaymentState)
    for state in PaymentState:
        if state.is_terminal:
            assert not TRANSITIONS[state]


@pytest.mark.parametrize("state", list(PaymentState))
@pytest.mark.parametrize("event", list(PaymentEvent))
def test_transition_follows_the_table_or_raises(state: PaymentState, event: PaymentEvent) -> None:
    target = TRANSITIONS[state].get(event)
    if target is None:
        with pytest.raises(InvalidStateError, match=state.value):
            transition(state, event)
    else:
        assert transition(state, event) is target


def test_the_table_cannot_be_changed() -> None:
    with pytest.raises(TypeError):
        TRANSITIONS[PaymentState.VOIDED][PaymentEvent.CAPTURE_FULL] = PaymentState.CAPTURED  # type: ignore[index]


class PaymentMachine(RuleBasedStateMachine):
    """A payment driven at random through the service, checked against a plain model.

    The sandbox is lenient (it would accept over-captures and over-refunds),
    so the ledger alone must keep captured <= authorized and refunded <= captured.
    """

    def __init__(self) -> None:
        super().__init__()
        self.gateway = SandboxGateway(strict=False)
        self.service = PaymentService(
            self.gateway, InMemoryIdempotencyStore(), sleep=lambda s: None
        )
        self.authorized = self.captured = self.refunded = 0
        self.state = PaymentState.CREATED
        self.ops = 0

    def _key(self) -> str:
        self.ops += 1
        return f"op-{self.ops}"

    @rule(minor=st.integers(-5, 5000))
    def authorize(self, minor: int) -> None:
        amount = Money.from_minor(minor, "EUR")
        card = Card("4242424242424242", 1, 2040)
        if self.state is not PaymentState.CREATED or minor <= 0:
            with pytest.raises((InvalidInputError, InvalidStateError)):
                self.service.authorize("p", amount, card, idempotency_key=self._key())
            return
        self.service.authorize("p", amount, card, idempotency_key=self._key())
        self.authorized, self.state = minor, PaymentState.AUTHORIZED

    @rule(minor=st.integers(-5, 6000))
    def capture(self, minor: int) -> None:
        amount = Money.from_minor(minor, "EUR")
        legal = self.state in (PaymentState.AUTHORIZED, PaymentState.PARTIALLY_CAPTURED)
        if not legal or not 0 < minor <= self.authorized - self.captured:
            with pytest.raises((InvalidInputError, InvalidStateError)):
                self.service.capture("p", amount, idempotency_key=self._key())
            return
        self.service.capture("p", amount, idempotency_key=self._key())
        self.captured += minor
        full = self.captured == self.authorized
        self.state = PaymentState.CAPTURED if full else PaymentState.PARTIALLY_CAPTURED

    @rule(minor=st.integers(-5, 6000))
    def refund(self, minor: int) -> None:
        amount = Money.from_minor(minor, "EUR")
        legal = self.state in (
            PaymentState.PARTIALLY_CAPTURED,
            PaymentState.CAPTURED,
            PaymentState.PARTIALLY_REFUNDED,
        )
        if not legal or not 0 < minor <= self.captured - self.refunded:
            with pytest.raises((InvalidInputError, InvalidStateError)):
                self.service.refund("p", amount, idempotency_key=self._key())
            return
        self.service.refund("p", amount, idempotency_key=self._key())
        self.refunded += minor
        full = self.refunded == self.captured
        self.state = PaymentState.REFUNDED if full else PaymentState.PARTIALLY_REFUNDED

    @rule()
    def void(self) -> None:
        if self.state is not PaymentState.AUTHORIZED:
            with pytest.raises(InvalidStateError):
                self.service.void("p", idempotency_key=self._key())
            return
        self.service.void("p", idempotency_key=self._key())
        self.state = PaymentState.VOIDED

    @precondition(lambda self: self.ops > 0)
    @rule()
    def replay_the_last_key(self) -> None:
        record = self.service._store.get(f"op-{self.ops}")  # type: ignore[attr-defined]
        if record is not None and record.result is not None:
            before = len(self.gateway.operations)
            op = record.operation
            if op == "void":
                self.service.void("p", idempotency_key=record.key)
                assert len(self.gateway.operations) == before

    @invariant()
    def ledger_matches_the_model_and_the_provider(self) -> None:
        payment = self.service.payment("p")
        assert payment.state is self.state
        assert payment.authorized_minor == self.authorized
        assert payment.captured_minor == self.captured <= self.authorized
        assert payment.refunded_minor == self.refunded <= self.captured
        if payment.reference is not None:
            _, captured, refunded, _ = self.gateway.charge(payment.reference)
            assert (captured, refunded) == (self.captured, self.refunded)


PaymentMachine.TestCase.settings = settings(max_examples=60, stateful_step_count=25, deadline=None)
TestPaymentMachine = PaymentMachine.TestCase
