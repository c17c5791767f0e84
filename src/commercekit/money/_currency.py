"""Currencies: the ISO 4217 table as interned :class:`Currency` values, and lookups."""

from __future__ import annotations

import datetime
import re
from typing import Any, Final, final

import attrs

from commercekit.errors import InvalidInputError, UnknownCurrencyError, UnsupportedTypeError
from commercekit.money._iso4217 import PUBLISHED, TABLE

__all__ = ["ISO_4217_PUBLISHED", "Currency", "currencies", "currency", "shown"]

ISO_4217_PUBLISHED: Final[datetime.date] = PUBLISHED
"""Publication date of the ISO 4217 list the built-in table comes from."""

_CODE = re.compile(r"[A-Z]{3}", re.ASCII)
_MAX_EXPONENT: Final = 18


def shown(value: object, limit: int = 60) -> str:
    """``repr(value)`` for a message: cut to *limit* characters, and never raising.

    ``repr`` of an int past 4,300 digits (or a Fraction of such ints) raises
    ``ValueError``, and a foreign object's ``__repr__`` may raise anything.
    """
    try:
        text = repr(value)
    except Exception:  # the int-to-str digit limit, a broken __repr__
        bits = getattr(value, "bit_length", None)
        size = f" of about {int(bits() * 0.30103) + 1} digits" if callable(bits) else ""
        text = f"<{type(value).__name__}{size}>"
    return text if len(text) <= limit else text[: limit - 3] + "..."


def _check_code(instance: Currency, attribute: attrs.Attribute[str], code: str) -> None:
    if not isinstance(code, str) or _CODE.fullmatch(code) is None:
        raise InvalidInputError(
            f"a currency code is three letters A-Z, such as 'USD', not {shown(code)}"
        )
    if code in _BY_KEY:
        raise InvalidInputError(
            f"{code} is in the ISO 4217 table; get it with Currency.of({code!r}) "
            "instead of constructing it"
        )


def _check_numeric(instance: Currency, attribute: attrs.Attribute[int], numeric: int) -> None:
    if type(numeric) is not int or not 0 <= numeric <= 999:
        raise InvalidInputError(f"a numeric currency code is an int 0..999, not {shown(numeric)}")


def _check_exponent(instance: Currency, attribute: attrs.Attribute[int], exponent: int) -> None:
    if type(exponent) is not int or not 0 <= exponent <= _MAX_EXPONENT:
        raise InvalidInputError(
            f"a minor unit exponent is an int 0..{_MAX_EXPONENT}, not {shown(exponent)}"
        )


@final
@attrs.frozen(eq=False, repr=False)
class Currency:
    """One currency: its ISO 4217 codes, minor unit exponent and English name.

    Get currencies with :meth:`Currency.of` (or :func:`currency`): every
    currency of the ISO 4217 table exists once, so lookups return the same
    object, and copies and unpickled values are that object too. Currencies
    compare and hash by :attr:`code`.

    *exponent* is the number of decimal places of the minor unit: 2 for USD
    (100 cents to the dollar), 0 for JPY, 3 for KWD, 4 for CLF. Where ISO 4217
    lists the minor unit as "N.A." (gold ``XAU``, silver ``XAG``, ``XDR``, the
    testing code ``XTS``, "no currency" ``XXX`` and so on), the exponent is 0
    and :attr:`has_minor_unit` is false: amounts in those are whole units, and
    code that needs a real minor unit (card payments, say) can refuse them by
    that flag. :attr:`is_fund` marks the list's fund codes (``BOV``, ``CLF``,
    ``USN``, ...).

    Constructing a :class:`Currency` directly makes a private unit outside the
    table (loyalty points, say), for codes the table does not use; it is not
    found by :meth:`Currency.of`. Two currencies are equal only when they are
    the same currency: the one table entry, or private units that agree in
    every field (code, numeric code, exponent, name and flags), so a copy or
    an unpickled private unit equals its original while two private units
    that share a code but not an exponent never do (amounts in them neither
    compare equal nor add).
    """

    code: str = attrs.field(validator=_check_code)
    """Alphabetic code, three upper-case letters (``"USD"``)."""
    numeric: int = attrs.field(validator=_check_numeric)
    """Numeric code (840 for USD); shown with three digits, as ``f"{numeric:03d}"``."""
    exponent: int = attrs.field(validator=_check_exponent)
    """Decimal places of the minor unit (2 for USD, 0 for JPY and for "N.A." codes)."""
    name: str = attrs.field(validator=attrs.validators.instance_of(str))
    """English name as the ISO 4217 list gives it (``"US Dollar"``)."""
    has_minor_unit: bool = attrs.field(
        default=True, kw_only=True, validator=attrs.validators.instance_of(bool)
    )
    """False where ISO 4217 lists the minor unit as "N.A." (then *exponent* is 0)."""
    is_fund: bool = attrs.field(
        default=False, kw_only=True, validator=attrs.validators.instance_of(bool)
    )
    """True for the list's fund codes (``IsFund``), such as ``CLF`` and ``USN``."""
    minor_per_major: int = attrs.field(init=False, default=1)
    """Minor units in one major unit: ``10 ** exponent`` (100 for USD, 1 for JPY)."""

    def __attrs_post_init__(self) -> None:
        # Runs after the validators, so the exponent is a small int here.
        if not self.has_minor_unit and self.exponent != 0:
            raise InvalidInputError(
                f"{self.code} has no minor unit, so its exponent must be 0, not {self.exponent}"
            )
        object.__setattr__(self, "minor_per_major", 10**self.exponent)

    @classmethod
    def of(cls, code: str | int | Currency) -> Currency:
        """Look a currency up by alphabetic code (any case) or numeric code.

        ``Currency.of("usd")``, ``Currency.of("USD")``, ``Currency.of(840)`` and
        ``Currency.of("840")`` all return the one ``USD``. A :class:`Currency`
        is returned as it is.

        Raises:
            UnknownCurrencyError: (a :class:`LookupError`) the code is not in
                the ISO 4217 table.
            UnsupportedTypeError: (a :class:`TypeError`) *code* is neither a
                str, an int nor a Currency.
        """
        return currency(code)

    def __eq__(self, other: object) -> bool:
        if isinstance(other, Currency):
            return self is other or self._identity() == other._identity()
        return NotImplemented

    def __ne__(self, other: object) -> bool:
        if isinstance(other, Currency):
            return self is not other and self._identity() != other._identity()
        return NotImplemented

    def _identity(self) -> tuple[object, ...]:
        # Table currencies are interned, so only private units get this far
        # with equal codes; every field takes part.
        return (
            self.code,
            self.numeric,
            self.exponent,
            self.name,
            self.has_minor_unit,
            self.is_fund,
        )

    def __hash__(self) -> int:
        return hash(self.code)

    def __repr__(self) -> str:
        if _BY_KEY.get(self.code) is self:
            return f"Currency.of({self.code!r})"
        return (
            f"Currency({self.code!r}, {self.numeric!r}, {self.exponent!r}, {self.name!r}, "
            f"has_minor_unit={self.has_minor_unit!r}, is_fund={self.is_fund!r})"
        )

    def __str__(self) -> str:
        return self.code

    def __reduce__(self) -> tuple[Any, ...]:
        # Table currencies unpickle (and copy) to the interned object.
        if _BY_KEY.get(self.code) is self:
            return (currency, (self.code,))
        return (
            _private_currency,
            (
                self.code,
                self.numeric,
                self.exponent,
                self.name,
                self.has_minor_unit,
                self.is_fund,
            ),
        )


