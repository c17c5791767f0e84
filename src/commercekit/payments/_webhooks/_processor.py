"""Webhooks: signature checks (Stripe-style and plain HMAC) and exactly-once processing.

:class:`StripeSignatureVerifier` checks a ``Stripe-Signature`` header
(``t=<unix time>,v1=<hex HMAC-SHA256 of "<t>.<raw body>">``): the timestamp
must lie within a tolerance, and any ``v1`` may match any of several secrets
(so a secret rotates without dropping events). :class:`HmacSignatureVerifier`
checks a plain hex HMAC-SHA256 of the body (``sha256=`` prefix allowed), with
an optional signed timestamp. Every comparison is constant-time.

:class:`WebhookProcessor` verifies, parses, and hands each event to your
handler exactly once, however often and in whatever order it is delivered:
the event id is claimed in an :class:`IdempotencyStore` first, recorded when
the handler returns, and forgotten if the handler raises (so the provider's
redelivery runs it again).
"""

from __future__ import annotations

import enum
import hashlib
import hmac
import json
import time
import uuid
from collections.abc import Callable, Mapping, Sequence
from typing import Any, Final

import attrs

from commercekit._json import read_json
from commercekit.errors import ConfigurationError, InvalidInputError
from commercekit.metrics import Metrics, NullMetrics
from commercekit.payments._core._records import ClaimKind
from commercekit.payments._redact import redact_provider_text
from commercekit.payments._typing import Clock, IdempotencyStore

__all__ = [
    "HmacSignatureVerifier",
    "StripeSignatureVerifier",
    "WebhookEvent",
    "WebhookOutcome",
    "WebhookProcessor",
    "stripe_signature",
]

DEFAULT_TOLERANCE_S: Final = 300.0
_MAX_TIME_DIGITS: Final = 12  # unix seconds up to the year 33658
_MAX_EVENT_ID: Final = 255
_MAX_CREATED: Final = 10**_MAX_TIME_DIGITS


def _signed_time(value: object) -> int:
    """A signed timestamp as an int of unix seconds, or InvalidInputError."""
    if type(value) is not int or not 0 <= value < _MAX_CREATED:
        raise InvalidInputError(
            "a webhook timestamp is an int of unix seconds, "
            f"not {type(value).__name__} {redact_provider_text(repr(value), limit=40)}"
        )
    return value


def _well_formed(text: str) -> bool:
    """True for text that can be encoded (no lone surrogates) and compared (ASCII only)."""
    return text.isascii()


def _secrets(value: Sequence[str | bytes]) -> tuple[bytes, ...]:
    if isinstance(value, str | bytes) or not value:
        raise ConfigurationError("pass the webhook secrets as a non-empty list (several rotate)")
    return tuple(s.encode() if isinstance(s, str) else bytes(s) for s in value)


def _hmac_hex(secret: bytes, message: bytes) -> str:
    return hmac.new(secret, message, hashlib.sha256).hexdigest()


def stripe_signature(payload: bytes, secret: str | bytes, timestamp: int) -> str:
    """The ``Stripe-Signature`` header a sender with *secret* puts on *payload* at *timestamp*."""
    key = secret.encode() if isinstance(secret, str) else secret
    return f"t={timestamp},v1={_hmac_hex(key, str(timestamp).encode() + b'.' + payload)}"


def _any_match(candidates: Sequence[str], expected: Sequence[str]) -> bool:
    matched = False
    for candidate in candidates:
        for value in expected:  # no early exit: the time does not tell which one matched
            matched |= hmac.compare_digest(candidate.encode(), value.encode())
    return matched


