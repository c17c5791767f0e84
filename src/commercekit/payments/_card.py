"""Card data that cannot leak: the number and the security code hide themselves.

:class:`CardNumber` and :class:`SecurityCode` keep their digits in a slot and
show only a masked form in ``repr``, ``str``, ``format`` and every error
message (the first six and last four digits at most, as PCI DSS allows). The
digits come out only through :meth:`CardNumber.reveal`, which a gateway or the
vault calls at the moment it must send or encrypt them. Neither type pickles,
so a card cannot slip into a cache or a database in clear by accident.
"""

from __future__ import annotations

import enum
from typing import Final, NoReturn

import attrs

from commercekit.errors import InvalidInputError, UnsupportedTypeError
from commercekit.money._currency import shown

__all__ = [
    "Card",
    "CardBrand",
    "CardNumber",
    "ProviderToken",
    "SecurityCode",
    "luhn_valid",
    "mask_number",
]

_MIN_DIGITS: Final = 12
_MAX_DIGITS: Final = 19


def luhn_valid(digits: str) -> bool:
    """Say whether *digits* (ASCII digits only) pass the Luhn mod-10 check."""
    if not digits.isascii() or not digits.isdigit():
        return False
    total = 0
    for position, char in enumerate(reversed(digits)):
        value = ord(char) - 48
        if position % 2 == 1:
            value *= 2
            if value > 9:
                value -= 9
        total += value
    return total % 10 == 0


def mask_number(digits: str) -> str:
    """Mask a card number: the first 6 and last 4 digits when it has 14 or more, else the last 4."""
    if len(digits) >= 14:
        return f"{digits[:6]}{'*' * (len(digits) - 10)}{digits[-4:]}"
    return f"{'*' * max(len(digits) - 4, 0)}{digits[-4:]}"


class CardBrand(enum.Enum):
    """Card schemes, detected from the number's leading digits (its IIN range)."""

    VISA = "visa"
    MASTERCARD = "mastercard"
    AMEX = "amex"
    DISCOVER = "discover"
    DINERS = "diners"
    JCB = "jcb"
    UNIONPAY = "unionpay"
    MAESTRO = "maestro"
    UNKNOWN = "unknown"

    @classmethod
    def detect(cls, digits: str) -> CardBrand:
        """Name the scheme of *digits* from its prefix; UNKNOWN when no range matches."""
        two, four = int(digits[:2] or 0), int(digits[:4] or 0)
        three, six = int(digits[:3] or 0), int(digits[:6] or 0)
        if digits.startswith("4"):
            return cls.VISA
        if 51 <= two <= 55 or 2221 <= four <= 2720:
            return cls.MASTERCARD
        if two in (34, 37):
            return cls.AMEX
        if four == 6011 or 644 <= three <= 649 or two == 65 or 622126 <= six <= 622925:
            return cls.DISCOVER
        if 300 <= three <= 305 or two in (36, 38, 39):
            return cls.DINERS
        if 3528 <= four <= 3589:
            return cls.JCB
        if two == 62:
            return cls.UNIONPAY
        if two == 50 or 56 <= two <= 69:
            return cls.MAESTRO
        return cls.UNKNOWN


def _no_pickle(kind: str) -> NoReturn:
    raise TypeError(f"a {kind} does not pickle: store it through CardVault, which encrypts it")


class CardNumber:
    """A card number (PAN) that shows itself masked everywhere.

    Built from a str of 12 to 19 digits (spaces and dashes are dropped) that
    passes the Luhn check; anything else raises
    :class:`~commercekit.errors.InvalidInputError` without echoing the digits.
    """

    __slots__ = ("_digits",)
    _digits: str

    def __init__(self, number: str) -> None:
        if not isinstance(number, str):
            raise UnsupportedTypeError(
                f"a card number is a str of digits, not {type(number).__name__}"
            )
        digits = number.replace(" ", "").replace("-", "")
        if not digits.isascii() or not digits.isdigit():
            raise InvalidInputError("a card number has only digits (spaces and dashes are dropped)")
        if not _MIN_DIGITS <= len(digits) <= _MAX_DIGITS:
            raise InvalidInputError(
                f"a card number has {_MIN_DIGITS} to {_MAX_DIGITS} digits, not {len(digits)}"
            )
        if not luhn_valid(digits):
            raise InvalidInputError(
                f"the card number ending {digits[-4:]} fails the Luhn check: it was mistyped"
            )
        object.__setattr__(self, "_digits", digits)

    def __setattr__(self, name: str, value: object) -> None:
        raise AttributeError("CardNumber is immutable")

    def reveal(self) -> str:
        """Return the digits: call only to send them to a provider or to encrypt them."""
        return self._digits

    @property
    def masked(self) -> str:
        """The first six and last four digits, the rest as ``*`` (``424242******4242``)."""
        return mask_number(self._digits)

    @property
    def last4(self) -> str:
        """The last four digits."""
        return self._digits[-4:]

    @property
    def bin(self) -> str:
        """The first six digits (the issuer identification number)."""
        return self._digits[:6]

    @property
    def brand(self) -> CardBrand:
        """The card scheme, from the leading digits."""
        return CardBrand.detect(self._digits)

    def __repr__(self) -> str:
        return f"CardNumber('{self.masked}')"

    def __str__(self) -> str:
        return self.masked

    def __format__(self, spec: str) -> str:
        return format(self.masked, spec)

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, CardNumber):
            return NotImplemented
        return self._digits == other._digits

    def __hash__(self) -> int:
        return hash(("CardNumber", self._digits))

    def __reduce__(self) -> NoReturn:
        _no_pickle("card number")