def _private_currency(
    code: str, numeric: int, exponent: int, name: str, has_minor_unit: bool, is_fund: bool
) -> Currency:
    return Currency(code, numeric, exponent, name, has_minor_unit=has_minor_unit, is_fund=is_fund)


# Lookup keys: the upper- and lower-case alphabetic code, the int numeric code
# and its three-digit string form. Filled once below, read-only afterwards.
_BY_KEY: dict[str | int, Currency] = {}


def _intern_table() -> tuple[Currency, ...]:
    interned = []
    for code, numeric, minor_unit, name, is_fund in TABLE:
        # Built before any key is registered, so the "already in the table"
        # check of direct construction does not apply.
        item = Currency(
            code,
            numeric,
            0 if minor_unit is None else minor_unit,
            name,
            has_minor_unit=minor_unit is not None,
            is_fund=is_fund,
        )
        interned.append(item)
    for item in interned:
        for key in (item.code, item.code.lower(), item.numeric, f"{item.numeric:03d}"):
            if key in _BY_KEY:  # pragma: no cover - guards a bad table refresh
                raise RuntimeError(f"duplicate ISO 4217 key {key!r} in the table")
            _BY_KEY[key] = item
    return tuple(interned)


_ALL: Final[tuple[Currency, ...]] = _intern_table()


def currency(code: str | int | Currency) -> Currency:
    """Look a currency up by alphabetic code (any case) or numeric code.

    The same as :meth:`Currency.of`: ``currency("eur")``, ``currency(978)`` and
    ``currency("978")`` return the one ``EUR``.

    Raises:
        UnknownCurrencyError: (a :class:`LookupError`) the code is not in the
            ISO 4217 table.
        UnsupportedTypeError: (a :class:`TypeError`) *code* is neither a str,
            an int nor a Currency.
    """
    if isinstance(code, Currency):
        return code
    if isinstance(code, str | int) and not isinstance(code, bool):
        found = _BY_KEY.get(code)
        if found is not None:
            return found
        if isinstance(code, str) and code.isascii():
            found = _BY_KEY.get(code.upper())
            if found is not None:
                return found
        raise UnknownCurrencyError(_unknown_message(code))
    raise UnsupportedTypeError(
        "a currency is given as a Currency, an alphabetic code such as 'USD' "
        f"or a numeric code such as 840, not {type(code).__name__} {shown(code)}"
    )


def currencies() -> tuple[Currency, ...]:
    """Return every currency of the ISO 4217 table, sorted by code."""
    return _ALL


def _unknown_message(code: str | int) -> str:
    message = (
        f"unknown currency code {shown(code, 40)}: it is not in the ISO 4217 table "
        f"(list one, published {PUBLISHED.isoformat()}, {len(_ALL)} current codes; "
        "withdrawn codes are not included); pass a three-letter code such as 'USD' "
        "(any case) or a numeric code such as 840 or '840'; "
        "commercekit.money.currencies() lists them all"
    )
    if isinstance(code, str) and len(code) == 3:
        # Codes that differ in one letter only: a likely typo.
        wanted = code.upper()
        close = [item.code for item in _ALL if sum(map(str.__eq__, item.code, wanted)) == 2]
        if close:
            message += "; did you mean " + " or ".join(repr(match) for match in close) + "?"
    return message
