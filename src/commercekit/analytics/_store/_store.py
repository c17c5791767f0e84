"""``AnalyticsStore``: applies a batch of deliveries to the aggregates in one transaction.

The batch's event ids go into ``processed`` in the same transaction as the
aggregate updates, and ids already there are skipped: a redelivered event
(after a crash, a lost ack, a relay that published twice) changes nothing.
That makes the effect exactly once over an at-least-once log. A message that
cannot be read is parked in ``dead_letters`` with its reason, in the same
transaction, and counts as processed.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Sequence
from typing import Any, TypeVar

import attrs
from sqlalchemy import Connection, MetaData, bindparam, select

from commercekit.analytics._events._wire import decode_wire
from commercekit.analytics._logs._log import Delivery
from commercekit.analytics._sql import insert_rows, upsert
from commercekit.errors import DuplicateError, InvalidInputError
from commercekit.repository import Database, UnitOfWork

from ._batch import ProductOf, Wire, _Batch
from ._funnel import FunnelSpec
from ._identity import Identities
from ._keys import _chunks, _dead_letter, _message_key, _stored_key
from ._per_person import PerPerson
from ._schema import Schema

__all__ = ["AnalyticsStore", "ApplyResult"]

T = TypeVar("T")


@attrs.frozen
class ApplyResult:
    """What one batch did: events applied, duplicates skipped, messages parked."""

    applied: int
    duplicates: int
    dead_lettered: int


class AnalyticsStore:
    """The aggregates in SQL, through a :class:`commercekit.repository.Database`.

    *funnels* are the funnels kept up to date. Create the tables with
    :meth:`create`. Reports are in :mod:`commercekit.analytics` (``Reports``).
    *product_of* maps a SKU to its product id for order lines in the shape
    commercekit wrote before 0.x (``product_id`` holding the SKU); see
    :func:`product_key`.

    Every per-person aggregate (funnels, cart abandonment, cohorts, also
    bought) counts an event under its person: an id linked by ``Identify`` or
    ``Alias`` is its customer's, whenever the link arrives (see "Identity" in
    ``docs/analytics.md``).
    """

    def __init__(
        self,
        db: Database,
        *,
        funnels: Sequence[FunnelSpec] = (),
        metadata: MetaData | None = None,
        prefix: str = "ck_analytics_",
        clock: Any = None,
        product_of: ProductOf | None = None,
    ) -> None:
        import time

        self.db = db
        self.product_of = product_of
        self.funnels = tuple(funnels)
        names = [f.name for f in self.funnels]
        if len(set(names)) != len(names):
            raise InvalidInputError(f"funnel names must differ, got {names}")
        self.schema = Schema.build(metadata if metadata is not None else MetaData(), prefix)
        self._clock = clock or time.time
        # Built once with an expanding parameter: SQLAlchemy compiles each once and the
        # values go to the driver as they are (no per-value coercion on the hot path).
        sc = self.schema
        ids: Any = bindparam("ids", expanding=True)
        self._q_processed = select(sc.processed.c.event_id).where(sc.processed.c.event_id.in_(ids))
        self._identities = Identities(sc)
        self._per_person = PerPerson(sc)

    def create(self) -> None:
        """Create the aggregate tables that are missing."""
        self.db.create_all(self.schema.metadata)

    def apply(self, deliveries: Sequence[Delivery]) -> ApplyResult:
        """Apply *deliveries* in one transaction (retried whole on a transient failure).

        Two consumers may hold the same message at once (a claimed entry of a
        slow consumer); the second to commit its event ids hits the unique key
        and runs again, now finding them processed. Batches of several
        consumers take turns: each transaction first updates the store's
        ``writer`` row, so the next one reads the per-person state (funnel
        progress, a person's purchases and links) this one wrote, not a
        snapshot from before it.
        """
        return self._run(lambda uow: self._apply(uow, deliveries))

    def park(self, delivery: Delivery, reason: str) -> None:
        """Park one delivery in ``dead_letters`` (once, keyed like a processed event).

        It takes its turn on the ``writer`` row as a batch does, so two
        consumers parking the same message at once park it once: the second
        waits for the first and finds the message processed. A second insert
        of its key (a store whose other writers skip the turn) means it is
        parked already, and is taken as done.
        """

        def work(uow: UnitOfWork) -> None:
            s, conn = self.schema, uow.session.connection()
            self._take_turn(conn)
            key = _message_key(delivery)
            with contextlib.suppress(InvalidInputError):  # keyed as _apply keys it: by the
                key = _stored_key(decode_wire(delivery.body)[0])  # event's id, when it is one
            if conn.scalar(select(s.processed.c.event_id).where(s.processed.c.event_id == key)):
                return
            insert_rows(conn, s.processed, [{"event_id": key}])
            row = _dead_letter(delivery, delivery.event_id, reason, int(self._clock() * 1000))
            insert_rows(conn, s.dead_letters, [row])

        self._run(work)

    def _run(self, work: Callable[[UnitOfWork], T]) -> T:
        """Run *work* in one transaction (retried whole on a transient failure).

        A unique-key clash (a concurrent consumer committed the same event ids,
        or parked the same message, first) runs it again: it then finds them
        processed.
        """
        for attempt in range(3):
            try:
                return self.db.run(work, retry=True).value
            except DuplicateError:
                if attempt == 2:
                    raise
        raise AssertionError("unreachable")  # pragma: no cover

    def _take_turn(self, conn: Connection) -> None:
        # The transaction's first statement, a write: it waits for a concurrent batch to
        # end, and no read came before it (MariaDB's repeatable read takes its snapshot
        # at the first read, PostgreSQL's read committed at each statement).
        upsert(conn, self.schema.writer, [{"id": 1, "batches": 1}], keys=("id",), add=("batches",))

    def _apply(self, uow: UnitOfWork, deliveries: Sequence[Delivery]) -> ApplyResult:
        s = self.schema
        conn = uow.session.connection()
        self._take_turn(conn)
        parsed: list[tuple[str, Wire | None, Delivery, str]] = []
        seen: set[str] = set()
        duplicates = 0
        for d in deliveries:
            try:
                event: Wire | None = decode_wire(d.body)
                reason = ""
            except InvalidInputError as exc:
                event, reason = None, str(exc)
            key = _stored_key(event[0]) if event is not None else _message_key(d)
            if key in seen:
                duplicates += 1
                continue
            seen.add(key)
            parsed.append((key, event, d, reason))
        keys = [p[0] for p in parsed]
        stored: set[str] = set()
        for chunk in _chunks(keys):
            stored.update(conn.scalars(self._q_processed, {"ids": chunk}))
        fresh = [p for p in parsed if p[0] not in stored]
        duplicates += len(parsed) - len(fresh)
        if fresh:
            insert_rows(conn, s.processed, [{"event_id": p[0]} for p in fresh])
        batch = _Batch()
        parked: list[dict[str, Any]] = []
        now_ms = int(self._clock() * 1000)
        funnels = self.funnels
        for _key, event, d, reason in fresh:
            if event is not None:
                try:
                    batch.add(event, funnels, self.product_of)
                    continue
                except InvalidInputError as exc:
                    reason = str(exc)
            parked.append(
                _dead_letter(d, event[0] if event else d.event_id or None, reason, now_ms)
            )
        if parked:
            insert_rows(conn, s.dead_letters, parked)
        self._write(uow, batch)
        return ApplyResult(len(fresh) - len(parked), duplicates, len(parked))

    def _write(self, uow: UnitOfWork, b: _Batch) -> None:
        s, conn = self.schema, uow.session.connection()
        rev: dict[tuple[str, str], dict[str, Any]] = {}
        for (day, cur, col), n in b.revenue.items():
            row = rev.setdefault(
                (day, cur),
                {
                    "day": day,
                    "currency": cur,
                    "orders": 0,
                    "gross_minor": 0,
                    "refunds": 0,
                    "refunded_minor": 0,
                },
            )
            row[col] += n
        cols = ("orders", "gross_minor", "refunds", "refunded_minor")
        upsert(conn, s.revenue, list(rev.values()), keys=("day", "currency"), add=cols)
        prev: dict[tuple[str, str, str], dict[str, Any]] = {}
        for (day, product, cur, col), n in b.product_revenue.items():
            row = prev.setdefault(
                (day, product, cur),
                {
                    "day": day,
                    "product": product,
                    "currency": cur,
                    "quantity": 0,
                    "revenue_minor": 0,
                },
            )
            row[col] += n
        upsert(
            conn,
            s.product_revenue,
            list(prev.values()),
            keys=("day", "product", "currency"),
            add=("quantity", "revenue_minor"),
        )
        upsert(
            conn,
            s.product_counts,
            [
                {"day": d, "product": p, "kind": k, "n": n}
                for (d, p, k), n in b.product_counts.items()
            ],
            keys=("day", "product", "kind"),
            add=("n",),
        )
        carts = {
            who: {
                "customer": who,
                "first_add_ms": b.first_add.get(who),
                "last_order_ms": b.last_order.get(who),
            }
            for who in b.first_add.keys() | b.last_order.keys()
        }
        upsert(
            conn,
            s.carts,
            list(carts.values()),
            keys=("customer",),
            least=("first_add_ms",),
            greatest=("last_order_ms",),
        )
        searches: dict[str, dict[str, Any]] = {}
        for (query, col), n in b.searches.items():
            searches.setdefault(query, {"query": query, "searches": 0, "no_result": 0})[col] += n
        upsert(
            conn,
            s.searches,
            list(searches.values()),
            keys=("query",),
            add=("searches", "no_result"),
        )
        upsert(
            conn,
            s.customer_weeks,
            [{"customer": c, "week": w} for c, w in b.weeks],
            keys=("customer", "week"),
        )
        people = self._identities.resolve(conn, b)
        self._per_person.copurchases(conn, b.purchases, people)
        self._per_person.funnels(conn, self.funnels, b.funnel_rows, people)

    def is_processed(self, event_ids: Sequence[str]) -> set[str]:
        """Which of *event_ids* the store has applied (or parked)."""
        with self.db.unit_of_work(read_only=True) as uow:
            conn = uow.session.connection()
            found: set[str] = set()
            for chunk in _chunks(list(event_ids)):
                found.update(conn.scalars(self._q_processed, {"ids": chunk}))
        return found
