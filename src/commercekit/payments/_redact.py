"""Redaction of provider text: card numbers and security codes out, before any message or log.

A provider (or a proxy in front of it) may echo the request in its error
text, and the request carries the card. Every piece of text that comes from a
provider passes through :func:`redact_provider_text` before it reaches an
exception message, a log record or a stored result. It removes:

* card numbers: any run of 12 to 19 digits that passes the Luhn check, with or
  without separators between the digits (spaces, tabs, ``-``, ``.``, ``+``,
  ``%20``); a run of more than 19 digits that holds such a number anywhere; and
  the digits at the end of a text cut to length (the cut may have split a number);
* the value of any card-number or security-code field in JSON, form, query or
  prose form: ``"cvc": "123"``, ``cvc=123``, ``card[cvc]=123``,
  ``card%5Bcvc%5D=123``, ``cvv2: 123``, ``security code 123``,
  ``"securityCode":"123"``, ``card[number]=...``, ``"cardNumber": "..."``;
* control characters, line separators and lone surrogates (escaped, so a
  provider cannot forge log lines or break a log handler's encoding).

The text is cut to *limit* characters; the work is linear in *limit*, not in
the size of what the provider sent.
"""

from __future__ import annotations

import re
from typing import Final

from commercekit.payments._card import luhn_valid

__all__ = ["CARD_PLACEHOLDER", "CODE_PLACEHOLDER", "redact_provider_text"]

CARD_PLACEHOLDER: Final = "[redacted card number]"
CODE_PLACEHOLDER: Final = "[redacted]"

_MIN_DIGITS: Final = 12
_MAX_DIGITS: Final = 19
_CUT_DIGITS: Final = 7  # a cut run with this many digits may be the head of a number
_MARGIN: Final = 64  # read this far past the limit, so a number at the cut is seen whole
_FIELD_VALUE: Final = 32

_SEP = r"(?:[ \t\r\n\u00a0.+\-]|%20)"
_RUN: Final = re.compile(rf"\d(?:{_SEP}?\d)*")

_CODE_KEY = (
    r"cvc2?|cvv2?|cvn|csc|cvd"
    r"|security[ _-]?code|card[ _-]?verification(?:[ _-]?(?:code|value))?"
)
_NUMBER_KEY = r"number|card[ _-]?number|pan|account[ _-]?number"
_OPEN = r"(?:\[|%5B)"
_CLOSE = r"(?:\]|%5D)"
_QUOTE = r"\\?[\"']?"
_ASSIGN = rf"{_QUOTE}\s*(?::|=|%3A|%3D)\s*{_QUOTE}"
_CODE_FIELD: Final = re.compile(
    rf"(?<![A-Za-z0-9_])(?P<key>(?:card{_OPEN})?(?:{_CODE_KEY}){_CLOSE}?)(?![A-Za-z0-9_])"
    rf"(?P<sep>{_ASSIGN}|\s+(?:is\s+|of\s+|was\s+)?(?=\d))"
    rf"(?P<value>[^\s\"'&,;{{}}\[\]()\\<>]{{1,{_FIELD_VALUE}}})",
    re.IGNORECASE,
)
_NUMBER_FIELD: Final = re.compile(
    rf"(?<![A-Za-z0-9_])(?P<key>(?:card{_OPEN})?(?:{_NUMBER_KEY}){_CLOSE}?)(?![A-Za-z0-9_])"
    rf"(?P<sep>{_ASSIGN})"
    rf"(?P<value>\d(?:{_SEP}?\d){{7,}})",
    re.IGNORECASE,
)
_UNSAFE: Final = re.compile("[\x00-\x1f\x7f-\x9f\u2028\u2029\ud800-\udfff]")


def _groups(run: str) -> list[str]:
    """The digit groups of *run*, as ASCII (a Unicode digit counts as its value)."""
    groups = [""]
    for char in run:
        if char.isdecimal():
            groups[-1] += str(int(char))
        elif groups[-1]:
            groups.append("")
    return [group for group in groups if group]


def _has_window(digits: str) -> bool:
    """Whether some 12 to 19 digits in a row of *digits* pass the Luhn check."""
    count = len(digits)
    return any(
        luhn_valid(digits[start : start + width])
        for width in range(_MIN_DIGITS, min(_MAX_DIGITS, count) + 1)
        for start in range(count - width + 1)
    )


def _holds_card(groups: list[str]) -> bool:
    """Whether the groups hold a card number.

    A number is whole groups in a row with 12 to 19 digits that pass the
    Luhn check ("5 4242 4242 4242 4242" holds one after the "5"), or any 12 to
    19 digits of a group longer than 19.
    """
    for first in range(len(groups)):
        digits = ""
        for group in groups[first:]:
            digits += group
            if len(digits) > _MAX_DIGITS:
                break
            if len(digits) >= _MIN_DIGITS and luhn_valid(digits):
                return True
    return any(len(group) > _MAX_DIGITS and _has_window(group) for group in groups)


def _as_text(value: object) -> str:
    if isinstance(value, str):
        return value
    if isinstance(value, bytes | bytearray):
        return bytes(value[:4096]).decode("utf-8", "replace")
    try:
        return str(value)
    except Exception:  # an int past the digit limit, a broken __str__: say what it was
        return f"<{type(value).__name__}>"


def _escape(match: re.Match[str]) -> str:
    code = ord(match.group())
    return f"\\x{code:02x}" if code < 0x100 else f"\\u{code:04x}"


def redact_provider_text(text: object, *, limit: int = 200) -> str:
    """*text* from a provider, safe for a message or a log: see the module docstring.

    *text* may be of any type (a provider's JSON can put a number, a list or
    null where a message belongs); the answer is a ``str`` of at most *limit*
    characters, ending in ``...`` when it was cut.
    """
    raw = _as_text(text)
    window = raw[: limit + _MARGIN]
    cut = len(raw) > len(window)

    def field(match: re.Match[str]) -> str:
        return match.group("key") + match.group("sep") + CODE_PLACEHOLDER

    redacted = _CODE_FIELD.sub(field, window)
    redacted = _NUMBER_FIELD.sub(field, redacted)
    end = len(redacted)

    def card(match: re.Match[str]) -> str:
        groups = _groups(match.group())
        count = sum(map(len, groups))
        if count < _CUT_DIGITS or (count < _MIN_DIGITS and not (cut and match.end() == end)):
            return match.group()
        at_cut = cut and match.end() == end
        return CARD_PLACEHOLDER if at_cut or _holds_card(groups) else match.group()

    redacted = _RUN.sub(card, redacted)
    redacted = _UNSAFE.sub(_escape, redacted)
    if cut or len(redacted) > limit:
        return redacted[: max(limit - 3, 0)] + "..."
    return redacted
