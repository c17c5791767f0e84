"""Identity resolution: which person each id of a batch is, before and after its links.

``Identify`` and ``Alias`` link an id to a customer; the earliest link by event
time, then event id, wins, whatever the arrival order. The links are stored in
``identities``; a batch looks up the links of the ids it touches and of the
persons whose ids it moves, and stores the links of its own that win.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable
from typing import TYPE_CHECKING, Any

from sqlalchemy import Connection, bindparam, select

from commercekit.analytics._sql import upsert

from ._keys import _chunks
from ._schema import Schema

if TYPE_CHECKING:
    from ._batch import _Batch

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


class Identities:
    """The ``identities`` table's lookups, built once, and a batch's resolution."""

    def __init__(self, schema: Schema) -> None:
        self.schema = schema
        ids: Any = bindparam("ids", expanding=True)
        it = schema.identities
        self._q_links = select(it.c.source, it.c.ts_ms, it.c.event_id, it.c.person).where(
            it.c.source.in_(ids)
        )
        self._q_members = select(it.c.source, it.c.ts_ms, it.c.event_id, it.c.person).where(
            it.c.person.in_(ids)
        )

    def _links(self, conn: Connection, ids: Iterable[str]) -> dict[str, Link]:
        found: dict[str, Link] = {}
        for chunk in _chunks(sorted(ids)):
            for source, ts, event_id, person in conn.execute(self._q_links, {"ids": chunk}):
                found[source] = (int(ts), event_id, person)
        return found

    def resolve(self, conn: Connection, b: _Batch) -> _People:
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
