"""The one exception hierarchy of commercekit.

Every error the library raises on purpose is a :class:`CommerceKitError`. Where
a builtin means the same thing, the error subclasses it too, so code written
against the builtin keeps working (``except ValueError`` catches bad input,
``except LookupError`` catches "not found")::

    CommerceKitError
     ├── InvalidInputError (ValueError) ........ the call is wrong: fix the input
     │    ├── ConfigurationError ............... a component was set up wrongly
     │    │    └── MissingExtraError (ImportError)  an optional dependency is not installed
     │    ├── CurrencyMismatchError ............ two currencies in one operation
     │    ├── PrecisionError ................... more digits than the currency has
     │    ├── MalformedHeaderError ............. an HTTP header too large or unparseable
     │    ├── SignatureError ................... a signed URL or cookie does not verify
     │    │    └── SignatureExpiredError ....... it verifies, but outside its validity window
     │    ├── PurgeRejectedError ............... a CDN purge API refused the request
     │    ├── EmptyCartError ................... a checkout of a cart with no lines
     │    └── VoucherInvalidError .............. a voucher unknown, expired or not for this cart
     ├── UnsupportedTypeError (TypeError) ...... a refused type (a float for money)
     ├── NotFoundError (LookupError) ........... nothing by that name or key
     │    ├── UnknownCurrencyError ............. not an ISO 4217 currency
     │    └── UnknownSkuError .................. no product variant or stock row has that SKU
     ├── ConflictError ......................... the request clashes with what is stored
     │    ├── DuplicateError ................... it exists already
     │    ├── StaleVersionError ................ another writer changed the row first
     │    ├── OutOfStockError .................. not enough stock left: sold out
     │    └── VoucherExhaustedError ............ a voucher's usage limit is reached
     ├── InvalidStateError ..................... not allowed in the object's current state
     │    ├── CartFrozenError .................. a cart being checked out takes no change
     │    ├── ReadOnlyError .................... a write in read-only work or on a replica
     │    └── InvalidTransitionError ........... a status change its transition table refuses
     ├── PaymentDeclinedError .................. the payment provider declined: ask for another card
     ├── RepositoryError ....................... any other database error (``__cause__`` has it)
     ├── TransientError ........................ failed, and safe to retry as it is
     │    ├── SerializationFailureError ........ the database aborted it: retry the whole work
     │    ├── OperationInFlightError ........... another worker holds the key: retry it later
     │    │    └── CheckoutInProgressError ..... another worker is completing this checkout
     │    └── UnavailableError ................. no healthy backend right now
     │         ├── DatabaseUnavailableError .... a database node unreachable; nothing committed
     │         ├── OriginError ................. a CDN origin unreachable or answering garbage
     │         │    └── OriginTimeoutError (TimeoutError)  it did not answer in time (504)
     │         ├── PurgeUnavailableError ....... a CDN purge API down or at its limits
     │         ├── RateLimitedError ............ a provider said 429: wait retry_after_s
     │         └── StoreUnavailableError ....... a shared cache store (Redis) unreachable
     └── OutcomeUnknownError ................... may have happened: reconcile, never retry blindly
          └── CommitOutcomeUnknownError ........ lost during COMMIT: look the data up first

Errors caused by a foreign library (a driver, an HTTP client) are raised
``from`` the foreign error, so ``__cause__`` keeps it. Messages say what went
wrong and how to fix it; they name the offending value, never a secret or a
card number.
"""

from __future__ import annotations

__all__ = [
    "CartFrozenError",
    "CheckoutInProgressError",
    "CommerceKitError",
    "CommitOutcomeUnknownError",
    "ConfigurationError",
    "ConflictError",
    "CurrencyMismatchError",
    "DatabaseUnavailableError",
    "DuplicateError",
    "EmptyCartError",
    "InvalidInputError",
    "InvalidStateError",
    "InvalidTransitionError",
    "MalformedHeaderError",
    "MissingExtraError",
    "NotFoundError",
    "OperationInFlightError",
    "OriginError",
    "OriginTimeoutError",
    "OutOfStockError",
    "OutcomeUnknownError",
    "PaymentDeclinedError",
    "PrecisionError",
    "PurgeRejectedError",
    "PurgeUnavailableError",
    "RateLimitedError",
    "ReadOnlyError",
    "RepositoryError",
    "SerializationFailureError",
    "SignatureError",
    "SignatureExpiredError",
    "StaleVersionError",
    "StoreUnavailableError",
    "TransientError",
    "UnavailableError",
    "UnknownCurrencyError",
    "UnknownSkuError",
    "UnsupportedTypeError",
    "VoucherExhaustedError",
    "VoucherInvalidError",
    "is_transient",
]