@attrs.frozen(repr=False)
class StripeSignatureVerifier:
    """Checks Stripe-style signed webhooks against *secrets*, within *tolerance_s* of now."""

    secrets: tuple[bytes, ...] = attrs.field(converter=_secrets)
    tolerance_s: float = DEFAULT_TOLERANCE_S
    clock: Clock = time.time

    def verify(self, payload: bytes, header: str) -> None:
        """Return if *header* signs *payload*; raise otherwise.

        Raises:
            InvalidInputError: the header is malformed, the timestamp is outside
                the tolerance (a replay), or no signature matches any secret.
        """
        if not isinstance(header, str) or not isinstance(payload, bytes):
            raise InvalidInputError("a webhook needs its raw body (bytes) and signature header")
        timestamp: int | None = None
        signatures: list[str] = []
        for part in header.split(","):
            name, _, value = part.strip().partition("=")
            if name == "t" and _is_time(value):
                timestamp = int(value)
            elif name == "v1" and value and _well_formed(value):
                signatures.append(value)
        if timestamp is None or not signatures:
            raise InvalidInputError("the webhook signature header has no 't=' or no 'v1=' part")
        age = self.clock() - timestamp
        if abs(age) > self.tolerance_s:
            raise InvalidInputError(
                f"the webhook was signed {age:.0f} s ago, outside the {self.tolerance_s:.0f} s "
                "tolerance: refused as a possible replay"
            )
        signed = str(timestamp).encode() + b"." + payload
        expected = [_hmac_hex(secret, signed) for secret in self.secrets]
        if not _any_match(signatures, expected):
            raise InvalidInputError("the webhook signature matches none of the secrets")

    def __repr__(self) -> str:
        shown = f"secrets=<{len(self.secrets)}>, tolerance_s={self.tolerance_s}"
        return f"StripeSignatureVerifier({shown})"


@attrs.frozen(repr=False)
class HmacSignatureVerifier:
    """Checks a hex HMAC-SHA256 of the body, as many providers send it.

    With *tolerance_s* set, the sender also signs a timestamp: the message is
    ``"<timestamp>.<body>"`` and the timestamp must be within the tolerance.
    """

    secrets: tuple[bytes, ...] = attrs.field(converter=_secrets)
    tolerance_s: float | None = None
    clock: Clock = time.time

    def sign(self, payload: bytes, *, timestamp: int | None = None) -> str:
        """The signature the first secret puts on *payload* (for senders and tests)."""
        return _hmac_hex(self.secrets[0], self._message(payload, timestamp))

    def verify(self, payload: bytes, signature: str, *, timestamp: int | None = None) -> None:
        """Return if *signature* signs *payload* (and *timestamp*); raise otherwise.

        Raises:
            InvalidInputError: no match, a missing or stale timestamp.
        """
        if not isinstance(payload, bytes) or not isinstance(signature, str):
            raise InvalidInputError(
                "a webhook needs its raw body (bytes) and its signature (str), not "
                f"{type(payload).__name__} and {type(signature).__name__}"
            )
        if timestamp is not None:
            timestamp = _signed_time(timestamp)
        if self.tolerance_s is not None:
            if timestamp is None:
                raise InvalidInputError("this webhook scheme signs a timestamp; none was given")
            age = self.clock() - timestamp
            if abs(age) > self.tolerance_s:
                raise InvalidInputError(
                    f"the webhook was signed {age:.0f} s ago, outside the tolerance"
                )
        candidate = signature.strip().removeprefix("sha256=").lower()
        message = self._message(payload, timestamp)
        expected = [_hmac_hex(secret, message) for secret in self.secrets]
        if not _well_formed(candidate) or not _any_match([candidate], expected):
            raise InvalidInputError("the webhook signature matches none of the secrets")

    def _message(self, payload: bytes, timestamp: int | None) -> bytes:
        if self.tolerance_s is None or timestamp is None:
            return payload
        return str(timestamp).encode() + b"." + payload

    def __repr__(self) -> str:
        return f"HmacSignatureVerifier(secrets=<{len(self.secrets)}>)"


@attrs.frozen
class WebhookEvent:
    """A verified event: its id, type, creation time and the parsed body."""

    id: str
    type: str
    created: int
    data: Mapping[str, Any] = attrs.field(repr=False)


class WebhookOutcome(enum.Enum):
    """What :meth:`WebhookProcessor.receive` did with a delivery."""

    ACCEPTED = "accepted"
    DUPLICATE = "duplicate"


