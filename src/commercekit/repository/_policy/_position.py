"""Replication positions: what a primary has committed and what a replica has replayed.

Three kinds, each a frozen value with a text form that round-trips:

* :class:`Lsn`, PostgreSQL's WAL location (``lsn:16/B374D848``), from
  ``pg_current_wal_lsn()`` on the primary and ``pg_last_wal_replay_lsn()`` on
  a standby;
* :class:`GtidPosition`, MariaDB's GTID position, one ``domain-server-seq``
  triple per replication domain (``gtid:0-1-42,1-2-7``), from ``@@last_gtid``
  on the primary and ``@@gtid_slave_pos`` on a replica;
* :class:`CommitTime`, the wall-clock second of a commit (``ts:1712345678.25``),
  the fallback for engines that cannot report a position.

Everything here is pure: parsing, printing, comparing, merging.
"""

from __future__ import annotations

import math
import re
from collections.abc import Iterable

import attrs

from commercekit.errors import InvalidInputError

__all__ = [
    "CommitTime",
    "GtidPosition",
    "Lsn",
    "Position",
    "covers",
    "format_position",
    "later",
    "parse_position",
]

# Matched whole (``fullmatch``) and ASCII only: ``$`` lets a final newline in,
# and ``\d`` takes every script's digits.
_LSN = re.compile(r"([0-9A-Fa-f]{1,8})/([0-9A-Fa-f]{1,8})")
_GTID = re.compile(r"([0-9]{1,10})-([0-9]{1,10})-([0-9]{1,20})")
_SECONDS = re.compile(r"[0-9]{1,20}(?:\.[0-9]{1,20})?(?:[eE][+-]?[0-9]{1,3})?")
_MAX_DOMAINS = 64


def _shown(value: object) -> str:
    """*value* for an error message: short, and never a repr that can fail or run long."""
    if isinstance(value, str):
        return repr(value[:40])
    if isinstance(value, int) and not isinstance(value, bool) and value.bit_length() > 64:
        return f"an integer of {value.bit_length()} bits"
    if isinstance(value, int | float):
        return repr(value)
    return f"a {type(value).__name__}"


@attrs.frozen(order=True)
class Lsn:
    """A PostgreSQL WAL location as one 64-bit integer; larger means later."""

    value: int = attrs.field()

    @value.validator
    def _check(self, _attribute: object, value: int) -> None:
        if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value < 2**64:
            raise InvalidInputError(f"an LSN is a 64-bit unsigned integer, got {_shown(value)}")

    @classmethod
    def parse(cls, text: str) -> Lsn:
        """Read PostgreSQL's ``X/Y`` form (two hexadecimal halves)."""
        match = _LSN.fullmatch(text) if isinstance(text, str) else None
        if match is None:
            raise InvalidInputError(f"not a PostgreSQL LSN (expected 'X/Y' in hex): {_shown(text)}")
        return cls((int(match[1], 16) << 32) | int(match[2], 16))

    def __str__(self) -> str:
        return f"{self.value >> 32:X}/{self.value & 0xFFFFFFFF:X}"


def _sorted_domains(value: Iterable[tuple[int, int, int]]) -> tuple[tuple[int, int, int], ...]:
    try:
        triples = tuple(tuple(t) for t in value)
    except TypeError as exc:
        raise InvalidInputError(
            "a GTID position is (domain, server_id, seq_no) triples of integers"
        ) from exc
    for triple in triples[: _MAX_DOMAINS + 1]:
        if len(triple) != 3 or not all(
            isinstance(n, int) and not isinstance(n, bool) and 0 <= n < 2**64 for n in triple
        ):
            raise InvalidInputError(
                "a GTID position is (domain, server_id, seq_no) triples of integers "
                f"in 0..2**64-1, got {len(triple)} items: "
                + ", ".join(_shown(n) for n in triple[:3])
            )
    return tuple(sorted(triples))  # type: ignore[arg-type]


