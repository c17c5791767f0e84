"""The transactional outbox: events written in the same transaction as the change they describe.

A unit of work appends an event to the outbox table beside its own writes; the
event becomes visible exactly when (and only if) the transaction commits. A
relay later claims unsent events in sequence order, publishes them to an event
log, and marks them sent (the Debezium/transactional-outbox pattern)::

    with db.unit_of_work() as uow:
        uow.repository(Order).add(order)
        outbox.append(uow, topic="orders", key=order.id, payload={...})

    claim = db.run(lambda uow: outbox.claim(uow, relay="relay-1")).value
    publish(claim.events)                       # at least once
    db.run(lambda uow: outbox.mark_sent(uow, claim))

Delivery is at least once with stable event ids: a claim is a lease, so two
relays never hold the same event at once, but a relay that stalls past its
lease (or crashes between publishing and marking sent) lets another relay
publish the same event again, with the same id. Consumers de-duplicate by id.
"""

from __future__ import annotations

import json
import os
import time
import uuid
from collections.abc import Mapping, Sequence
from typing import Any

import attrs
from sqlalchemy import (
    BigInteger,
    Column,
    Index,
    Integer,
    MetaData,
    String,
    Table,
    Text,
    and_,
    func,
    or_,
    select,
    update,
)
from sqlalchemy import delete as sa_delete
from sqlalchemy.orm import Session

from commercekit.errors import InvalidInputError, ReadOnlyError, UnsupportedTypeError
from commercekit.typing import WallClock

from ._exact import ExactId
from ._uow import UnitOfWork

__all__ = ["Outbox", "OutboxClaim", "OutboxEvent", "new_event_id"]

_MAX_ID = 64
_MAX_NAME = 200
_MAX_PAYLOAD = 1 << 20


def new_event_id(now_ms: int | None = None) -> str:
    """A new time-ordered event id (UUIDv7, RFC 9562) as its 36-character string.

    Ids made later sort later (to the millisecond), so they index well.
    """
    ms = int(time.time() * 1000) if now_ms is None else now_ms
    rand = int.from_bytes(os.urandom(10), "big")
    value = (ms & ((1 << 48) - 1)) << 80
    value |= 0x7 << 76  # version 7
    value |= ((rand >> 62) & 0xFFF) << 64  # rand_a
    value |= 0b10 << 62  # variant
    value |= rand & ((1 << 62) - 1)  # rand_b
    return str(uuid.UUID(int=value))


@attrs.frozen
class OutboxEvent:
    """One stored outbox event. ``payload`` is the decoded JSON object."""

    sequence: int
    event_id: str
    topic: str
    key: str | None
    payload: Mapping[str, Any]
    created_at_ms: int


@attrs.frozen
class OutboxClaim:
    """Events one relay holds until ``until_ms``; pass it back to :meth:`Outbox.mark_sent`."""

    claim_id: str
    relay: str
    until_ms: int
    events: tuple[OutboxEvent, ...]


def _session(work: UnitOfWork | Session, *, writes: bool) -> Session:
    if isinstance(work, UnitOfWork):
        if writes and work.read_only:
            raise ReadOnlyError(
                "the outbox is written in a unit of work opened with read_only=False"
            )
        return work.session
    if isinstance(work, Session):
        return work
    raise UnsupportedTypeError(
        f"the outbox works in a UnitOfWork or a SQLAlchemy Session, not {type(work).__name__}"
    )


def _name(what: str, value: object, *, optional: bool = False) -> str | None:
    if value is None and optional:
        return None
    if not isinstance(value, str):
        raise UnsupportedTypeError(f"an outbox {what} is a str, got {type(value).__name__}")
    most = _MAX_ID if what == "event id" else _MAX_NAME
    if not value or len(value) > most:
        raise InvalidInputError(f"an outbox {what} has 1 to {most} characters, got {value!r}")
    return value