class CommerceKitError(Exception):
    """Base of every error commercekit raises on purpose."""


class InvalidInputError(CommerceKitError, ValueError):
    """An argument has the right type but a wrong value; the message says which and why."""


class ConfigurationError(InvalidInputError):
    """A component was constructed or wired with settings that cannot work together."""


class MissingExtraError(ConfigurationError, ImportError):
    """A feature needs an optional dependency that is not installed.

    The message names the extra and the command that installs it
    (``pip install 'commercekit[extra]'``). It is also an ``ImportError``, so
    code that probes for an optional feature with ``except ImportError`` keeps
    working.
    """


class CurrencyMismatchError(InvalidInputError):
    """An operation mixed amounts in different currencies; convert one of them first."""


class PrecisionError(InvalidInputError):
    """An amount has more fractional digits than its currency allows.

    Pass a rounding mode (``rounding=decimal.ROUND_HALF_EVEN`` and so on) to
    round explicitly, or fix the amount.
    """


class MalformedHeaderError(InvalidInputError):
    """An HTTP header is larger than the configured limit or cannot be parsed at all."""


class SignatureError(InvalidInputError):
    """A signed URL or cookie is missing its signature or the signature does not match."""


class SignatureExpiredError(SignatureError):
    """The signature is valid but the URL has expired or is not valid yet."""


class PurgeRejectedError(InvalidInputError):
    """A CDN purge API refused the request (bad credentials, bad input): fix it, do not retry."""


class UnsupportedTypeError(CommerceKitError, TypeError):
    """A value's type is refused on purpose (for example a ``float`` for money)."""


class NotFoundError(CommerceKitError, LookupError):
    """Nothing is known by the given name, key or id."""


class UnknownCurrencyError(NotFoundError):
    """A currency code is not in the ISO 4217 table."""


class ConflictError(CommerceKitError):
    """The request clashes with what is already stored (a stale version, a reused key)."""


class DuplicateError(ConflictError):
    """Something with the same identity exists already."""


class InvalidStateError(CommerceKitError):
    """The operation is not allowed in the object's current state."""


class TransientError(CommerceKitError):
    """A failure that is safe to retry unchanged: nothing happened on the other side.

    Retry policies in commercekit retry only these (see :func:`is_transient`).
    """


class UnavailableError(TransientError):
    """No healthy backend can take the request right now; try again shortly."""


class OriginError(UnavailableError):
    """A CDN origin could not be reached, timed out, or sent a response that cannot be parsed.

    Raised only for requests that are safe to repeat (GET and HEAD), so it is
    transient: retry it, or let ``stale-if-error`` serve a stored copy.
    """


class OriginTimeoutError(OriginError, TimeoutError):
    """A CDN origin did not answer (or did not finish a body) within the allowed time.

    A proxy answers it with 504 Gateway Timeout; any other :class:`OriginError` is 502.
    """


class PurgeUnavailableError(UnavailableError):
    """A purge API did not answer, answered 5xx or 429, or its in-progress limit was reached."""


class StoreUnavailableError(UnavailableError):
    """A shared cache store (Redis) could not be reached; the edge falls back to the origin."""


class OutcomeUnknownError(CommerceKitError):
    """The request may or may not have taken effect (a timeout after sending, a lost COMMIT).

    Never retry it blindly: look the outcome up first (the payment at the
    provider, the row in the database), then decide.
    """


class StaleVersionError(ConflictError):
    """Someone else changed the row first: reload it, reapply the change, try again."""


class SerializationFailureError(TransientError):
    """The database aborted the transaction (serialization failure, deadlock); nothing was kept.

    Safe to retry the whole unit of work, never a single statement of it.
    """


