"""Money: a whole number of minor units in one currency, and exact arithmetic on it.

Amounts are held as an ``int`` of minor units (cents for USD), so ``+``, ``-``,
comparisons and hashing are plain int operations. :class:`decimal.Decimal`
appears only at the edges (reading and showing amounts), and every conversion
there goes through integer ratios, so the caller's decimal context (precision,
traps) never changes a result. This module is longer than most: it is the one
value class, its parsing and its formatting, kept together so the grammar that
:meth:`Money.parse` reads and the one ``str()`` writes cannot drift apart.
"""

# Longer than 400 lines because the value class, its parser and its formatter are one
# piece: the grammar Money.parse reads and the one str() writes must not drift apart.

from __future__ import annotations

import math
import re
from collections.abc import Callable, Iterable
from decimal import Decimal
from fractions import Fraction
from numbers import Number
from typing import Final, NoReturn, final

import attrs

from commercekit.errors import (
    CurrencyMismatchError,
    InvalidInputError,
    PrecisionError,
    UnsupportedTypeError,
)
from commercekit.money._allocate import (
    RoundingMode,
    allocate_minor,
    check_rounding,
    round_ratio,
    split_minor,
)
from commercekit.money._currency import Currency, currency, shown

__all__ = ["Money"]

_MAX_DIGITS: Final = 1000
"""Most digits an amount, factor or ratio (text, Decimal, Fraction or int) may have."""
_MAX_BITS: Final = 3322  # 2**3322 < 10**1000
_MAX_PARTS: Final = 10_000
"""Most parts :meth:`Money.split` and :meth:`Money.allocate` make (a few ms of work)."""
_MAX_WIDTH: Final = 1_000
"""Widest field a format spec may ask for."""
_SHOWN_BITS: Final = 14_000
"""Widest int shown digit by digit (about 4,214 digits, under Python's int-to-str limit)."""

_AMOUNT: Final = r"(?P<amount>[+-]?(?P<whole>\d{1,3}(?:,\d{3})+|\d+)(?:\.(?P<fraction>\d+))?)"
_TEXT: Final = re.compile(
    rf"\s*(?:(?P<before>[A-Za-z]{{3}})\s+)?{_AMOUNT}(?:\s+(?P<after>[A-Za-z]{{3}}))?\s*",
    re.ASCII,
)
_FACTOR: Final = re.compile(r"\s*[+-]?\d+(?:\.\d+)?\s*", re.ASCII)
_SPEC: Final = re.compile(
    r"(?:(?P<fill>.)?(?P<align>[<>=^]))?(?P<sign>[-+ ])?(?P<width>[1-9]\d*)?(?P<grouping>[,_])?",
    re.ASCII | re.DOTALL,
)
_COMPARE_HINT: Final = (
    "compare with Money of the same currency, as in m > Money.zero(m.currency), "
    "or compare m.amount_minor"
)
_ROUND_HINT: Final = "pass rounding=decimal.ROUND_HALF_EVEN (or another mode) to round"
_FLOAT_WHY: Final = (
    "money is never a float, because binary floats cannot hold decimal amounts exactly "
    "(0.1 + 0.2 == 0.30000000000000004); pass a str such as '12.34', a decimal.Decimal "
    "or an int instead"
)

Factor = int | Decimal | Fraction | str
"""What :meth:`Money.multiply` and :meth:`Money.convert` take: exact numbers only."""


def _float_error(what: str, value: float) -> UnsupportedTypeError:
    return UnsupportedTypeError(f"{what} got the float {value!r}: {_FLOAT_WHY}")


def _to_currency(value: Currency | str) -> Currency:
    if isinstance(value, Currency):
        return value
    if isinstance(value, str):
        return currency(value)
    raise UnsupportedTypeError(
        "a currency is given as a Currency or a code such as 'USD', "
        f"not {type(value).__name__} {_clip(value)}"
    )


