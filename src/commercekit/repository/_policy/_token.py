"""``ConsistencyToken``: what a caller has written, as a plain string it can keep anywhere.

A token maps each replication group (``main``, or one per shard) to the
position of the caller's latest commit there. It prints as
``ck1;main=lsn:0/3000148;s2=gtid:0-1-57``, parses back, and merges, so a web
app keeps one token per visitor in a session cookie and passes it to every
read; any app server honours it. A forged token cannot return wrong data: at
worst its reads wait ``token_wait_s`` and go to the primary.
"""

from __future__ import annotations

import re
from collections.abc import Mapping

import attrs

from commercekit.errors import InvalidInputError

from ._position import (
    CommitTime,
    GtidPosition,
    Lsn,
    Position,
    format_position,
    later,
    parse_position,
)

__all__ = ["GROUP_NAME", "ConsistencyToken", "TokenLike", "as_token"]

_VERSION = "ck1"
GROUP_NAME = re.compile(r"[A-Za-z0-9_.\-]{1,64}")
"""A group name, matched whole (``fullmatch``: ``$`` would let a final newline in)."""
_TEXT = re.compile(r"[\x21-\x7e]*")
"""Printable ASCII without spaces: the only characters a printed token has."""
_MAX_TEXT = 4096


def _freeze(value: Mapping[str, Position]) -> tuple[tuple[str, Position], ...]:
    try:
        items = dict(value).items()
    except (TypeError, ValueError) as exc:
        raise InvalidInputError(
            "a consistency token's positions map group names to positions"
        ) from exc
    for group, position in items:
        _check_group(group)
        if not isinstance(position, Lsn | GtidPosition | CommitTime):
            raise InvalidInputError(
                f"a consistency token maps {group!r} to a position (Lsn, GtidPosition or "
                f"CommitTime), not a {type(position).__name__}"
            )
    return tuple(sorted(items))


def _check_group(group: object) -> None:
    if not isinstance(group, str) or GROUP_NAME.fullmatch(group) is None:
        shown = repr(group[:70]) if isinstance(group, str) else f"a {type(group).__name__}"
        raise InvalidInputError(f"a group name is 1-64 of [A-Za-z0-9_.-], got {shown}")


@attrs.frozen
class ConsistencyToken:
    """Per replication group, the position a read must see (immutable)."""

    positions: tuple[tuple[str, Position], ...] = attrs.field(converter=_freeze, factory=tuple)

    @classmethod
    def of(cls, group: str, position: Position) -> ConsistencyToken:
        """A token for one position in one group."""
        _check_group(group)
        return cls({group: position})

    @classmethod
    def parse(cls, text: str) -> ConsistencyToken:
        """Read a token printed by ``str(token)``; an empty string is the empty token."""
        if not isinstance(text, str):
            raise InvalidInputError(
                f"a consistency token is a string (its printed form), not {type(text).__name__}"
            )
        if len(text) > _MAX_TEXT:
            raise InvalidInputError(f"a consistency token is at most {_MAX_TEXT} characters")
        if not text:
            return cls()
        if _TEXT.fullmatch(text) is None:
            raise InvalidInputError(
                f"a consistency token is printable ASCII without spaces: {text[:40]!r}"
            )
        version, *items = text.split(";")
        if version != _VERSION:
            raise InvalidInputError(f"not a commercekit consistency token: {text[:40]!r}")
        positions: dict[str, Position] = {}
        for item in items:
            group, sep, rest = item.partition("=")
            if not sep or GROUP_NAME.fullmatch(group) is None or group in positions:
                raise InvalidInputError(f"bad group in consistency token: {item[:40]!r}")
            positions[group] = parse_position(rest)
        return cls(positions)

    def get(self, group: str) -> Position | None:
        """The position for *group*, or None when the token says nothing about it."""
        for name, position in self.positions:
            if name == group:
                return position
        return None

    def merge(self, other: ConsistencyToken | None) -> ConsistencyToken:
        """The token that covers both: per group, the later position."""
        if other is None:
            return self
        if not isinstance(other, ConsistencyToken):
            raise InvalidInputError(
                f"merge takes a ConsistencyToken or None, not {type(other).__name__}: "
                "parse a printed token with ConsistencyToken.parse"
            )
        if not other.positions:
            return self
        merged = dict(self.positions)
        for group, position in other.positions:
            merged[group] = later(merged[group], position) if group in merged else position
        return ConsistencyToken(merged)

    def __bool__(self) -> bool:
        return bool(self.positions)

    def __str__(self) -> str:
        if not self.positions:
            return ""
        body = ";".join(f"{group}={format_position(pos)}" for group, pos in self.positions)
        return f"{_VERSION};{body}"


TokenLike = ConsistencyToken | str | None
"""What a read accepts as its token: a token, its string form, or nothing."""


def as_token(token: TokenLike) -> ConsistencyToken | None:
    """Turn a :data:`TokenLike` into a token (None and "" mean no token)."""
    if token is None or isinstance(token, ConsistencyToken):
        return token or None
    if not isinstance(token, str):
        raise InvalidInputError(
            "a consistency token is a ConsistencyToken, its printed form (a string) or None, "
            f"not {type(token).__name__}"
        )
    parsed = ConsistencyToken.parse(token)
    return parsed or None