class WebhookProcessor:
    """Verifies Stripe-style webhooks and runs *handler* once per event id.

    Answer the provider 2xx for both outcomes; for an
    :class:`~commercekit.errors.InvalidInputError` answer 400; for an
    :class:`OperationInFlightError` (the same event is being handled on
    another worker) or an error from your handler, answer 5xx so that the
    provider delivers it again.
    """

    def __init__(
        self,
        verifier: StripeSignatureVerifier,
        store: IdempotencyStore,
        handler: Callable[[WebhookEvent], None],
        *,
        metrics: Metrics | None = None,
        clock: Clock = time.time,
        lease_s: float = 60.0,
    ) -> None:
        self._verifier = verifier
        self._handler = handler
        self._once = _ExactlyOnce(store, metrics=metrics, clock=clock, lease_s=lease_s)

    def receive(self, payload: bytes, signature_header: str) -> WebhookOutcome:
        """Verify, parse and handle one delivery; see the class docstring."""
        try:
            self._verifier.verify(payload, signature_header)
            event = _parse(payload)
        except InvalidInputError:
            self._once.rejected()
            raise
        return self._once.run(
            f"webhook:{event.id}", event.id, event.type, lambda: self._handler(event)
        )


class _ExactlyOnce:
    """The exactly-once step every webhook receiver shares.

    :meth:`run` claims *key* in the store, runs the action, and records the
    claim; if the action raises, the claim is let go so a redelivery runs it
    again. Deliveries are counted in ``commercekit_payments_webhooks_total``.
    """

    def __init__(
        self,
        store: IdempotencyStore,
        *,
        metrics: Metrics | None,
        clock: Clock,
        lease_s: float,
    ) -> None:
        self._store = store
        self._clock = clock
        self._lease_s = lease_s
        m = metrics if metrics is not None else NullMetrics()
        self._counts = {
            outcome: m.counter(
                "commercekit_payments_webhooks_total",
                description="Webhook deliveries, by what was done with them.",
                tags={"outcome": outcome},
            )
            for outcome in ("accepted", "duplicate", "rejected")
        }

    def rejected(self) -> None:
        self._counts["rejected"].inc()

    def run(
        self, key: str, event_id: str, event_type: str, action: Callable[[], None]
    ) -> WebhookOutcome:
        owner = uuid.uuid4().hex
        claim = self._store.begin(
            key,
            scope=key,
            operation="webhook",
            fingerprint=hashlib.sha256(event_id.encode()).hexdigest(),
            request=json.dumps({"id": event_id, "type": event_type}),
            owner=owner,
            now=self._clock(),
            lease_s=self._lease_s,
        )
        if claim.kind is ClaimKind.REPLAY:
            self._counts["duplicate"].inc()
            return WebhookOutcome.DUPLICATE
        try:
            action()
        except BaseException:
            self._store.release(key, owner=owner, unknown=False)
            raise
        self._store.complete(key, owner=owner, result='"handled"', now=self._clock())
        self._counts["accepted"].inc()
        return WebhookOutcome.ACCEPTED


def _is_time(value: str) -> bool:
    return value.isascii() and value.isdigit() and len(value) <= _MAX_TIME_DIGITS


def _parse(payload: bytes) -> WebhookEvent:
    data = read_json(payload, what="the webhook body")
    if not isinstance(data, dict) or "id" not in data or "type" not in data:
        raise InvalidInputError("the webhook body is not an event with an id and a type")
    event_id, kind, created = data["id"], data["type"], data.get("created", 0)
    for what, value in (("id", event_id), ("type", kind)):
        if (
            not isinstance(value, str)
            or not value
            or len(value) > _MAX_EVENT_ID
            or not value.isprintable()  # refuses controls and lone surrogates
        ):
            raise InvalidInputError(
                f"the webhook event {what} must be a non-empty printable string of at most "
                f"{_MAX_EVENT_ID} characters"
            )
    if type(created) is not int or not 0 <= created < _MAX_CREATED:
        raise InvalidInputError(
            "the webhook event's 'created' must be an int of unix seconds, not "
            f"{type(created).__name__}"
        )
    return WebhookEvent(event_id, kind, created, data)
