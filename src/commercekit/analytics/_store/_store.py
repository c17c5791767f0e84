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
import datetime as dt
import functools
import hashlib
from collections import Counter, defaultdict
from collections.abc import Callable, Iterable, Iterator, Sequence
from typing import Any

import attrs
from sqlalchemy import Connection, MetaData, bindparam, delete, select

from commercekit.analytics._events._wire import decode_wire
from commercekit.analytics._logs._log import Delivery
from commercekit.analytics._sql import insert_rows, upsert
from commercekit.errors import CommerceKitError, DuplicateError, InvalidInputError
from commercekit.money import Money
from commercekit.repository import Database, UnitOfWork

from ._funnel import FunnelSpec, progress
from ._schema import Schema

__all__ = ["AnalyticsStore", "ApplyResult"]

Wire = tuple[str, str, str, int, dict[str, Any]]

_CHUNK = 1000
_ID = 64  # the processed table's key (a valid event's id is at most this long)


def _stored_key(text: str) -> str:
    """*text* as a key every engine stores: at most 64 characters, no NUL, valid UTF-8.

    A valid event's id is such a key already. A message that is no valid event is
    keyed by its log's id (any length, any text a publisher put there): a longer or
    unstorable one becomes a digest of itself, so it stays unique.
    """
    if len(text) <= _ID and "\x00" not in text:
        if text.isascii():  # a UUID: the consumer's path
            return text
        try:
            text.encode()
            return text
        except UnicodeEncodeError:  # a lone surrogate
            pass
    digest = hashlib.sha256(text.encode("utf-8", "surrogatepass")).hexdigest()
    return f"sha256:{digest[:57]}"


def _stored_text(text: str) -> str:
    """*text* as every engine stores it in a text column (NUL and lone surrogates escaped)."""
    return text.encode("utf-8", "backslashreplace").decode().replace("\x00", "\\x00")


def _message_key(d: Delivery) -> str:
    """The processed key of a message that is not a valid event."""
    return _stored_key(d.event_id or f"handle:{d.handle}")


def _dead_letter(d: Delivery, event_id: str | None, reason: str, at_ms: int) -> dict[str, Any]:
    """The ``dead_letters`` row of *d*, in values every engine stores (parking never fails)."""
    return {
        "handle": _stored_text(d.handle)[:200],
        "event_id": None if event_id is None else _stored_text(event_id)[:_ID],
        "reason": _stored_text(reason)[:1000],
        "body": _stored_text(d.body.decode("utf-8", errors="backslashreplace")),
        "at_ms": at_ms,
    }


@functools.lru_cache(maxsize=4096)
def _day_text(day_number: int) -> str:
    return (dt.date(1970, 1, 1) + dt.timedelta(days=day_number)).isoformat()


