"""The seams of commercekit.payments: gateways, idempotency stores, key rings, transports.

Each is a :class:`typing.Protocol`; the shipped implementations sit beside
them and an application may bring its own without subclassing anything.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Protocol, TypeAlias

import attrs

from commercekit.errors import InvalidInputError
from commercekit.payments._core._amounts import ISO_AMOUNTS, AmountRules
from commercekit.typing import Sleep as _Sleep
from commercekit.typing import WallClock

if TYPE_CHECKING:
    from commercekit.money import Currency, Money
    from commercekit.payments._card import Card, ProviderToken
    from commercekit.payments._core._records import Claim, IdempotencyRecord
    from commercekit.payments._core._results import AnyResult, Operation, PaymentResult
    from commercekit.payments._transports._http import HttpRequest, HttpResponse

__all__ = [
    "Clock",
    "GatewayCapabilities",
    "HttpTransport",
    "IdempotencyStore",
    "KeyRing",
    "PaymentGateway",
    "PaymentSource",
    "Sleep",
    "VaultRecord",
    "VaultStore",
]

Clock: TypeAlias = WallClock
"""Wall-clock seconds since the epoch (``time.time`` unless a test injects one);
:data:`commercekit.typing.WallClock` under the name payments has always used."""

Sleep: TypeAlias = _Sleep
"""Waits the given seconds (``time.sleep`` unless a test injects one); the same
type as :data:`commercekit.typing.Sleep`."""

PaymentSource: TypeAlias = "Card | ProviderToken"
"""What a gateway charges: a card as typed, or a payment method the provider holds."""


@attrs.frozen
class GatewayCapabilities:
    """What a provider allows, which the ledger enforces before asking it."""

    multiple_captures: bool = attrs.field(default=False, kw_only=True)
    multiple_refunds: bool = attrs.field(default=True, kw_only=True)
    amounts: AmountRules = ISO_AMOUNTS


class PaymentGateway(Protocol):
    """One payment provider behind the operations every provider offers.

    Every call carries an idempotency key; a gateway passes it to the provider
    where the provider takes one and attaches it to the operation so that
    :meth:`lookup` can find the operation later. Declines are results, not
    errors. Errors mean: :class:`~commercekit.errors.TransientError` nothing
    happened, retry with the same key; :class:`~commercekit.errors.OutcomeUnknownError`
    it may have happened, :meth:`lookup` first; anything else, fix the call.
    """

    @property
    def name(self) -> str:
        """A short provider name for metrics and records (``"sandbox"``, ``"stripe"``)."""
        ...

    @property
    def capabilities(self) -> GatewayCapabilities:
        """What this provider allows."""
        ...

    def authorize(
        self,
        amount: Money,
        source: PaymentSource,
        *,
        idempotency_key: str,
        return_url: str | None = None,
    ) -> AnyResult:
        """Hold *amount* on *source*; capture it later. May need the customer (3-D Secure)."""
        ...

    def purchase(
        self,
        amount: Money,
        source: PaymentSource,
        *,
        idempotency_key: str,
        return_url: str | None = None,
    ) -> AnyResult:
        """Authorize and capture *amount* at once."""
        ...

    def capture(self, reference: str, amount: Money, *, idempotency_key: str) -> PaymentResult:
        """Capture *amount* (all or part) of an authorization."""
        ...

    def void(self, reference: str, *, idempotency_key: str) -> PaymentResult:
        """Release an authorization that was not captured."""
        ...

    def refund(self, reference: str, amount: Money, *, idempotency_key: str) -> PaymentResult:
        """Return *amount* (all or part) of what was captured."""
        ...

    def verify(
        self, source: PaymentSource, currency: Currency, *, idempotency_key: str
    ) -> PaymentResult:
        """Check a card with a zero-amount authorization; nothing is held."""
        ...

    def complete_action(self, reference: str, *, idempotency_key: str) -> AnyResult:
        """Read where a payment stands after the customer's action (3-D Secure, a redirect)."""
        ...

    def lookup(
        self, operation: Operation, *, idempotency_key: str, reference: str | None
    ) -> AnyResult | None:
        """Find the operation sent with *idempotency_key*; None when the provider never saw it."""
        ...


