"""The checks every payment operation makes on its input before anything is recorded."""

from __future__ import annotations

from typing import Final

from commercekit.errors import InvalidInputError, UnsupportedTypeError
from commercekit.money import Money

__all__ = ["check_amount", "check_id", "check_key"]

_MAX_ID: Final = 200
_MAX_KEY: Final = 255


def check_id(payment_id: str) -> None:
    if (
        not isinstance(payment_id, str)
        or not payment_id
        or len(payment_id) > _MAX_ID
        or not payment_id.isprintable()
    ):
        raise InvalidInputError(
            f"a payment id is a non-empty str of at most {_MAX_ID} printable characters "
            "(no control characters, line breaks or lone surrogates)"
        )


def check_amount(amount: object) -> None:
    if not isinstance(amount, Money):
        raise UnsupportedTypeError(
            f"an amount is a Money, such as Money.of('12.34', 'USD'), not {type(amount).__name__}"
        )


def check_key(key: str | None, *, optional: bool = False) -> None:
    if key is None and optional:
        return
    if not isinstance(key, str) or not key or len(key) > _MAX_KEY or not key.isprintable():
        raise InvalidInputError(
            f"an idempotency key is a non-empty str of at most {_MAX_KEY} printable "
            "characters (no control characters, line breaks or lone surrogates)"
        )
