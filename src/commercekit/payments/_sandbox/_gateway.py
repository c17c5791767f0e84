"""SandboxGateway: an in-process provider with test cards, for tests, demos and benchmarks.

It behaves as a careful provider does: it keeps its own payments, honours
idempotency keys (unless told not to, as some imitations do not), finds an
operation by its key (:meth:`SandboxGateway.lookup`) and refuses what a
provider refuses. Test cards pick the answer, in the style providers use
(``_sandbox_cards.py`` has the table, :data:`SANDBOX_CARDS` the numbers), and
a *faults* hook injects transport faults per call for chaos tests
(:class:`SandboxFault`, ``_sandbox_faults.py``).
"""

from __future__ import annotations

import threading
from collections.abc import Callable

from commercekit.errors import (
    InvalidInputError,
    InvalidStateError,
    NotFoundError,
    OutcomeUnknownError,
)
from commercekit.money import Currency, Money
from commercekit.payments._core._amounts import ISO_AMOUNTS, AmountRules
from commercekit.payments._core._results import (
    ActionRequired,
    AnyResult,
    DeclineCode,
    Operation,
    Outcome,
    PaymentResult,
    final_result,
)
from commercekit.payments._core._state import PaymentState
from commercekit.payments._redact import redact_provider_text
from commercekit.payments._sandbox._books import Charge, Logged
from commercekit.payments._sandbox._cards import (
    APPROVED,
    THREE_D_SECURE,
    TIMEOUT_AFTER_CHARGE,
    card_behaviour,
    source_id,
)
from commercekit.payments._sandbox._faults import FaultHook, FaultInjector
from commercekit.payments._transports._owned import OwnsTransport
from commercekit.payments._typing import GatewayCapabilities, PaymentSource

__all__ = ["SandboxGateway"]


