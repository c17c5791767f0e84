"""The one exception hierarchy of commercekit.

Every error the library raises on purpose is a :class:`CommerceKitError`. Where
a builtin means the same thing, the error subclasses it too, so code written
against the builtin keeps working (``except ValueError`` catches bad input,
``except LookupError`` catches "not found")::

    CommerceKitError
     ├── InvalidInputError (ValueError) ........ the call is wrong: fix the input
     │    ├── ConfigurationError ............... a component was set up wrongly
     │    ├── CurrencyMismatchError ............ two currencies in one operation
     │    └── PrecisionError ................... more digits than the currency has
     ├── UnsupportedTypeError (TypeError) ...... a refused type (a float for money)
     ├── NotFoundError (LookupError) ........... nothing by that name or key
     │    └── UnknownCurrencyError ............. not an ISO 4217 currency
     ├── ConflictError ......................... the request clashes with what is stored
     │    └── DuplicateError ................... it exists already
     ├── InvalidStateError ..................... not allowed in the object's current state
     ├── TransientError ........................ failed, and safe to retry as it is
     │    └── UnavailableError ................. no healthy backend right now
     └── OutcomeUnknownError ................... may have happened: reconcile, never retry blindly

Errors caused by a foreign library (a driver, an HTTP client) are raised
``from`` the foreign error, so ``__cause__`` keeps it. Messages say what went
wrong and how to fix it; they name the offending value, never a secret or a
card number.
"""

from __future__ import annotations

__all__ = [
    "CommerceKitError",
    "ConfigurationError",
    "ConflictError",
    "CurrencyMismatchError",
    "DuplicateError",
    "InvalidInputError",
    "InvalidStateError",
    "NotFoundError",
    "OutcomeUnknownError",
    "PrecisionError",
    "TransientError",
    "UnavailableError",
    "UnknownCurrencyError",
    "UnsupportedTypeError",
    "is_transient",
]


class CommerceKitError(Exception):
    """Base of every error commercekit raises on purpose."""


class InvalidInputError(CommerceKitError, ValueError):
    """An argument has the right type but a wrong value; the message says which and why."""


class ConfigurationError(InvalidInputError):
    """A component was constructed or wired with settings that cannot work together."""


class CurrencyMismatchError(InvalidInputError):
    """An operation mixed amounts in different currencies; convert one of them first."""


class PrecisionError(InvalidInputError):
    """An amount has more fractional digits than its currency allows.

    Pass a rounding mode (``rounding=decimal.ROUND_HALF_EVEN`` and so on) to
    round explicitly, or fix the amount.
    """


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


class OutcomeUnknownError(CommerceKitError):
    """The request may or may not have taken effect (a timeout after sending, a lost COMMIT).

    Never retry it blindly: look the outcome up first (the payment at the
    provider, the row in the database), then decide.
    """


def is_transient(exc: BaseException) -> bool:
    """Say whether *exc* is safe to retry unchanged.

    True for :class:`TransientError` and anything raised from one; false for
    everything else, including :class:`OutcomeUnknownError`.
    """
    if isinstance(exc, OutcomeUnknownError):
        return False
    return isinstance(exc, TransientError)