def _to_minor_int(value: int) -> int:
    if isinstance(value, int) and not isinstance(value, bool):
        return int(value)
    if isinstance(value, float):
        raise _float_error("Money(amount_minor=...)", value)
    raise UnsupportedTypeError(
        "amount_minor is an int of minor units (1234 for 12.34 USD), "
        f"not {type(value).__name__} {_clip(value)}; for major units use Money.of('12.34', 'USD')"
    )


def _clip(value: object) -> str:
    return shown(value)


def _int_text(value: int, spec: str = "") -> str:
    """*value* in decimal (with the grouping *spec*), or its size when it is too wide to show.

    Converting an int of more than 4,300 digits to text raises ``ValueError``
    and takes quadratic time, so such an amount shows as its number of digits.
    """
    if value.bit_length() <= _SHOWN_BITS:
        return format(value, spec)
    digits = int(value.bit_length() * 0.30103) + 1
    return f"{'-' if value < 0 else ''}<a number of about {digits} digits>"


def _too_wide(value: int) -> bool:
    return value.bit_length() > _MAX_BITS


def _exact_ratio(value: object, what: str, *, str_too: bool = True) -> tuple[int, int]:
    """Turn an exact number into ``(numerator, denominator)`` with a positive denominator.

    A str never gets here; *str_too* says whether the caller takes one, for the message.
    """
    if isinstance(value, bool):
        raise UnsupportedTypeError(f"{what} got the bool {value!r}; a bool is not a number here")
    if isinstance(value, int):
        if _too_wide(value):
            raise InvalidInputError(f"{what} got an int of more than {_MAX_DIGITS} digits")
        return int(value), 1
    if isinstance(value, Decimal):
        if not value.is_finite():
            raise InvalidInputError(f"{what} got {value!r}; NaN and Infinity are not amounts")
        _, digits, exponent = value.as_tuple()
        if not isinstance(exponent, int):  # finite, so never 'n', 'N' or 'F'
            raise InvalidInputError(f"{what} got {_clip(value)}, which is not a finite number")
        if len(digits) + max(exponent, 0) > _MAX_DIGITS or exponent < -_MAX_DIGITS:
            raise InvalidInputError(
                f"{what} got {_clip(value)}, which has more than {_MAX_DIGITS} digits"
            )
        return value.as_integer_ratio()
    if isinstance(value, Fraction):
        if _too_wide(value.numerator) or _too_wide(value.denominator):
            raise InvalidInputError(
                f"{what} got a Fraction whose numerator or denominator has more than "
                f"{_MAX_DIGITS} digits"
            )
        return value.numerator, value.denominator
    if isinstance(value, float):
        raise _float_error(what, value)
    kinds = "an int, a decimal.Decimal, a fractions.Fraction" + (" or a str" if str_too else "")
    raise UnsupportedTypeError(f"{what} takes {kinds}, not {type(value).__name__} {_clip(value)}")


def _factor_ratio(value: object, what: str) -> tuple[int, int]:
    if isinstance(value, str):
        if len(value) > _MAX_DIGITS or _FACTOR.fullmatch(value) is None:
            raise InvalidInputError(
                f"{what} got {_clip(value)}; write a factor as plain digits with an optional "
                "sign and '.', such as '1.5' or '-0.25' (no exponent, no grouping)"
            )
        return Decimal(value.strip()).as_integer_ratio()
    return _exact_ratio(value, what)


def _decimal_places(denominator: int) -> int | None:
    """Decimal places of a reduced fraction with this denominator; None if it never ends."""
    twos = (denominator & -denominator).bit_length() - 1
    rest, fives = denominator >> twos, 0
    while rest % 5 == 0:
        rest, fives = rest // 5, fives + 1
    return max(twos, fives) if rest == 1 else None