class SecurityCode:
    """A card security code (CVV, CVC, CID): 3 or 4 digits, shown as ``***`` and never stored."""

    __slots__ = ("_digits",)
    _digits: str

    def __init__(self, code: str) -> None:
        if not isinstance(code, str):
            raise UnsupportedTypeError(f"a security code is a str, not {type(code).__name__}")
        if not code.isascii() or not code.isdigit() or len(code) not in (3, 4):
            raise InvalidInputError("a card security code is 3 or 4 digits")
        object.__setattr__(self, "_digits", code)

    def __setattr__(self, name: str, value: object) -> None:
        raise AttributeError("SecurityCode is immutable")

    def reveal(self) -> str:
        """Return the digits: call only to send them to a provider."""
        return self._digits

    def __repr__(self) -> str:
        return "SecurityCode('***')"

    def __str__(self) -> str:
        return "***"

    def __format__(self, spec: str) -> str:
        return format("***", spec)

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, SecurityCode):
            return NotImplemented
        return self._digits == other._digits

    def __hash__(self) -> int:
        return hash(("SecurityCode", self._digits))

    def __reduce__(self) -> NoReturn:
        _no_pickle("security code")


def _to_number(value: CardNumber | str) -> CardNumber:
    return value if isinstance(value, CardNumber) else CardNumber(value)


def _to_code(value: SecurityCode | str | None) -> SecurityCode | None:
    if value is None or isinstance(value, SecurityCode):
        return value
    return SecurityCode(value)


def _check_month(instance: Card, attribute: attrs.Attribute[int], value: int) -> None:
    if isinstance(value, bool) or not isinstance(value, int) or not 1 <= value <= 12:
        raise InvalidInputError(f"exp_month is 1 to 12, not {shown(value, 20)}")


def _check_year(instance: Card, attribute: attrs.Attribute[int], value: int) -> None:
    if isinstance(value, bool) or not isinstance(value, int) or not 2000 <= value <= 2999:
        raise InvalidInputError(
            f"exp_year is a four-digit year such as 2030, not {shown(value, 20)}"
        )


@attrs.frozen
class Card:
    """A payment card as the customer typed it. ``repr`` shows it masked.

    ``Card("4242 4242 4242 4242", 12, 2030, cvv="123")``. The security code
    travels to the provider once and is never stored: :class:`CardVault`
    drops it.
    """

    number: CardNumber = attrs.field(converter=_to_number)
    exp_month: int = attrs.field(validator=_check_month)
    exp_year: int = attrs.field(validator=_check_year)
    cvv: SecurityCode | None = attrs.field(default=None, converter=_to_code)
    holder: str | None = None

    @property
    def brand(self) -> CardBrand:
        """The card scheme."""
        return self.number.brand

    @property
    def masked(self) -> str:
        """The masked number, as shown to people."""
        return self.number.masked

    def expired(self, year: int, month: int) -> bool:
        """Say whether the card has expired by *year*-*month* (valid through its expiry month)."""
        return (self.exp_year, self.exp_month) < (year, month)

    def without_cvv(self) -> Card:
        """Return the same card without its security code (what may be kept)."""
        return attrs.evolve(self, cvv=None)


def _check_token(instance: ProviderToken, attribute: attrs.Attribute[str], value: str) -> None:
    if not isinstance(value, str) or not value or len(value) > 255:
        raise InvalidInputError("a provider token is a non-empty str of at most 255 characters")


@attrs.frozen
class ProviderToken:
    """A payment method the provider already holds (``pm_...``, a Braintree nonce)."""

    value: str = attrs.field(validator=_check_token)