class DatabaseUnavailableError(UnavailableError):
    """A node could not be reached, or was lost before COMMIT was sent; nothing was kept."""

    orig: BaseException | None = None


class CommitOutcomeUnknownError(OutcomeUnknownError):
    """COMMIT was sent, outcome unknown (connection lost, sync-replication wait cancelled).

    The transaction may be durable on the primary. Look the row up before doing
    the work again; commercekit never retries this by itself.
    """


class CartFrozenError(InvalidStateError):
    """The cart is frozen: a checkout of it is running, and it takes no changes meanwhile.

    The checkout ends by closing it (ordered) or by opening it again (payment
    declined, sold out, abandoned); read it again then. Nothing was changed.
    """


class ReadOnlyError(InvalidStateError):
    """A write was attempted in a read-only unit of work (or reached a read-only node)."""


class RepositoryError(CommerceKitError):
    """A database error with no more specific meaning; ``__cause__`` has the driver's error."""


class RateLimitedError(UnavailableError):
    """The provider refused the request for now (HTTP 429); nothing happened.

    Retry with the same idempotency key after :attr:`retry_after_s` seconds
    (``None`` when the provider did not say).
    """

    def __init__(self, message: str, *, retry_after_s: float | None = None) -> None:
        super().__init__(message)
        self.retry_after_s = retry_after_s


class OperationInFlightError(TransientError):
    """Another worker holds this idempotency key, or another operation on this payment.

    Nothing was sent. Retry with the same key once the other attempt has
    finished (its lease is :attr:`retry_after_s` seconds away at most); the
    retry then returns that attempt's recorded result.
    """

    def __init__(self, message: str, *, retry_after_s: float | None = None) -> None:
        super().__init__(message)
        self.retry_after_s = retry_after_s


class UnknownSkuError(NotFoundError):
    """No product variant (or stock row) has this SKU; the message names it."""


class EmptyCartError(InvalidInputError):
    """A checkout was asked for a cart with no lines: add something first."""


class VoucherInvalidError(InvalidInputError):
    """A voucher code is unknown, expired, not yet valid, or not for this cart's currency."""


class OutOfStockError(ConflictError):
    """Not enough stock is left for the quantity asked: the item is sold out.

    :attr:`sku` names the first SKU that could not be had; nothing was reserved.
    """

    def __init__(self, message: str, *, sku: str | None = None) -> None:
        super().__init__(message)
        self.sku = sku


class VoucherExhaustedError(ConflictError):
    """The voucher's usage limit is reached (another order used the last use first)."""


class InvalidTransitionError(InvalidStateError):
    """A status change that the transition table does not allow, or that lost a race.

    Reload the object: another worker may have moved it first (one cancel and
    one fulfilment at once: one wins, the other gets this).
    """


class PaymentDeclinedError(CommerceKitError):
    """The payment provider declined the payment; nothing is charged and no stock is held.

    :attr:`decline_code` is the standard decline code's value (``card_declined``,
    ``insufficient_funds`` ...). Ask the customer for another payment method.
    """

    def __init__(self, message: str, *, decline_code: str | None = None) -> None:
        super().__init__(message)
        self.decline_code = decline_code


class CheckoutInProgressError(OperationInFlightError):
    """Another worker is completing this checkout right now; retry shortly to get its result."""


def is_transient(exc: BaseException) -> bool:
    """Say whether *exc* is safe to retry unchanged.

    True for a :class:`TransientError`, and for a foreign exception raised
    from one (``raise RuntimeError(...) from err``, through any number of
    foreign wrappers); false for everything else. A commercekit error says
    what it means by its own type, whatever its cause, so an
    :class:`OutcomeUnknownError` (or an :class:`InvalidInputError`) raised
    from a transient error is not transient. Only explicit causes
    (``__cause__``) count, not the exception being handled (``__context__``).
    """
    seen: set[int] = set()
    current: BaseException | None = exc
    while current is not None and id(current) not in seen:
        if isinstance(current, CommerceKitError):
            return isinstance(current, TransientError) and not isinstance(
                current, OutcomeUnknownError
            )
        seen.add(id(current))
        current = current.__cause__
    return False