class IdempotencyStore(Protocol):
    """Where the outcome of each idempotency key is recorded, before and after the provider.

    Times are passed in (*now*, seconds) so the store needs no clock. Every
    method is atomic: two workers racing for one key (or one scope) see one
    winner.
    """

    def begin(
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
        """Claim *key* for *owner* until ``now + lease_s``, or say why not.

        Raises:
            ConflictError: the key is recorded with another fingerprint.
            OperationInFlightError: another owner holds the key, or another
                key holds the scope, with a live lease.
        """
        ...

    def complete(self, key: str, *, owner: str, result: str, now: float) -> None:
        """Record *result* for *key* and free its scope.

        Raises:
            ConflictError: *owner* no longer holds the key (its lease ran out
                and another attempt took it over).
        """
        ...

    def release(self, key: str, *, owner: str, unknown: bool) -> None:
        """Give up *key*: forget it (nothing happened) or mark its outcome unknown.

        An unknown key keeps its scope until it is reconciled.

        Raises:
            ConflictError: *owner* no longer holds the key.
        """
        ...

    def get(self, key: str) -> IdempotencyRecord | None:
        """The record of *key*, or None."""
        ...

    def history(self, scope: str) -> list[IdempotencyRecord]:
        """The completed records of *scope*, oldest first."""
        ...

    def unresolved(self, now: float) -> list[IdempotencyRecord]:
        """Records whose outcome is unknown, or pending with a lease that has run out."""
        ...


class KeyRing(Protocol):
    """Named AES-256 keys: one current key to encrypt with, older ones kept to decrypt."""

    @property
    def current_id(self) -> str:
        """The id of the key new data is encrypted with."""
        ...

    def key(self, key_id: str) -> bytes:
        """The 32-byte key named *key_id*.

        Raises:
            NotFoundError: the ring has no such key.
        """
        ...


def _text(limit: int, prefix: str = "") -> Callable[[object, attrs.Attribute[str], str], None]:
    def check(instance: object, attribute: attrs.Attribute[str], value: str) -> None:
        if (
            not isinstance(value, str)
            or not value.startswith(prefix)
            or not 0 < len(value) <= limit
        ):
            raise InvalidInputError(
                f"a vault record's {attribute.name} is a str of 1 to {limit} characters"
                + (f" that starts with {prefix!r}" if prefix else "")
            )

    return check


def _blob(instance: VaultRecord, attribute: attrs.Attribute[bytes], value: bytes) -> None:
    size = _NONCE_BYTES if attribute.name == "nonce" else None
    if not isinstance(value, bytes) or (len(value) != size if size else len(value) <= _TAG_BYTES):
        raise InvalidInputError(
            f"a vault record's {attribute.name} is bytes "
            + (f"of exactly {size} bytes" if size else f"longer than the {_TAG_BYTES}-byte tag")
        )


def _within(low: int, high: int) -> Callable[[object, attrs.Attribute[int], int], None]:
    def check(instance: object, attribute: attrs.Attribute[int], value: int) -> None:
        if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high:
            raise InvalidInputError(f"a vault record's {attribute.name} is {low} to {high}")

    return check


_NONCE_BYTES = 12
_TAG_BYTES = 16


@attrs.frozen
class VaultRecord:
    """An encrypted card as a vault store keeps it: no clear number, never a CVV.

    Every field is checked when the record is made, so a store is never handed
    a record it would keep half of: a bad value raises
    :class:`~commercekit.errors.InvalidInputError` before anything is written.
    """

    token: str = attrs.field(validator=_text(64, "vt_"))
    key_id: str = attrs.field(validator=_text(64))
    nonce: bytes = attrs.field(repr=False, validator=_blob)
    ciphertext: bytes = attrs.field(repr=False, validator=_blob)
    masked: str = attrs.field(validator=_text(19))
    brand: str = attrs.field(validator=_text(16))
    exp_month: int = attrs.field(validator=_within(1, 12))
    exp_year: int = attrs.field(validator=_within(2000, 2999))


class VaultStore(Protocol):
    """Where :class:`CardVault` keeps encrypted cards."""

    def put(self, record: VaultRecord) -> None:
        """Insert or replace the record of ``record.token``."""
        ...

    def get(self, token: str) -> VaultRecord | None:
        """The record of *token*, or None."""
        ...

    def delete(self, token: str) -> bool:
        """Remove *token*; say whether it was there."""
        ...

    def stale(self, current_key_id: str, limit: int) -> list[VaultRecord]:
        """Up to *limit* records encrypted under another key than *current_key_id*."""
        ...

    def replace(self, old: VaultRecord, new: VaultRecord) -> bool:
        """Swap *old* for *new* only if the stored record is still *old*; say whether it was."""
        ...


class HttpTransport(Protocol):
    """Sends one HTTP request and returns the response: the only I/O of an HTTP gateway.

    Raises :class:`~commercekit.errors.UnavailableError` when the request
    surely never reached the server (refused connection, a reset before the
    request was written) and :class:`~commercekit.errors.OutcomeUnknownError`
    when it may have (a timeout or a reset after sending).
    """

    def handle(self, request: HttpRequest) -> HttpResponse:
        """Send *request*; return the response, whatever its status code."""
        ...