class SandboxGateway(OwnsTransport):
    """An in-process gateway with deterministic test cards. See the module docstring.

    It holds nothing to close; it takes ``close()`` and ``with`` as the HTTP
    gateways do, so code written for one runs against the other.

    *honor_idempotency_keys* (default true) makes a repeated key return the
    first answer, as Stripe does; false makes every call act anew, as
    imitations without idempotency do. *strict* (default true) refuses
    over-captures and over-refunds as providers do; false accepts them, to
    show the ledger refusing on its own.
    """

    def __init__(
        self,
        *,
        name: str = "sandbox",
        amounts: AmountRules = ISO_AMOUNTS,
        multiple_captures: bool = True,
        honor_idempotency_keys: bool = True,
        strict: bool = True,
        faults: FaultHook | None = None,
    ) -> None:
        self._name = name
        self._capabilities = GatewayCapabilities(
            multiple_captures=multiple_captures, amounts=amounts
        )
        self._idempotent = honor_idempotency_keys
        self._strict = strict
        self._faults = FaultInjector(faults)
        self._lock = threading.Lock()
        self._charges: dict[str, Charge] = {}
        self._log: list[Logged] = []
        self._by_key: dict[str, Logged] = {}
        self._counter = 0

    @property
    def name(self) -> str:
        """The provider name, ``"sandbox"`` unless given."""
        return self._name

    @property
    def capabilities(self) -> GatewayCapabilities:
        """Several partial captures and refunds; amounts as *amounts* says."""
        return self._capabilities

    # -- reading the provider's side, for tests ------------------------------------------

    @property
    def operations(self) -> list[tuple[str, AnyResult]]:
        """Every operation the sandbox carried out, as (idempotency key, result), in order."""
        with self._lock:
            return [(entry.key, entry.result) for entry in self._log]

    def charge(self, reference: str) -> tuple[int, int, int, PaymentState]:
        """The sandbox's own view of a payment: (authorized, captured, refunded, status)."""
        with self._lock:
            c = self._charge(reference)
            return c.authorized, c.captured, c.refunded, c.status

    def authenticate(self, reference: str, *, success: bool = True) -> None:
        """Answer the 3-D Secure challenge of *reference*, as the customer would."""
        with self._lock:
            charge = self._charge(reference)
            if charge.status is not PaymentState.REQUIRES_ACTION:
                raise InvalidStateError(f"sandbox payment {reference} awaits no action")
            charge.authenticated = success

    # -- operations ----------------------------------------------------------------------

    def authorize(
        self,
        amount: Money,
        source: PaymentSource,
        *,
        idempotency_key: str,
        return_url: str | None = None,
    ) -> AnyResult:
        """Hold *amount* on *source*."""
        return self._run(
            Operation.AUTHORIZE,
            idempotency_key,
            ("authorize", amount, source_id(source)),
            lambda: self._start(Operation.AUTHORIZE, amount, source, capture=False),
        )

    def purchase(
        self,
        amount: Money,
        source: PaymentSource,
        *,
        idempotency_key: str,
        return_url: str | None = None,
    ) -> AnyResult:
        """Authorize and capture *amount*."""
        return self._run(
            Operation.PURCHASE,
            idempotency_key,
            ("purchase", amount, source_id(source)),
            lambda: self._start(Operation.PURCHASE, amount, source, capture=True),
        )

    def verify(
        self, source: PaymentSource, currency: Currency, *, idempotency_key: str
    ) -> PaymentResult:
        """Check the card with a zero-amount authorization."""
        zero = Money.zero(currency)
        result = self._run(
            Operation.VERIFY,
            idempotency_key,
            ("verify", zero, source_id(source)),
            lambda: self._start(Operation.VERIFY, zero, source, capture=False),
        )
        return final_result(result, Operation.VERIFY)

    def capture(self, reference: str, amount: Money, *, idempotency_key: str) -> PaymentResult:
        """Capture *amount* of the authorization *reference*."""
        result = self._run(
            Operation.CAPTURE,
            idempotency_key,
            ("capture", reference, amount),
            lambda: self._capture(reference, amount),
        )
        return final_result(result, Operation.CAPTURE)

    def void(self, reference: str, *, idempotency_key: str) -> PaymentResult:
        """Release the authorization *reference*."""
        result = self._run(
            Operation.VOID, idempotency_key, ("void", reference), lambda: self._void(reference)
        )
        return final_result(result, Operation.VOID)

    def refund(self, reference: str, amount: Money, *, idempotency_key: str) -> PaymentResult:
        """Refund *amount* of what *reference* captured."""
        result = self._run(
            Operation.REFUND,
            idempotency_key,
            ("refund", reference, amount),
            lambda: self._refund(reference, amount),
        )
        return final_result(result, Operation.REFUND)

    def complete_action(self, reference: str, *, idempotency_key: str) -> AnyResult:
        """Read the payment after the customer's 3-D Secure step."""
        self._faults.before(Operation.COMPLETE_ACTION.value, idempotency_key)
        with self._lock:
            result = self._complete(reference)
        self._faults.after(idempotency_key)
        return result

    def lookup(
        self, operation: Operation, *, idempotency_key: str, reference: str | None
    ) -> AnyResult | None:
        """The first result carried out with *idempotency_key*, or None."""
        self._faults.lookup(idempotency_key)
        with self._lock:
            entry = self._by_key.get(idempotency_key)
            return None if entry is None else entry.result

    # -- internals -----------------------------------------------------------------------

    def _run(
        self,
        operation: Operation,
        key: str,
        fingerprint: tuple[object, ...],
        act: Callable[[], AnyResult],
    ) -> AnyResult:
        self._faults.before(operation.value, key)
        with self._lock:
            seen = self._by_key.get(key)
            if seen is not None and self._idempotent:
                if seen.fingerprint != fingerprint:
                    raise InvalidInputError(
                        f"sandbox: idempotency key {redact_provider_text(repr(key))} was used "
                        "with other parameters"
                    )
                result = seen.result
            else:
                result = act()
                entry = Logged(key, fingerprint, result)
                self._log.append(entry)
                self._by_key.setdefault(key, entry)
        self._faults.after(key)
        if isinstance(result, PaymentResult) and result.approved:
            charge = self._charges.get(result.reference)
            lose = charge is not None and charge.behaviour == TIMEOUT_AFTER_CHARGE
            if lose and operation in (Operation.AUTHORIZE, Operation.PURCHASE):
                raise OutcomeUnknownError("sandbox: read timed out after the charge went through")
        return result

    def _next_reference(self, prefix: str) -> str:
        self._counter += 1
        return f"{prefix}_{self._counter:08d}"

    def _charge(self, reference: str) -> Charge:
        charge = self._charges.get(reference)
        if charge is None:
            raise NotFoundError(f"sandbox: no payment {reference!r}")
        return charge

    def _start(
        self, operation: Operation, amount: Money, source: PaymentSource, *, capture: bool
    ) -> AnyResult:
        self._capabilities.amounts.to_provider(amount)
        behaviour = card_behaviour(source)
        reference = self._next_reference("sbx")
        charge = Charge(reference, amount.currency, 0, PaymentState.CREATED, behaviour)
        self._charges[reference] = charge
        if behaviour == THREE_D_SECURE and operation is not Operation.VERIFY:
            charge.status = PaymentState.REQUIRES_ACTION
            charge.authorized = amount.amount_minor
            charge.capture_on_action = capture
            return self._challenge(operation, reference, amount, f"{reference}_secret")
        if behaviour not in (APPROVED, TIMEOUT_AFTER_CHARGE, THREE_D_SECURE):
            charge.status = PaymentState.FAILED
            return self._result(operation, charge, amount, decline=DeclineCode(behaviour))
        return self._approve(operation, charge, amount, capture=capture)

    def _approve(
        self, operation: Operation, charge: Charge, amount: Money, *, capture: bool
    ) -> PaymentResult:
        if operation is Operation.VERIFY:
            charge.status = PaymentState.VOIDED
        elif capture:
            charge.authorized = charge.captured = amount.amount_minor
            charge.captures = 1
            charge.status = PaymentState.CAPTURED
        else:
            charge.authorized = amount.amount_minor
            charge.status = PaymentState.AUTHORIZED
        return self._result(operation, charge, amount)

    def _complete(self, reference: str) -> AnyResult:
        charge = self._charge(reference)
        amount = Money.from_minor(charge.authorized, charge.currency)
        operation = Operation.COMPLETE_ACTION
        if charge.status is not PaymentState.REQUIRES_ACTION:
            return self._result(operation, charge, amount, decline=charge.decline)
        if charge.authenticated is None:
            return self._challenge(operation, reference, amount, None)
        if not charge.authenticated:
            charge.status = PaymentState.FAILED
            charge.decline = DeclineCode.AUTHENTICATION_FAILED
            return self._result(operation, charge, amount, decline=charge.decline)
        return self._approve(operation, charge, amount, capture=charge.capture_on_action)

    def _capture(self, reference: str, amount: Money) -> PaymentResult:
        charge = self._charge(reference)
        charge.check_currency(amount)
        self._capabilities.amounts.to_provider(amount)
        if charge.status not in (PaymentState.AUTHORIZED, PaymentState.PARTIALLY_CAPTURED):
            raise InvalidStateError(f"sandbox: payment {reference} is {charge.status.value}")
        if self._strict:
            if charge.captures and not self._capabilities.multiple_captures:
                raise InvalidStateError(f"sandbox: payment {reference} was captured already")
            if charge.captured + amount.amount_minor > charge.authorized:
                raise InvalidInputError(
                    f"sandbox: capture exceeds the authorization of {reference}"
                )
        charge.captured += amount.amount_minor
        charge.captures += 1
        full = charge.captured >= charge.authorized
        charge.status = PaymentState.CAPTURED if full else PaymentState.PARTIALLY_CAPTURED
        return self._result(Operation.CAPTURE, charge, amount)

    def _void(self, reference: str) -> PaymentResult:
        charge = self._charge(reference)
        if charge.status not in (PaymentState.AUTHORIZED, PaymentState.REQUIRES_ACTION):
            raise InvalidStateError(f"sandbox: payment {reference} is {charge.status.value}")
        charge.status = PaymentState.VOIDED
        amount = Money.from_minor(charge.authorized, charge.currency)
        return self._result(Operation.VOID, charge, amount)

    def _refund(self, reference: str, amount: Money) -> PaymentResult:
        charge = self._charge(reference)
        charge.check_currency(amount)
        self._capabilities.amounts.to_provider(amount)
        moved = (PaymentState.CAPTURED, PaymentState.PARTIALLY_CAPTURED)
        if charge.status not in (*moved, PaymentState.PARTIALLY_REFUNDED):
            raise InvalidStateError(f"sandbox: payment {reference} is {charge.status.value}")
        if self._strict and charge.refunded + amount.amount_minor > charge.captured:
            raise InvalidInputError(f"sandbox: refund exceeds what {reference} captured")
        charge.refunded += amount.amount_minor
        full = charge.refunded >= charge.captured
        charge.status = PaymentState.REFUNDED if full else PaymentState.PARTIALLY_REFUNDED
        return self._result(
            Operation.REFUND, charge, amount, operation_reference=self._next_reference("sbx_re")
        )

    def _challenge(
        self, operation: Operation, reference: str, amount: Money, secret: str | None
    ) -> ActionRequired:
        return ActionRequired(
            operation=operation,
            reference=reference,
            amount=amount,
            provider=self._name,
            action_type="three_d_secure",
            redirect_url=f"https://sandbox.invalid/3ds/{reference}",
            client_secret=secret,
        )

    def _result(
        self,
        operation: Operation,
        charge: Charge,
        amount: Money,
        *,
        decline: DeclineCode | None = None,
        operation_reference: str | None = None,
    ) -> PaymentResult:
        return PaymentResult(
            operation=operation,
            outcome=Outcome.APPROVED if decline is None else Outcome.DECLINED,
            reference=charge.reference,
            amount=amount,
            status=charge.status,
            provider=self._name,
            decline_code=decline,
            provider_code=None if decline is None else decline.value,
            operation_reference=operation_reference,
            message=None if decline is None else f"sandbox test card: {decline.value}",
        )

    def __repr__(self) -> str:
        return f"SandboxGateway(name={self._name!r}, payments={len(self._charges)})"
