"""A strict parser of Structured Field Dictionaries (RFC 8941 4.2.2), for ``CDN-Cache-Control``.

RFC 9213 2.1: a targeted cache-control field is a Dictionary, and one that
fails to parse is ignored as a whole. Values come back as Python values:
``int`` (Integer), ``float`` (Decimal), :class:`SfString`, :class:`SfToken`,
``bytes`` (Byte Sequence), ``bool``, or a ``list`` for an Inner List; member
parameters are checked and dropped. The parser never raises: None is failure.
"""

from __future__ import annotations

import base64
import binascii
import re

__all__ = ["SfString", "SfToken", "parse_dictionary"]


class SfString(str):
    """A String item (``"..."``)."""

    __slots__ = ()


class SfToken(str):
    """A Token item (``foo/bar``)."""

    __slots__ = ()


class _Fail(Exception):
    pass


_KEY = re.compile(r"[a-z*][a-z0-9_\-.*]*")
_TOKEN = re.compile(r"[A-Za-z*][!#$%&'*+\-.^_`|~0-9A-Za-z:/]*")
_NUMBER = re.compile(r"-?[0-9]+(?:\.[0-9]+)?")
_BASE64 = re.compile(r"[A-Za-z0-9+/=]*")


class _Parser:
    __slots__ = ("i", "s")

    def __init__(self, text: str) -> None:
        self.s = text
        self.i = 0

    def peek(self) -> str:
        return self.s[self.i] if self.i < len(self.s) else ""

    def skip(self, chars: str) -> None:
        while self.i < len(self.s) and self.s[self.i] in chars:
            self.i += 1

    def key(self) -> str:
        m = _KEY.match(self.s, self.i)
        if m is None:
            raise _Fail
        self.i = m.end()
        return m.group()

    def bare_item(self) -> object:
        c = self.peek()
        if c == "-" or c.isdigit():
            return self.number()
        if c == '"':
            return self.string()
        if c == ":":
            return self.binary()
        if c == "?":
            value = self.s[self.i + 1 : self.i + 2]
            if value not in ("0", "1"):
                raise _Fail
            self.i += 2
            return value == "1"
        m = _TOKEN.match(self.s, self.i)
        if m is None:
            raise _Fail
        self.i = m.end()
        return SfToken(m.group())

    def number(self) -> int | float:
        m = _NUMBER.match(self.s, self.i)
        if m is None or not m.group().isascii():
            raise _Fail
        text = m.group()
        whole, dot, frac = text.lstrip("-").partition(".")
        if (dot and (len(whole) > 12 or len(frac) > 3)) or (not dot and len(whole) > 15):
            raise _Fail
        self.i = m.end()
        return float(text) if dot else int(text)

    def string(self) -> SfString:
        out: list[str] = []
        self.i += 1
        while self.i < len(self.s):
            c = self.s[self.i]
            self.i += 1
            if c == "\\":
                nxt = self.s[self.i : self.i + 1]
                if nxt not in ('"', "\\"):
                    raise _Fail
                out.append(nxt)
                self.i += 1
            elif c == '"':
                return SfString("".join(out))
            elif not " " <= c <= "~":
                raise _Fail
            else:
                out.append(c)
        raise _Fail

    def binary(self) -> bytes:
        end = self.s.find(":", self.i + 1)
        if end < 0:
            raise _Fail
        text = self.s[self.i + 1 : end]
        if _BASE64.fullmatch(text) is None:
            raise _Fail
        self.i = end + 1
        try:
            return base64.b64decode(text + "=" * (-len(text) % 4))
        except (binascii.Error, ValueError) as exc:
            raise _Fail from exc

    def parameters(self) -> None:
        while self.peek() == ";":
            self.i += 1
            self.skip(" ")
            self.key()
            if self.peek() == "=":
                self.i += 1
                self.bare_item()

    def item_or_inner_list(self) -> object:
        if self.peek() != "(":
            value = self.bare_item()
            self.parameters()
            return value
        self.i += 1
        items: list[object] = []
        while True:
            self.skip(" ")
            if self.peek() == ")":
                self.i += 1
                self.parameters()
                return items
            items.append(self.bare_item())
            self.parameters()
            if self.peek() not in (" ", ")"):
                raise _Fail

    def dictionary(self) -> dict[str, object]:
        out: dict[str, object] = {}
        while self.i < len(self.s):
            name = self.key()
            if self.peek() == "=":
                self.i += 1
                value = self.item_or_inner_list()
            else:
                value = True
                self.parameters()
            out.pop(name, None)
            out[name] = value  # a key seen again: the last value counts
            self.skip(" \t")
            if self.i >= len(self.s):
                return out
            if self.peek() != ",":
                raise _Fail
            self.i += 1
            self.skip(" \t")
            if self.i >= len(self.s):
                raise _Fail  # a trailing comma
        return out


def parse_dictionary(field: str) -> dict[str, object] | None:
    """Return the Dictionary in *field*, or None if it is not one (RFC 8941 4.2)."""
    text = field.strip(" ")
    if not text.isascii():
        return None
    try:
        return _Parser(text).dictionary()
    except _Fail:
        return None