@attrs.frozen
class GtidPosition:
    """A MariaDB GTID position: per replication domain, the last ``(server_id, seq_no)``.

    Sequence numbers grow within a domain, so one position covers another when
    every domain of the other is present with a sequence number at least as high.
    """

    domains: tuple[tuple[int, int, int], ...] = attrs.field(converter=_sorted_domains)

    @domains.validator
    def _check(self, _attribute: object, value: tuple[tuple[int, int, int], ...]) -> None:
        seen = [domain for domain, _, _ in value]
        if len(seen) != len(set(seen)):
            raise InvalidInputError(f"a GTID position names a domain twice: {sorted(seen)[:8]}")
        if len(seen) > _MAX_DOMAINS:
            raise InvalidInputError(f"a GTID position has more than {_MAX_DOMAINS} domains")

    @classmethod
    def parse(cls, text: str) -> GtidPosition:
        """Read MariaDB's ``domain-server-seq[,domain-server-seq...]`` form."""
        if not isinstance(text, str):
            raise InvalidInputError(f"a GTID position is text, not {type(text).__name__}")
        parts = [part.strip() for part in text.strip().split(",") if part.strip()]
        triples = []
        for part in parts[: _MAX_DOMAINS + 1]:
            match = _GTID.fullmatch(part)
            if match is None:
                raise InvalidInputError(f"not a MariaDB GTID (expected 'd-s-n'): {part[:40]!r}")
            triples.append((int(match[1]), int(match[2]), int(match[3])))
        return cls(tuple(triples))

    def seq_by_domain(self) -> dict[int, int]:
        """Map each domain to its sequence number."""
        return {domain: seq for domain, _, seq in self.domains}

    def __str__(self) -> str:
        return ",".join(f"{d}-{s}-{n}" for d, s, n in self.domains)


@attrs.frozen(order=True)
class CommitTime:
    """The wall-clock time of a commit, in seconds since the epoch (the fallback token)."""

    at_s: float = attrs.field()

    @at_s.validator
    def _check(self, _attribute: object, value: float) -> None:
        if (
            isinstance(value, bool)
            or not isinstance(value, int | float)
            or not math.isfinite(value)
            or value < 0
        ):
            raise InvalidInputError(f"a commit time is a finite, positive number: {_shown(value)}")

    def __str__(self) -> str:
        return repr(self.at_s)


Position = Lsn | GtidPosition | CommitTime
"""Any of the three kinds of replication position."""

_PREFIX: dict[type[Lsn] | type[GtidPosition] | type[CommitTime], str] = {
    Lsn: "lsn",
    GtidPosition: "gtid",
    CommitTime: "ts",
}


def format_position(position: Position) -> str:
    """Print *position* with its kind prefix (``lsn:``, ``gtid:`` or ``ts:``)."""
    return f"{_PREFIX[type(position)]}:{position}"


def parse_position(text: str) -> Position:
    """Read a position printed by :func:`format_position`."""
    if not isinstance(text, str):
        raise InvalidInputError(f"a position is text, not {type(text).__name__}")
    kind, sep, rest = text.partition(":")
    if not sep:
        raise InvalidInputError(f"a position starts with 'lsn:', 'gtid:' or 'ts:': {text[:40]!r}")
    if kind == "lsn":
        return Lsn.parse(rest)
    if kind == "gtid":
        return GtidPosition.parse(rest)
    if kind == "ts":
        if _SECONDS.fullmatch(rest) is None:
            raise InvalidInputError(f"not a commit time (seconds since the epoch): {rest[:40]!r}")
        return CommitTime(float(rest))
    raise InvalidInputError(f"unknown position kind {kind[:20]!r} (lsn, gtid or ts)")


def covers(replayed: Position, wanted: Position) -> bool:
    """Say whether a node at *replayed* has everything up to *wanted*.

    Positions of different kinds never cover each other, and a commit time is
    never covered by a replica (nothing proves a replica has it): a read that
    carries one is decided by the time window instead.
    """
    if isinstance(replayed, Lsn) and isinstance(wanted, Lsn):
        return replayed.value >= wanted.value
    if isinstance(replayed, GtidPosition) and isinstance(wanted, GtidPosition):
        have = replayed.seq_by_domain()
        return all(have.get(domain, -1) >= seq for domain, _, seq in wanted.domains)
    return False


def later(a: Position, b: Position) -> Position:
    """Merge two positions of one group into the one that covers both.

    Different kinds (a group that moved from one engine to another) keep *b*,
    the newer one.
    """
    if isinstance(a, Lsn) and isinstance(b, Lsn):
        return a if a.value >= b.value else b
    if isinstance(a, CommitTime) and isinstance(b, CommitTime):
        return a if a.at_s >= b.at_s else b
    if isinstance(a, GtidPosition) and isinstance(b, GtidPosition):
        merged: dict[int, tuple[int, int, int]] = {d: (d, s, n) for d, s, n in a.domains}
        for d, s, n in b.domains:
            if d not in merged or merged[d][2] < n:
                merged[d] = (d, s, n)
        return GtidPosition(tuple(merged.values()))
    return b