class Outbox:
    """The outbox table (in *metadata*, named *table_name*) and its operations.

    Create the table with ``db.create_all(metadata)`` (or an Alembic migration
    of :attr:`table`). Every operation runs in the caller's unit of work or
    session, so an append commits or rolls back with the caller's writes.

    Appending an event id that is stored already is a no-op (``append``
    returns False): a unit of work retried after an unknown commit outcome
    may append the same event again safely.
    """

    def __init__(
        self,
        metadata: MetaData | None = None,
        *,
        table_name: str = "commercekit_outbox",
        clock: WallClock = time.time,
    ) -> None:
        self.metadata = metadata if metadata is not None else MetaData()
        self._clock = clock
        self._inserts: dict[str, Any] = {}
        self.table = Table(
            table_name,
            self.metadata,
            Column(
                "sequence",
                BigInteger().with_variant(Integer, "sqlite"),
                primary_key=True,
                autoincrement=True,
            ),
            Column("event_id", ExactId(_MAX_ID), nullable=False, unique=True),
            Column("topic", String(_MAX_NAME), nullable=False),
            Column("key", String(_MAX_NAME), nullable=True),
            Column(
                "payload",
                Text().with_variant(_longtext(), "mysql", "mariadb"),
                nullable=False,
            ),
            Column("created_at_ms", BigInteger, nullable=False),
            Column("claim_id", String(36), nullable=True),
            Column("claimed_until_ms", BigInteger, nullable=True),
            Column("attempts", Integer, nullable=False, default=0),
            Column("sent_at_ms", BigInteger, nullable=True),
            Index(f"ix_{table_name}_unsent", "sent_at_ms", "sequence"),
        )

    def _now_ms(self) -> int:
        return int(self._clock() * 1000)

    # -- writers --------------------------------------------------------------

    def append(
        self,
        work: UnitOfWork | Session,
        *,
        topic: str,
        payload: Mapping[str, Any],
        key: str | None = None,
        event_id: str | None = None,
    ) -> bool:
        """Append one event in *work*'s transaction; False if *event_id* is stored already.

        *payload* is a JSON object (str keys; str, int, bool, None, lists and
        objects; floats are refused, so money never travels as one). The event
        id defaults to a new UUIDv7.
        """
        session = _session(work, writes=True)
        _name("topic", topic)
        _name("key", key, optional=True)
        event_id = new_event_id() if event_id is None else event_id
        _name("event id", event_id)
        if not isinstance(payload, Mapping):
            raise UnsupportedTypeError(
                f"an outbox payload is a mapping, got {type(payload).__name__}"
            )
        text = _encode(payload)
        row = {
            "event_id": event_id,
            "topic": topic,
            "key": key,
            "payload": text,
            "created_at_ms": self._now_ms(),
            "attempts": 0,
        }
        conn = session.connection()
        dialect = conn.dialect.name
        stmt = self._inserts.get(dialect)
        if stmt is None:
            stmt = self._inserts[dialect] = self._insert_for(dialect)
        if dialect in ("postgresql", "sqlite"):
            return conn.execute(stmt, row).first() is not None
        result: Any = conn.execute(stmt, row)
        return bool(result.rowcount == 1)

    def _insert_for(self, dialect: str) -> Any:
        """The append statement of *dialect*, built once (it is on the checkout path)."""
        if dialect in ("postgresql", "sqlite"):
            from sqlalchemy.dialects import postgresql, sqlite  # only the dialect in use

            insert = postgresql.insert if dialect == "postgresql" else sqlite.insert
            return (
                insert(self.table)
                .on_conflict_do_nothing(index_elements=["event_id"])
                .returning(self.table.c.sequence)
            )
        # MySQL/MariaDB: IGNORE would also hide truncations, but every field was checked above.
        plain = self.table.insert()
        return plain.prefix_with("IGNORE") if dialect in ("mysql", "mariadb") else plain

    # -- relays ---------------------------------------------------------------

    def claim(
        self,
        work: UnitOfWork | Session,
        *,
        relay: str,
        limit: int = 100,
        lease_s: float = 30.0,
    ) -> OutboxClaim:
        """Lease up to *limit* unsent events to *relay* for *lease_s*; commit before publishing.

        Events come in sequence order; those another relay holds under a live
        lease are skipped (``FOR UPDATE SKIP LOCKED`` where the engine has it).
        """
        session = _session(work, writes=True)
        _name("relay name", relay)
        if isinstance(limit, bool) or not isinstance(limit, int) or limit < 1:
            raise InvalidInputError(f"a claim limit is a positive int, got {limit!r}")
        if not 0 < lease_s < 86_400 * 7:
            raise InvalidInputError(f"a lease is 0 to 7 days long, got {lease_s!r} s")
        t = self.table
        now = self._now_ms()
        claimable = and_(
            t.c.sent_at_ms.is_(None),
            or_(t.c.claimed_until_ms.is_(None), t.c.claimed_until_ms < now),
        )
        candidates = list(
            session.scalars(
                select(t.c.sequence)
                .where(claimable)
                .order_by(t.c.sequence)
                .limit(limit)
                .with_for_update(skip_locked=True)
            )
        )
        claim_id = str(uuid.uuid4())
        until = now + max(1, int(lease_s * 1000))
        if candidates:
            # The condition is checked again on each locked row, so two relays that
            # read the same candidates (no SKIP LOCKED) still claim disjoint sets.
            session.execute(
                update(t)
                .where(t.c.sequence.in_(candidates), claimable)
                .values(claim_id=claim_id, claimed_until_ms=until, attempts=t.c.attempts + 1)
            )
        rows = session.execute(
            select(t.c.sequence, t.c.event_id, t.c.topic, t.c.key, t.c.payload, t.c.created_at_ms)
            .where(t.c.claim_id == claim_id)
            .order_by(t.c.sequence)
        ).all()
        events = tuple(OutboxEvent(r[0], r[1], r[2], r[3], json.loads(r[4]), r[5]) for r in rows)
        return OutboxClaim(claim_id, relay, until, events)

    def mark_sent(self, work: UnitOfWork | Session, claim: OutboxClaim) -> int:
        """Mark *claim*'s events sent; returns how many were still held by this claim.

        Fewer than ``len(claim.events)`` means the lease ran out and another
        relay took some over: they may be published twice, with the same ids.
        """
        session = _session(work, writes=True)
        if not claim.events:
            return 0
        t = self.table
        result: Any = session.execute(
            update(t)
            .where(t.c.claim_id == claim.claim_id, t.c.sent_at_ms.is_(None))
            .values(sent_at_ms=self._now_ms(), claimed_until_ms=None)
        )
        return int(result.rowcount)

    def release(self, work: UnitOfWork | Session, claim: OutboxClaim) -> int:
        """Give *claim*'s unsent events back at once (after a failed publish)."""
        session = _session(work, writes=True)
        t = self.table
        result: Any = session.execute(
            update(t)
            .where(t.c.claim_id == claim.claim_id, t.c.sent_at_ms.is_(None))
            .values(claim_id=None, claimed_until_ms=None)
        )
        return int(result.rowcount)

    # -- reading and housekeeping -----------------------------------------------

    def pending(self, work: UnitOfWork | Session) -> int:
        """How many events are not marked sent yet (the relay's backlog)."""
        session = _session(work, writes=False)
        t = self.table
        return int(
            session.scalar(select(func.count()).select_from(t).where(t.c.sent_at_ms.is_(None))) or 0
        )

    def events(
        self, work: UnitOfWork | Session, *, after: int = 0, limit: int = 1000
    ) -> Sequence[OutboxEvent]:
        """Stored events (sent or not) with a sequence above *after*, in sequence order."""
        session = _session(work, writes=False)
        t = self.table
        rows = session.execute(
            select(t.c.sequence, t.c.event_id, t.c.topic, t.c.key, t.c.payload, t.c.created_at_ms)
            .where(t.c.sequence > after)
            .order_by(t.c.sequence)
            .limit(limit)
        ).all()
        return [OutboxEvent(r[0], r[1], r[2], r[3], json.loads(r[4]), r[5]) for r in rows]

    def purge_sent(self, work: UnitOfWork | Session, *, older_than_s: float) -> int:
        """Delete events marked sent more than *older_than_s* ago; returns how many."""
        session = _session(work, writes=True)
        t = self.table
        cutoff = self._now_ms() - int(older_than_s * 1000)
        result: Any = session.execute(
            sa_delete(t).where(t.c.sent_at_ms.is_not(None), t.c.sent_at_ms < cutoff)
        )
        return int(result.rowcount)


def _reject_float(value: Any) -> None:
    if isinstance(value, float):
        raise UnsupportedTypeError(
            f"an outbox payload holds no floats (got {value!r}): "
            "send money as integer minor units and a currency"
        )
    if isinstance(value, Mapping):
        for k, v in value.items():
            if not isinstance(k, str):
                raise UnsupportedTypeError(f"payload keys are str, got {k!r}")
            _reject_float(v)
    elif isinstance(value, list | tuple):
        for v in value:
            _reject_float(v)


def _encode(payload: Mapping[str, Any]) -> str:
    _reject_float(payload)
    try:
        text = json.dumps(payload, separators=(",", ":"), sort_keys=True, allow_nan=False)
    except (TypeError, ValueError) as exc:
        raise UnsupportedTypeError(f"an outbox payload must be plain JSON: {exc}") from exc
    if len(text) > _MAX_PAYLOAD:
        raise InvalidInputError(
            f"an outbox payload is at most {_MAX_PAYLOAD} bytes of JSON, got {len(text)}"
        )
    return text


def _longtext() -> Any:
    """MySQL's LONGTEXT (the dialect module loads when an outbox table is defined)."""
    from sqlalchemy.dialects import mysql

    return mysql.LONGTEXT()