def _to_minor(
    numerator: int,
    denominator: int,
    unit: Currency,
    rounding: RoundingMode | None,
    describe: Callable[[], str],
    fix: str,
) -> int:
    """Turn ``numerator / denominator`` major units into minor units of *unit*.

    Exact when it can be; rounds only when *rounding* is given, else raises a
    :class:`PrecisionError` that names the value (``describe()``), the
    currency, its exponent and *fix*.
    """
    scaled = numerator * unit.minor_per_major
    if scaled % denominator == 0:
        return scaled // denominator
    if rounding is not None:
        return round_ratio(scaled, denominator, rounding)
    places = _decimal_places(denominator // math.gcd(numerator, denominator))
    if places is None:
        has = "has endless decimal places"
    else:
        has = f"has {places} decimal place{'' if places == 1 else 's'}"
    if unit.has_minor_unit:
        allowed = f"{unit.code} has {unit.exponent} (minor unit exponent {unit.exponent})"
    else:
        allowed = (
            f"{unit.code} has none (ISO 4217 lists its minor unit as N.A., so amounts are "
            "whole units; minor unit exponent 0)"
        )
    raise PrecisionError(f"{describe()} {has} but {allowed}; {fix}")


def _ratio_text(numerator: int, denominator: int) -> str:
    """Show ``numerator / denominator`` exactly as a decimal if it ends, else as a fraction."""
    common = math.gcd(numerator, denominator)
    places = _decimal_places(denominator // common)
    if places is None:
        return f"{_int_text(numerator // common)}/{_int_text(denominator // common)}"
    digits = abs(numerator) * 10**places // denominator
    sign = "-" if numerator < 0 else ""
    if places == 0:
        return f"{sign}{_int_text(digits)}"
    whole, fraction = divmod(digits, 10**places)
    return f"{sign}{_int_text(whole)}.{_int_text(fraction, f'0{places}d')}"


@final
@attrs.frozen(eq=False, repr=False)
class Money:
    """An amount of money: a whole number of minor units in one :class:`Currency`.

    ``Money(1234, "USD")`` is 12.34 USD. Build amounts from major units with
    :meth:`Money.of` or :meth:`Money.parse`, from minor units with
    :meth:`Money.from_minor`, and :meth:`Money.zero`. A ``float`` is refused
    everywhere with :class:`~commercekit.errors.UnsupportedTypeError`.

    Arithmetic stays in one currency: ``+``, ``-``, unary ``-``, ``abs()``,
    ``sum()`` (``0 + m`` is ``m``), ``m * int``, and ``m * Decimal`` when the
    product is a whole number of minor units; :meth:`multiply` rounds
    explicitly, :meth:`split` and :meth:`allocate` divide without losing a
    minor unit. ``/`` and ``//`` are refused (dividing money needs a decision
    about the remainder). Mixing currencies raises
    :class:`~commercekit.errors.CurrencyMismatchError`; mixing in a bare
    number raises :class:`~commercekit.errors.UnsupportedTypeError`.

    Amounts of different currencies are unequal, and ordering them raises.
    ``bool(m)`` is true when the amount is not zero. ``str(m)`` is
    ``"12.34 USD"``, which :meth:`Money.parse` reads back.
    """

    amount_minor: int = attrs.field(converter=_to_minor_int)
    """The amount in minor units of :attr:`currency` (1234 for 12.34 USD)."""
    currency: Currency = attrs.field(converter=_to_currency)
    """The currency; given as a :class:`Currency` or a code such as ``"USD"``."""

    # -- construction -----------------------------------------------------------------

    @classmethod
    def of(
        cls,
        amount: int | Decimal | Fraction | str,
        currency: Currency | str,
        *,
        rounding: RoundingMode | None = None,
    ) -> Money:
        """Make money from an amount in major units, exactly.

        ``Money.of("12.34", "USD")``, ``Money.of(Decimal("12.34"), "USD")`` and
        ``Money.of(Fraction(1234, 100), "USD")`` hold 1234 minor units;
        ``Money.of(12, "USD")`` holds 1200. A str is read as by :meth:`parse`.

        Raises:
            PrecisionError: the amount has more decimal places than the
                currency and *rounding* is None; pass a :mod:`decimal` rounding
                mode such as ``decimal.ROUND_HALF_EVEN`` to round instead.
            InvalidInputError: NaN, Infinity, more than 1000 digits, or (for a
                str) text that is not an amount.
            UnsupportedTypeError: a float, a bool or another type.
            UnknownCurrencyError: *currency* is not an ISO 4217 code.
        """
        if isinstance(amount, str):
            return cls.parse(amount, currency, rounding=rounding)
        unit = _to_currency(currency)
        mode = None if rounding is None else check_rounding(rounding)
        if type(amount) is int:
            return _make(amount * unit.minor_per_major, unit)
        numerator, denominator = _exact_ratio(amount, "Money.of()")
        minor = _to_minor(numerator, denominator, unit, mode, lambda: f"{amount}", _ROUND_HINT)
        return _make(minor, unit)

    @classmethod
    def parse(
        cls,
        text: str,
        currency: Currency | str | None = None,
        *,
        rounding: RoundingMode | None = None,
    ) -> Money:
        """Read an amount in major units from text such as ``"-1,234.56 USD"``.

        The grammar, in ASCII only: optional surrounding whitespace; an
        optional ``+`` or ``-``; digits, where ``,`` may separate thousands
        but only in groups of three (``"1,234,567"``, never ``"12,34"``); an
        optional ``.`` followed by at least one digit; and optionally a
        three-letter currency code after (or before) the number, separated by
        whitespace. Exponents (``"1e3"``), ``NaN``, ``Infinity``, a decimal
        comma and locale digits are refused: this reads the ``str()`` and
        ``format()`` output of :class:`Money`, not localised user input (parse
        that with a locale library into a Decimal and pass it to :meth:`of`).
        Trailing zeros are fine (``"1.50"`` JPY is not, ``"1.00"`` JPY is 1).

        *currency* may be left out when the text names it; when both are
        given they must agree.

        Raises:
            PrecisionError: more decimal places than the currency has and no
                *rounding*.
            InvalidInputError: the text is not an amount, or names no currency
                when *currency* is None.
            CurrencyMismatchError: the text names another currency than *currency*.
            UnknownCurrencyError: a code that is not in ISO 4217.
            UnsupportedTypeError: *text* is not a str.
        """
        if not isinstance(text, str):
            if isinstance(text, float):  # type: ignore[unreachable]
                raise _float_error("Money.parse()", text)
            raise UnsupportedTypeError(
                f"Money.parse() reads a str, not {type(text).__name__} {_clip(text)}; "
                "use Money.of() for Decimal and int amounts"
            )
        mode = None if rounding is None else check_rounding(rounding)
        match = _TEXT.fullmatch(text) if len(text) <= 2 * _MAX_DIGITS else None
        if match is None:
            raise InvalidInputError(
                f"cannot read {_clip(text)} as an amount of money: write an optional sign, "
                "digits (',' may group thousands, in threes), optionally '.' and more "
                "digits, and optionally a currency code, as in '-1,234.56 USD'; exponents, "
                "NaN, Infinity and a decimal comma are refused"
            )
        unit = None if currency is None else _to_currency(currency)
        before, after = match["before"], match["after"]
        if before is not None and after is not None:
            raise InvalidInputError(
                f"{_clip(text)} names a currency twice; write the code once, as in '12.34 USD'"
            )
        code = before if before is not None else after
        if code is not None:
            named = _to_currency(code)
            if unit is not None and named != unit:
                raise CurrencyMismatchError(
                    f"{_clip(text)} is an amount in {named.code}, "
                    f"but the currency asked for is {unit.code}"
                )
            unit = named
        if unit is None:
            raise InvalidInputError(
                f"{_clip(text)} names no currency; pass one, as in "
                f"Money.parse({_clip(text)}, 'USD'), or write the code, as in '12.34 USD'"
            )
        fraction = match["fraction"] or ""
        digits = match["whole"].replace(",", "") + fraction
        if len(digits) > _MAX_DIGITS:
            raise InvalidInputError(f"{_clip(text)} has more than {_MAX_DIGITS} digits")
        numerator = -int(digits) if match["amount"][0] == "-" else int(digits)
        shown = match["amount"]
        minor = _to_minor(numerator, 10 ** len(fraction), unit, mode, lambda: shown, _ROUND_HINT)
        return _make(minor, unit)

    @classmethod
    def from_minor(cls, amount_minor: int, currency: Currency | str) -> Money:
        """Make money from an int of minor units: ``Money.from_minor(1234, "USD")`` is 12.34 USD.

        The same as ``Money(amount_minor, currency)``; a float or a bool is refused.
        """
        return cls(amount_minor, currency)

    @classmethod
    def zero(cls, currency: Currency | str) -> Money:
        """Return zero in *currency*: the start value for ``sum(amounts, Money.zero(c))``."""
        return _make(0, _to_currency(currency))

    # -- reading ------------------------------------------------------------------------

    @property
    def amount(self) -> Decimal:
        """The amount in major units, exactly, with the currency's decimal places.

        ``Money(1230, "USD").amount == Decimal("12.30")`` (exponent -2).
        """
        exponent = self.currency.exponent
        if exponent == 0:
            return Decimal(self.amount_minor)
        if self.amount_minor.bit_length() > _SHOWN_BITS:  # past the int-to-str limit
            sign, digits, _ = Decimal(self.amount_minor).as_tuple()
            return Decimal((sign, digits, -exponent))
        return Decimal(f"{self.amount_minor}E-{exponent}")

    def to_decimal(self) -> Decimal:
        """Return :attr:`amount`: the amount in major units as an exact Decimal."""
        return self.amount

    def _amount_text(self) -> str:
        exponent = self.currency.exponent
        if exponent == 0:
            return _int_text(self.amount_minor)
        whole, fraction = divmod(abs(self.amount_minor), self.currency.minor_per_major)
        sign = "-" if self.amount_minor < 0 else ""
        return f"{sign}{_int_text(whole)}.{fraction:0{exponent}d}"

    def __str__(self) -> str:
        return f"{self._amount_text()} {self.currency.code}"

    def __repr__(self) -> str:
        return f"Money('{self._amount_text()}', '{self.currency.code}')"

    def __format__(self, spec: str) -> str:
        """Format as ``str()`` does, with an optional ``[[fill]align][sign][width][grouping]``.

        ``f"{m:,}"`` is ``"1,234.56 USD"``, ``f"{m:_}"`` ``"1_234.56 USD"``,
        ``f"{m:+}"`` ``"+1234.56 USD"``, ``f"{m:>16,}"`` right-aligns the whole
        text in 16 characters (numbers align right by default; ``=`` pads
        between the sign and the digits). The decimal places always follow
        the currency; a precision or a type letter is refused. Output with
        ``,`` grouping and space or no fill reads back with :meth:`parse`.
        """
        if not spec:
            return str(self)
        match = _SPEC.fullmatch(spec)
        if match is None:
            raise InvalidInputError(
                f"invalid format spec {_clip(spec)} for Money: use [[fill]align][sign][width]"
                "[grouping], as in '>16,'; the decimal places follow the currency"
            )
        minor = self.amount_minor
        exponent = self.currency.exponent
        whole, fraction = divmod(abs(minor), self.currency.minor_per_major)
        body = _int_text(whole, match["grouping"] or "")
        if exponent:
            body += f".{fraction:0{exponent}d}"
        body += f" {self.currency.code}"
        sign = "-" if minor < 0 else {"+": "+", " ": " "}.get(match["sign"] or "-", "")
        fill = match["fill"] or " "
        align = match["align"] or ">"
        width = match["width"] or ""
        if len(width) > 4 or int(width or 0) > _MAX_WIDTH:
            raise InvalidInputError(
                f"format spec {_clip(spec)} asks for a field wider than {_MAX_WIDTH} characters"
            )
        padding = int(width or 0) - len(sign) - len(body)
        if padding <= 0:
            return sign + body
        if align == "=":
            return sign + fill * padding + body
        return format(sign + body, f"{fill}{align}{int(match['width'])}")

    # -- comparing ----------------------------------------------------------------------

    def __eq__(self, other: object) -> bool:
        if isinstance(other, Money):
            return self.amount_minor == other.amount_minor and self.currency == other.currency
        return NotImplemented

    def __ne__(self, other: object) -> bool:
        if isinstance(other, Money):
            return self.amount_minor != other.amount_minor or self.currency != other.currency
        return NotImplemented

    def __hash__(self) -> int:
        return hash((self.amount_minor, self.currency.code))

    def __bool__(self) -> bool:
        return self.amount_minor != 0

    def _other_minor(self, other: Money, verb: str) -> int:
        if other.currency is not self.currency and other.currency != self.currency:
            raise self._mismatch(verb, other)
        return other.amount_minor

    def _mismatch(self, verb: str, other: Money) -> CurrencyMismatchError:
        return CurrencyMismatchError(
            f"cannot {verb} {self} and {other}: the currencies differ "
            f"({self.currency.code} and {other.currency.code}); convert one of them first"
        )

    def _refuse_number(self, verb: str, other: object, hint: str) -> None:
        """Raise a typed error for a bare number; other types get NotImplemented."""
        if isinstance(other, float):
            raise UnsupportedTypeError(
                f"cannot {verb} {self} and the float {other!r}: {_FLOAT_WHY}"
            )
        if isinstance(other, Number):
            raise UnsupportedTypeError(
                f"cannot {verb} {self} and the {type(other).__name__} {_clip(other)}: {hint}"
            )

    # The operand types below say what is allowed, for type checkers; the
    # fallbacks they call unreachable are for callers without one.

    def __lt__(self, other: Money) -> bool:
        if isinstance(other, Money):
            return self.amount_minor < self._other_minor(other, "compare")
        self._refuse_number("compare", other, _COMPARE_HINT)  # type: ignore[unreachable]
        return NotImplemented

    def __le__(self, other: Money) -> bool:
        if isinstance(other, Money):
            return self.amount_minor <= self._other_minor(other, "compare")
        self._refuse_number("compare", other, _COMPARE_HINT)  # type: ignore[unreachable]
        return NotImplemented

    def __gt__(self, other: Money) -> bool:
        if isinstance(other, Money):
            return self.amount_minor > self._other_minor(other, "compare")
        self._refuse_number("compare", other, _COMPARE_HINT)  # type: ignore[unreachable]
        return NotImplemented

    def __ge__(self, other: Money) -> bool:
        if isinstance(other, Money):
            return self.amount_minor >= self._other_minor(other, "compare")
        self._refuse_number("compare", other, _COMPARE_HINT)  # type: ignore[unreachable]
        return NotImplemented

    # -- arithmetic ---------------------------------------------------------------------

    def _add_hint(self) -> str:
        return (
            "amounts add only to amounts of the same currency, as in "
            f"m + Money.of('1.00', {self.currency.code!r}); 0 + m is allowed so that sum() works"
        )

    def __add__(self, other: Money) -> Money:
        if isinstance(other, Money):
            # Inlined: this is the hot path of totals and ledgers.
            unit = self.currency
            if other.currency is not unit and other.currency != unit:
                raise self._mismatch("add", other)
            money: Money = _new(Money)
            _set_amount_minor(money, self.amount_minor + other.amount_minor)
            _set_currency(money, unit)
            return money
        self._refuse_number("add", other, self._add_hint())  # type: ignore[unreachable]
        return NotImplemented

    def __radd__(self, other: int) -> Money:
        # sum() starts from the int 0; that one number is allowed, on the left only.
        if type(other) is int and other == 0:
            return self
        self._refuse_number("add", other, self._add_hint())
        return NotImplemented

    def __sub__(self, other: Money) -> Money:
        if isinstance(other, Money):
            # Inlined: this is the hot path of totals and ledgers.
            unit = self.currency
            if other.currency is not unit and other.currency != unit:
                raise self._mismatch("subtract", other)
            money: Money = _new(Money)
            _set_amount_minor(money, self.amount_minor - other.amount_minor)
            _set_currency(money, unit)
            return money
        self._refuse_number("subtract", other, self._add_hint())  # type: ignore[unreachable]
        return NotImplemented

    def __rsub__(self, other: object) -> Money:
        self._refuse_number("subtract", other, self._add_hint())
        return NotImplemented

    def __neg__(self) -> Money:
        return _make(-self.amount_minor, self.currency)

    def __pos__(self) -> Money:
        return self

    def __abs__(self) -> Money:
        return self if self.amount_minor >= 0 else _make(-self.amount_minor, self.currency)

    def __mul__(self, other: int | Decimal | Fraction) -> Money:
        if type(other) is int:
            return _make(self.amount_minor * other, self.currency)
        if isinstance(other, Decimal | Fraction) or (
            isinstance(other, int) and not isinstance(other, bool)
        ):
            return self.multiply(other)
        checked: object = other
        if isinstance(checked, Money):
            raise UnsupportedTypeError(
                f"cannot multiply {self} by {checked}: money times money is not money"
            )
        hint = "multiply by an int, a decimal.Decimal or a fractions.Fraction"
        self._refuse_number("multiply", checked, hint)
        return NotImplemented

    __rmul__ = __mul__

    def _no_division(self, operator: str, other: object) -> NoReturn:
        raise UnsupportedTypeError(
            f"Money does not support {operator!r} (got {self} {operator} {_clip(other)}): "
            "dividing money needs a decision about the remainder; use m.split(n) for equal "
            "parts, m.allocate(ratios) for shares, or m.multiply(factor, rounding=...) "
            "to scale with explicit rounding"
        )

    def __truediv__(self, other: object) -> NoReturn:
        self._no_division("/", other)

    def __floordiv__(self, other: object) -> NoReturn:
        self._no_division("//", other)

    def multiply(self, factor: Factor, *, rounding: RoundingMode | None = None) -> Money:
        """Multiply by an exact *factor*, rounding only as told.

        *factor* is an int, a Decimal, a Fraction or a plain decimal str
        (``"1.5"``). Without *rounding*, the product must be a whole number of
        minor units; with it, the exact product is rounded once, the way
        :mod:`decimal` rounds (``decimal.ROUND_HALF_EVEN`` and so on).

        Raises:
            PrecisionError: the product is not a whole number of minor units
                and *rounding* is None.
            InvalidInputError: NaN, Infinity, a malformed str, an unknown mode.
            UnsupportedTypeError: a float, a bool or another type.
        """
        mode = None if rounding is None else check_rounding(rounding)
        numerator, denominator = _factor_ratio(factor, "Money.multiply()")
        product = self.amount_minor * numerator
        if product % denominator == 0:
            return _make(product // denominator, self.currency)
        unit = self.currency

        def describe() -> str:
            exact = _ratio_text(product, denominator * unit.minor_per_major)
            return f"{self} * {factor} = {exact} {unit.code}, which"

        fix = f"use m.multiply({_clip(factor)}, rounding=decimal.ROUND_HALF_EVEN) or another mode"
        return _make(
            _to_minor(product, denominator * unit.minor_per_major, unit, mode, describe, fix), unit
        )

    def convert(
        self, rate: Factor, to: Currency | str, *, rounding: RoundingMode | None = None
    ) -> Money:
        """Convert to currency *to* at *rate* (units of *to* per one unit of this currency).

        ``Money.of("10.00", "USD").convert("0.92", "EUR")`` is 9.20 EUR. The
        rate is exact (an int, Decimal, Fraction or plain decimal str), and the
        result is rounded once to *to*'s minor unit, only when *rounding* is
        given. Where rates come from is up to the caller.

        Raises:
            PrecisionError: the result needs rounding and *rounding* is None.
            InvalidInputError: a rate that is zero, negative, NaN or malformed.
            UnsupportedTypeError: a float rate.
        """
        mode = None if rounding is None else check_rounding(rounding)
        target = _to_currency(to)
        numerator, denominator = _factor_ratio(rate, "Money.convert()")
        if numerator <= 0:
            raise InvalidInputError(
                f"Money.convert() got the rate {_clip(rate)}; a rate is positive"
            )
        major_numerator = self.amount_minor * numerator
        major_denominator = denominator * self.currency.minor_per_major

        def describe() -> str:
            exact = _ratio_text(major_numerator, major_denominator)
            return f"{self} at rate {rate} = {exact} {target.code}, which"

        fix = "pass rounding=decimal.ROUND_HALF_EVEN (or another mode) to convert()"
        minor = _to_minor(major_numerator, major_denominator, target, mode, describe, fix)
        return _make(minor, target)

    def split(self, parts: int) -> tuple[Money, ...]:
        """Divide into *parts* amounts that differ by at most one minor unit.

        The parts add up to this amount exactly; the larger ones (in magnitude)
        come first: ``Money.of("10.00", "USD").split(3)`` is 3.34, 3.33, 3.33.

        Raises:
            InvalidInputError: *parts* is less than 1 or more than 10,000.
            UnsupportedTypeError: *parts* is not an int.
        """
        if not isinstance(parts, int) or isinstance(parts, bool):
            if isinstance(parts, float):
                raise _float_error("Money.split()", parts)
            raise UnsupportedTypeError(
                f"Money.split() takes an int number of parts, not {type(parts).__name__}"
            )
        if not 1 <= parts <= _MAX_PARTS:
            raise InvalidInputError(
                f"Money.split() makes 1 to {_MAX_PARTS:,} parts, not {_clip(parts)}"
            )
        unit = self.currency
        return tuple(_make(minor, unit) for minor in split_minor(self.amount_minor, int(parts)))

    def allocate(self, ratios: Iterable[int | Decimal | Fraction]) -> tuple[Money, ...]:
        """Divide in proportion to *ratios*, never losing or inventing a minor unit.

        ``Money.of("100.00", "USD").allocate([1, 1, 1])`` is 33.34, 33.33,
        33.33; ``allocate([70, 20, 10])`` is 70.00, 20.00, 10.00. Ratios are
        ints, Decimals or Fractions, none negative and not all zero. The
        largest-remainder method gives every part the floor of its exact
        share, then one more unit to the parts with the largest remainders
        (earlier parts win ties): the parts add up to this amount exactly, each
        is within one minor unit of its exact share, and a zero ratio gets
        zero. A negative amount gives the mirror image.

        Raises:
            InvalidInputError: no ratios, more than 10,000, a negative ratio,
                all ratios zero, NaN or Infinity.
            UnsupportedTypeError: a float, a bool or another type, or
                *ratios* is not iterable (a str is refused too).
        """
        if isinstance(ratios, str | bytes) or not isinstance(ratios, Iterable):
            raise UnsupportedTypeError(
                f"Money.allocate() takes a list of ratios, not {type(ratios).__name__}"
            )
        pairs = []
        for index, ratio in enumerate(ratios):
            if index >= _MAX_PARTS:
                raise InvalidInputError(f"Money.allocate() takes at most {_MAX_PARTS:,} ratios")
            pairs.append(_exact_ratio(ratio, f"Money.allocate() ratio {index}", str_too=False))
        if not pairs:
            raise InvalidInputError("Money.allocate() needs at least one ratio")
        for index, (numerator, _) in enumerate(pairs):
            if numerator < 0:
                raise InvalidInputError(
                    f"Money.allocate() ratio {index} is negative ({_ratio_text(*pairs[index])}); "
                    "ratios are shares, 0 or more"
                )
        common = math.lcm(*(denominator for _, denominator in pairs))
        weights = [numerator * (common // denominator) for numerator, denominator in pairs]
        if not any(weights):
            raise InvalidInputError(
                f"Money.allocate() got {len(weights)} ratios that are all zero; "
                "at least one must be positive"
            )
        unit = self.currency
        return tuple(_make(minor, unit) for minor in allocate_minor(self.amount_minor, weights))


_new = object.__new__
_set_amount_minor: Callable[[Money, int], None] = Money.__dict__["amount_minor"].__set__
_set_currency: Callable[[Money, Currency], None] = Money.__dict__["currency"].__set__


def _make(amount_minor: int, unit: Currency) -> Money:
    """Build a Money from values known to be valid, skipping the checks of ``__init__``."""
    money: Money = _new(Money)
    _set_amount_minor(money, amount_minor)
    _set_currency(money, unit)
    return money