def day_of(ts_ms: int) -> str:
    """The UTC day of *ts_ms* as ``YYYY-MM-DD``."""
    return _day_text(ts_ms // 86_400_000)


def week_of(ts_ms: int) -> str:
    """The Monday (UTC) starting the ISO week of *ts_ms*."""
    days = ts_ms // 86_400_000
    return _day_text(days - (days + 3) % 7)  # 1970-01-01 was a Thursday


def _chunks(items: Sequence[Any]) -> Iterator[Sequence[Any]]:
    for i in range(0, len(items), _CHUNK):
        yield items[i : i + _CHUNK]


@attrs.frozen
class ApplyResult:
    """What one batch did: events applied, duplicates skipped, messages parked."""

    applied: int
    duplicates: int
    dead_lettered: int


def _money(props: Any, field: str) -> Money:
    try:
        return Money.of(str(props[field]), str(props["currency"]))
    except KeyError as exc:
        raise InvalidInputError(f"the event has no {exc.args[0]!r} property") from exc
    except CommerceKitError as exc:
        raise InvalidInputError(f"bad {field!r}: {exc}") from exc


def _is_id(value: object) -> bool:
    return isinstance(value, str) and 0 < len(value) <= 200


ProductOf = Callable[[str], "str | None"]


def product_key(p: Any, product_of: ProductOf | None = None) -> str:
    """The product a Segment product object counts under: its ``product_id``.

    Both shapes are read: the spec's (``product_id`` the product, ``sku`` the
    variant) and the one commercekit's order events had before, whose
    ``product_id`` held the SKU (``sku`` equal to it): *product_of* maps such
    a SKU to its product (None keeps the SKU, as the reports had it).
    """
    product_id = p.get("product_id") if isinstance(p, dict) else None
    if not _is_id(product_id):
        raise InvalidInputError(f"a product needs a product_id of 1 to 200 characters, got {p!r}")
    if product_of is not None and p.get("sku") == product_id:
        mapped = product_of(product_id)
        if _is_id(mapped):
            return str(mapped)
    return str(product_id)


def _lines(props: Any, currency: str, product_of: ProductOf | None) -> list[tuple[str, int, int]]:
    products = props.get("products", [])
    if not isinstance(products, list):
        raise InvalidInputError("'products' is a list")
    out = []
    for p in products:
        product = product_key(p, product_of)
        q = p.get("quantity", 1)
        if isinstance(q, bool) or not isinstance(q, int) or q < 1:
            raise InvalidInputError(f"a quantity is a positive int, got {q!r}")
        price = _money({"price": p.get("price"), "currency": currency}, "price")
        out.append((product, price.amount_minor, q))
    return out


Link = tuple[int, str, str]  # (timestamp_ms, event_id, person): the least one wins


class _People:
    """Who is who, before and after one batch's links (the ids the batch needs, looked up).

    A linked id's events are its person's; an id no link names is a person itself
    (one hop: a link's person is taken as it is, even if it is linked in turn).
    """

    def __init__(self, before: dict[str, Link], after: dict[str, Link]) -> None:
        self.before = before  # source -> winning link, for every id looked up that has one
        self.after = after
        self.changed = [x for x in after if self.person(x, False) != self.person(x)]
        self.now: dict[str, str] = {}  # id -> person after the batch, for the ids looked up
        self.moved: set[str] = set()  # relinked(), once settled
        self.members_before: dict[str, set[str]] = defaultdict(set)
        self.members_after: dict[str, set[str]] = defaultdict(set)

    def settle(self) -> None:
        """Freeze the lookups once every id the batch needs is known (the hot path's maps)."""
        self.now = {x: link[2] for x, link in self.after.items()}
        self.moved = self.relinked()

    def person(self, who: str, after: bool = True) -> str:
        link = (self.after if after else self.before).get(who)
        return who if link is None else link[2]

    def relinked(self) -> set[str]:
        """The persons whose ids changed: each relinked id's old and new person, and itself."""
        out: set[str] = set()
        for x in self.changed:
            out.update((x, self.person(x, False), self.person(x)))
        return out

    def members(self, person: str, after: bool = True) -> set[str]:
        """The ids whose events are *person*'s."""
        found = set((self.members_after if after else self.members_before)[person])
        if self.person(person, after) == person:
            found.add(person)
        return found


def _count_pairs(
    items: Counter[str],
    pairs: Counter[tuple[str, str]],
    changed: set[str],
    within: set[str],
    sign: int,
) -> None:
    """Count *sign* for each item of *changed* and each ordered pair of *within* touching one.

    With *within* a person's items and *changed* those it gained (or lost, with
    the set before), this is the difference of the person's pairs, in
    O(|changed| * |within|) rather than |within| squared.
    """
    for a in changed:
        items[a] += sign
        for b in within:
            if b != a:
                pairs[(a, b)] += sign
                if b not in changed:
                    pairs[(b, a)] += sign


class _Batch:
    """The aggregate changes of one batch, summed in memory before the upserts."""

    def __init__(self) -> None:
        self.revenue: Counter[tuple[str, str, str]] = Counter()
        self.product_revenue: Counter[tuple[str, str, str, str]] = Counter()
        self.product_counts: Counter[tuple[str, str, str]] = Counter()
        self.first_add: dict[str, int] = {}
        self.last_order: dict[str, int] = {}
        self.searches: Counter[tuple[str, str]] = Counter()
        self.weeks: set[tuple[str, str]] = set()
        self.purchases: dict[str, list[str]] = defaultdict(list)
        self.funnel_rows: list[dict[str, Any]] = []
        self.links: dict[str, tuple[Link, str]] = {}  # source -> (least link, its event id)

    def add(
        self,
        event: Wire,
        funnels: Sequence[FunnelSpec],
        product_of: ProductOf | None,
    ) -> None:
        event_id, name, who, ts, props = event
        if name == "Identify" or name == "Alias":
            link = (ts, event_id, who)
            source = props["previous_id"]  # decode_wire checked it
            held = self.links.get(source)
            if held is None or link < held[0]:
                self.links[source] = (link, event_id)
            return
        day = day_of(ts)
        if name == "Order Completed":
            total = _money(props, "total")
            cur = total.currency.code
            lines = _lines(props, cur, product_of)
            self.revenue[(day, cur, "orders")] += 1
            self.revenue[(day, cur, "gross_minor")] += total.amount_minor
            for product, price, q in lines:
                self.product_revenue[(day, product, cur, "quantity")] += q
                self.product_revenue[(day, product, cur, "revenue_minor")] += price * q
                self.product_counts[(day, product, "bought")] += q
                self.purchases[who].append(product)
            self.last_order[who] = max(ts, self.last_order.get(who, ts))
            self.weeks.add((who, week_of(ts)))
        elif name == "Order Refunded":
            total = _money(props, "total")
            self.revenue[(day, total.currency.code, "refunds")] += 1
            self.revenue[(day, total.currency.code, "refunded_minor")] += total.amount_minor
        elif name in ("Product Viewed", "Product Added"):
            if not _is_id(props.get("product_id")):
                raise InvalidInputError(f"{name!r} needs a product_id of 1 to 200 characters")
            product = product_key(props, product_of)
            q = props.get("quantity", 1) if name == "Product Added" else 1
            if isinstance(q, bool) or not isinstance(q, int) or q < 1:
                raise InvalidInputError(f"a quantity is a positive int, got {q!r}")
            kind = "viewed" if name == "Product Viewed" else "added"
            self.product_counts[(day, product, kind)] += q
            if kind == "added":
                self.first_add[who] = min(ts, self.first_add.get(who, ts))
        elif name == "Products Searched":
            query, results = props.get("query"), props.get("results")
            if not isinstance(query, str) or not query or len(query) > 200:
                raise InvalidInputError(f"'Products Searched' needs a query, got {query!r}")
            if isinstance(results, bool) or not isinstance(results, int) or results < 0:
                raise InvalidInputError(f"'results' is a count, got {results!r}")
            self.searches[(query, "searches")] += 1
            self.searches[(query, "no_result")] += int(results == 0)
        for f in funnels:
            step = f.index(name)
            if step is not None:
                self.funnel_rows.append(
                    {"funnel": f.name, "customer": who, "step": step, "ts_ms": ts}
                )


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
        ic, fe, fp = sc.item_customers, sc.funnel_events, sc.funnel_progress
        self._q_owned = select(ic.c.customer, ic.c.product).where(ic.c.customer.in_(ids))
        name: Any = bindparam("funnel")
        self._q_funnel_times = select(fe.c.customer, fe.c.step, fe.c.ts_ms).where(
            fe.c.funnel == name, fe.c.customer.in_(ids)
        )
        self._q_funnel_progress = select(fp.c.customer, fp.c.day, fp.c.reached).where(
            fp.c.funnel == name, fp.c.customer.in_(ids)
        )
        self._d_funnel_progress = delete(fp).where(fp.c.funnel == name, fp.c.customer.in_(ids))
        it = sc.identities
        self._q_links = select(it.c.source, it.c.ts_ms, it.c.event_id, it.c.person).where(
            it.c.source.in_(ids)
        )
        self._q_members = select(it.c.source, it.c.ts_ms, it.c.event_id, it.c.person).where(
            it.c.person.in_(ids)
        )

    def create(self) -> None:
        """Create the aggregate tables that are missing."""
        self.db.create_all(self.schema.metadata)

    def apply(self, deliveries: Sequence[Delivery]) -> ApplyResult:
        """Apply *deliveries* in one transaction (retried whole on a transient failure).

        Two consumers may hold the same message at once (a claimed entry of a
        slow consumer); the second to commit its event ids hits the unique key
        and runs again, now finding them processed.
        """
        for attempt in range(3):
            try:
                return self.db.run(lambda uow: self._apply(uow, deliveries), retry=True).value
            except DuplicateError:
                if attempt == 2:
                    raise
        raise AssertionError("unreachable")  # pragma: no cover

    def park(self, delivery: Delivery, reason: str) -> None:
        """Park one delivery in ``dead_letters`` (once, keyed like a processed event)."""

        def work(uow: UnitOfWork) -> None:
            s, conn = self.schema, uow.session.connection()
            key = _message_key(delivery)
            with contextlib.suppress(InvalidInputError):  # keyed as _apply keys it: by the
                key = _stored_key(decode_wire(delivery.body)[0])  # event's id, when it is one
            if conn.scalar(select(s.processed.c.event_id).where(s.processed.c.event_id == key)):
                return
            insert_rows(conn, s.processed, [{"event_id": key}])
            row = _dead_letter(delivery, delivery.event_id, reason, int(self._clock() * 1000))
            insert_rows(conn, s.dead_letters, [row])

        self.db.run(work, retry=True)

    def _apply(self, uow: UnitOfWork, deliveries: Sequence[Delivery]) -> ApplyResult:
        s = self.schema
        conn = uow.session.connection()
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
        people = self._people(conn, b)
        self._copurchases(uow, b.purchases, people)
        self._funnels(uow, b.funnel_rows, people)

    def _links(self, conn: Connection, ids: Iterable[str]) -> dict[str, Link]:
        found: dict[str, Link] = {}
        for chunk in _chunks(sorted(ids)):
            for source, ts, event_id, person in conn.execute(self._q_links, {"ids": chunk}):
                found[source] = (int(ts), event_id, person)
        return found

    def _people(self, conn: Connection, b: _Batch) -> _People:
        """Resolve the batch's ids to persons, and store its links that win (the earliest)."""
        sources = set(b.purchases) | {r["customer"] for r in b.funnel_rows} | set(b.links)
        if not sources:
            return _People({}, {})  # a batch of revenue, searches and refunds only
        before = self._links(conn, sources)
        after = dict(before)
        wins = []
        for source, (link, event_id) in b.links.items():
            held = after.get(source)
            if held is None or link < held:
                after[source] = link
                wins.append(
                    {"source": source, "person": link[2], "ts_ms": link[0], "event_id": event_id}
                )
        people = _People(before, after)
        # The persons whose events change: the batch's, and both sides of each relinked id.
        persons = {people.person(x) for x in sources} | people.relinked()
        more = self._links(conn, persons - sources)  # is each of them linked itself?
        before.update(more)
        after.update(more)
        for chunk in _chunks(sorted(persons)):
            for source, ts, event_id, person in conn.execute(self._q_members, {"ids": chunk}):
                link = (int(ts), event_id, person)  # as stored: the state before the batch
                before.setdefault(source, link)
                after.setdefault(source, link)
                people.members_before[person].add(source)
                if people.person(source) == person:
                    people.members_after[person].add(source)
        for source in people.changed:
            people.members_after[people.person(source)].add(source)
        people.settle()
        upsert(
            conn,
            self.schema.identities,
            wins,
            keys=("source",),
            replace=("person", "ts_ms", "event_id"),
        )
        return people

    def _copurchases(
        self, uow: UnitOfWork, purchases: dict[str, list[str]], people: _People
    ) -> None:
        """Item-to-item counts: persons per item, and persons per pair of items.

        ``item_customers`` keeps what each id bought; a person's items are those
        of their ids. For each person the batch changes (new purchases, an id
        linked to them or away from them) the counts move by the difference
        between the person's items before and after.
        """
        now = people.now
        persons = {now.get(x, x) for x in purchases} | people.moved
        if not persons:
            return
        s, conn = self.schema, uow.session.connection()
        members = {p: (people.members(p, False), people.members(p)) for p in persons}
        ids = sorted(set().union(*(old | new for old, new in members.values())))
        owned: dict[str, set[str]] = defaultdict(set)
        for chunk in _chunks(ids):
            for customer, product in conn.execute(self._q_owned, {"ids": chunk}):
                owned[customer].add(product)
        items: Counter[str] = Counter()
        pairs: Counter[tuple[str, str]] = Counter()
        for old_ids, new_ids in members.values():
            old = set().union(*(owned[x] for x in old_ids))
            new = set().union(
                *(owned[x] for x in new_ids), *(purchases.get(x, ()) for x in new_ids)
            )
            _count_pairs(items, pairs, new - old, new, 1)
            _count_pairs(items, pairs, old - new, old, -1)
        new_rows = [
            {"customer": x, "product": p}
            for x, products in purchases.items()
            for p in sorted(set(products) - owned[x])
        ]
        if new_rows:
            insert_rows(conn, s.item_customers, new_rows)
        upsert(
            conn,
            s.item_counts,
            [{"product": p, "n": n} for p, n in items.items() if n],
            keys=("product",),
            add=("n",),
        )
        upsert(
            conn,
            s.co_counts,
            [{"a": a, "b": b, "n": n} for (a, b), n in pairs.items() if n],
            keys=("a", "b"),
            add=("n",),
        )

    def _funnels(self, uow: UnitOfWork, rows: list[dict[str, Any]], people: _People) -> None:
        relinked, now = people.moved, people.now
        if not rows and not relinked:
            return
        s, conn = self.schema, uow.session.connection()
        if rows:
            insert_rows(conn, s.funnel_events, rows)
        for spec in self.funnels:
            mine = {now.get(r["customer"], r["customer"]) for r in rows if r["funnel"] == spec.name}
            who = sorted(mine | relinked)
            if not who:
                continue
            ids = {p: people.members(p) for p in who}
            times: dict[str, dict[int, list[int]]] = defaultdict(lambda: defaultdict(list))
            for chunk in _chunks(sorted(set().union(*ids.values()))):
                params = {"funnel": spec.name, "ids": chunk}
                for customer, step, ts in conn.execute(self._q_funnel_times, params):
                    times[now.get(customer, customer)][step].append(ts)
            before: dict[str, tuple[str, int]] = {}
            for chunk in _chunks(who):
                params = {"funnel": spec.name, "ids": chunk}
                for customer, day, reached in conn.execute(self._q_funnel_progress, params):
                    before[customer] = (day, reached)
            out = []
            gone = []
            counts: Counter[tuple[str, int]] = Counter()
            for customer in who:
                got = progress(times[customer], len(spec.steps), spec.window_s * 1000)
                old = before.get(customer)
                if got is None:  # not a person who entered (any more): an id linked away
                    if old is not None:
                        counts[old] -= 1
                        gone.append(customer)
                    continue
                entered, reached, convert = got
                new = (day_of(entered), reached)
                if old != new:
                    counts[new] += 1
                    if old is not None:
                        counts[old] -= 1
                out.append(
                    {
                        "funnel": spec.name,
                        "customer": customer,
                        "day": day_of(entered),
                        "entered_ms": entered,
                        "reached": reached,
                        "convert_ms": convert,
                    }
                )
            for chunk in _chunks(gone):
                conn.execute(self._d_funnel_progress, {"funnel": spec.name, "ids": chunk})
            upsert(
                conn,
                s.funnel_progress,
                out,
                keys=("funnel", "customer"),
                replace=("day", "entered_ms", "reached", "convert_ms"),
            )
            # Per day and step reached, so a report reads a few rows, not every customer.
            upsert(
                conn,
                s.funnel_counts,
                [
                    {"funnel": spec.name, "day": d, "reached": r, "n": n}
                    for (d, r), n in counts.items()
                    if n
                ],
                keys=("funnel", "day", "reached"),
                add=("n",),
            )

    def is_processed(self, event_ids: Sequence[str]) -> set[str]:
        """Which of *event_ids* the store has applied (or parked)."""
        with self.db.unit_of_work(read_only=True) as uow:
            conn = uow.session.connection()
            found: set[str] = set()
            for chunk in _chunks(list(event_ids)):
                found.update(conn.scalars(self._q_processed, {"ids": chunk}))
        return found
