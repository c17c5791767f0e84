"""Identity across sign-in: an anonymous visitor who signs in and buys is one person.

Segment's ``identify`` (customer id + anonymous id) and ``alias`` (previous id ->
customer id) link ids; the aggregates count every event under its person,
whatever order the events and the link arrive in, and however often.
"""

from __future__ import annotations

import itertools
import json
import random
from collections.abc import Sequence
from pathlib import Path

import pytest
import sqlalchemy as sa
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from commercekit.analytics import (
    AnalyticsEvent,
    AnalyticsStore,
    Delivery,
    LineItem,
    Reports,
    alias,
    checkout_started,
    identify,
    order_completed,
    product_added,
    product_viewed,
)
from commercekit.errors import InvalidInputError
from commercekit.money import Money
from commercekit.repository import Database, Node, ReplicatedTopology, sqlite_engine

from ._history import FUNNEL

T = 1_767_225_600_000  # 2026-01-01T00:00:00Z
EUR = Money.of("20.00", "EUR")


def _store(path: Path) -> AnalyticsStore:
    store = AnalyticsStore(
        Database(ReplicatedTopology(Node("p", sqlite_engine(path)))), funnels=[FUNNEL]
    )
    store.create()
    return store


def _apply(store: AnalyticsStore, events: Sequence[AnalyticsEvent], size: int = 1000) -> None:
    ds = [Delivery(e.event_id, e.to_bytes(), e.event_id) for e in events]
    for i in range(0, len(ds), size):
        store.apply(ds[i : i + size])


def _journey(anon: str = "anon-1", customer: str = "cus_1", t: int = T) -> list[AnalyticsEvent]:
    """Browse and add to the cart anonymously, sign in, check out as the customer."""
    line = LineItem("tee", EUR, 1, sku="TEE-M")
    return [
        product_viewed("tee", EUR, anonymous_id=anon, timestamp_ms=t),
        product_added("tee", EUR, 1, sku="TEE-M", anonymous_id=anon, timestamp_ms=t + 1000),
        identify(customer, anon, timestamp_ms=t + 2000),
        checkout_started("o1", EUR, [line], customer_id=customer, timestamp_ms=t + 3000),
        order_completed("o1", EUR, [line], customer_id=customer, timestamp_ms=t + 4000),
    ]


ORDERS = {
    "as it happened": [0, 1, 2, 3, 4],
    "the sign-in last": [0, 1, 3, 4, 2],
    "reversed": [4, 3, 2, 1, 0],
    "the sign-in first": [2, 4, 0, 3, 1],
}


@pytest.mark.parametrize("order", ORDERS, ids=list(ORDERS))
@pytest.mark.parametrize("size", [1, 2, 5])
def test_a_visitor_who_browses_signs_in_and_buys_is_one_person_converting(
    order: str, size: int, tmp_path: Path
) -> None:
    journey = _journey()
    store = _store(tmp_path / "a.db")
    _apply(store, [journey[i] for i in ORDERS[order]], size)
    reports = Reports(store)
    funnel = reports.funnel(FUNNEL.name)
    assert funnel.total.counts == (1, 1, 1, 1)
    assert funnel.total.overall_conversion == 1.0
    assert funnel.total.median_convert_s == 4.0
    abandonment = reports.cart_abandonment()
    assert (abandonment.carts, abandonment.abandoned) == (1, 0)
    assert [(c.week, c.size) for c in reports.cohorts()] == [("2025-12-29", 1)]


def test_a_redelivered_sign_in_and_journey_count_once(tmp_path: Path) -> None:
    journey = _journey()
    store = _store(tmp_path / "a.db")
    _apply(store, journey)
    again = store.apply([Delivery(e.event_id, e.to_bytes()) for e in journey])
    assert (again.applied, again.duplicates) == (0, len(journey))
    assert Reports(store).funnel(FUNNEL.name).total.counts == (1, 1, 1, 1)


def test_alias_links_a_previous_id_like_identify(tmp_path: Path) -> None:
    journey = _journey()
    journey[2] = alias("anon-1", "cus_1", timestamp_ms=T + 2000)
    store = _store(tmp_path / "a.db")
    _apply(store, journey[::-1], 1)
    assert Reports(store).funnel(FUNNEL.name).total.counts == (1, 1, 1, 1)


def test_an_anonymous_id_linked_to_two_customers_belongs_to_the_earliest_link(
    tmp_path: Path,
) -> None:
    """First link wins, by event time (then event id), never by arrival order."""
    browse = [
        product_viewed("tee", EUR, anonymous_id="shared", timestamp_ms=T),
        product_added("tee", EUR, anonymous_id="shared", timestamp_ms=T + 1000),
    ]
    line = LineItem("tee", EUR)
    first, second = (
        identify("cus_a", "shared", timestamp_ms=T + 2000),
        identify("cus_b", "shared", timestamp_ms=T + 5000),
    )
    orders = [
        checkout_started("oa", EUR, [line], customer_id="cus_a", timestamp_ms=T + 3000),
        order_completed("oa", EUR, [line], customer_id="cus_a", timestamp_ms=T + 4000),
        # past the window of the shared browsing: had cus_b won, 2 steps would count
        checkout_started("ob", EUR, [line], customer_id="cus_b", timestamp_ms=T + 7_200_000),
        order_completed("ob", EUR, [line], customer_id="cus_b", timestamp_ms=T + 7_201_000),
    ]
    results = set()
    for k, links in enumerate(([first, second], [second, first])):
        store = _store(tmp_path / f"{k}.db")
        _apply(store, [*browse, links[0], *orders], 2)
        _apply(store, [links[1]])
        f = Reports(store).funnel(FUNNEL.name).total
        results.add(f.counts)
    # cus_a: viewed and added (as "shared"), then bought; cus_b bought without a view.
    assert len(results) == 1
    assert results == {(1, 1, 1, 1)}


def test_co_purchases_of_a_guest_order_and_a_signed_in_one_are_one_persons(
    tmp_path: Path,
) -> None:
    guest = order_completed("o1", EUR, [LineItem("tee", EUR)], anonymous_id="v", timestamp_ms=T)
    later = order_completed(
        "o2", EUR, [LineItem("cap", EUR)], customer_id="cus_1", timestamp_ms=T + 10
    )
    other = order_completed("o3", EUR, [LineItem("tee", EUR)], customer_id="c9", timestamp_ms=T)
    link = identify("cus_1", "v", timestamp_ms=T + 5)
    for k, events in enumerate(([guest, later, other, link], [link, guest, later, other])):
        store = _store(tmp_path / f"{k}.db")
        _apply(store, events, 1)
        reports = Reports(store)
        assert [(r.product, r.together) for r in reports.also_bought("tee")] == [("cap", 1)]
        assert [(r.product, r.together) for r in reports.also_bought("cap")] == [("tee", 1)]
        assert [(c.week, c.size) for c in reports.cohorts()] == [("2025-12-29", 2)]


def test_identity_events_refuse_what_links_nothing() -> None:
    with pytest.raises(InvalidInputError):
        identify("cus_1", "cus_1")
    with pytest.raises(InvalidInputError):
        alias("cus_1", "cus_1")
    with pytest.raises(InvalidInputError):
        identify("", "anon")


def test_a_malformed_identity_event_is_parked(tmp_path: Path) -> None:
    store = _store(tmp_path / "a.db")
    for name in ("Identify", "Alias"):
        with pytest.raises(InvalidInputError):
            AnalyticsEvent(name, {}, customer_id="cus_1", timestamp_ms=T)
    base = {"customer_id": "cus_1", "timestamp_ms": T, "properties": {}}
    no_anon = json.dumps({**base, "event_id": "e1", "event": "Identify"}).encode()
    no_previous = json.dumps({**base, "event_id": "e2", "event": "Alias"}).encode()
    result = store.apply([Delivery("1", no_anon), Delivery("2", no_previous)])
    assert result.dead_lettered == 2
    reasons = [d["reason"] for d in Reports(store).dead_letters()]
    assert any("anonymous_id" in r for r in reasons)
    assert any("previous_id" in r for r in reasons)


# -- the property: any arrival order, batching and redelivery gives the same aggregates -------

CUSTOMERS = ["cus_1", "cus_2", "cus_3"]
VISITORS = ["v1", "v2", "v3", "v4"]
STEPS = ["Product Viewed", "Product Added", "Checkout Started", "Order Completed"]


@st.composite
def histories(draw: st.DrawFn) -> list[AnalyticsEvent]:
    n = draw(st.integers(1, 14))
    events: list[AnalyticsEvent] = []
    for i in range(n):
        t = T + draw(st.integers(0, 3)) * 60_000 + i
        if draw(st.integers(0, 3)) == 0:
            v, c = draw(st.sampled_from(VISITORS)), draw(st.sampled_from(CUSTOMERS))
            events.append(
                identify(c, v, timestamp_ms=t)
                if draw(st.booleans())
                else alias(v, c, timestamp_ms=t)
            )
            continue
        who = draw(st.sampled_from(VISITORS + CUSTOMERS))
        ident = {"customer_id": who} if who.startswith("cus") else {"anonymous_id": who}
        product = draw(st.sampled_from(["tee", "cap", "mug"]))
        step = draw(st.sampled_from(STEPS))
        line = [LineItem(product, EUR)]
        if step == "Product Viewed":
            events.append(product_viewed(product, EUR, timestamp_ms=t, **ident))
        elif step == "Product Added":
            events.append(product_added(product, EUR, timestamp_ms=t, **ident))
        elif step == "Checkout Started":
            events.append(checkout_started(f"o{i}", EUR, line, timestamp_ms=t, **ident))
        else:
            events.append(order_completed(f"o{i}", EUR, line, timestamp_ms=t, **ident))
    return events


def _snapshot(store: AnalyticsStore) -> object:
    reports = Reports(store)
    f = reports.funnel(FUNNEL.name)
    s = store.schema
    with store.db.unit_of_work(read_only=True) as uow:
        co = sorted(uow.session.execute(s.co_counts.select()).all())
        items = sorted(uow.session.execute(s.item_counts.select()).all())
        progress = sorted(uow.session.execute(s.funnel_progress.select()).all())
    a = reports.cart_abandonment()
    return (
        [(d.day, d.counts) for d in f.days],
        f.total.median_convert_s,
        (a.carts, a.abandoned),
        [(c.week, c.size, c.retention) for c in reports.cohorts()],
        co,
        [row for row in items if row[1]],
        progress,
    )


_counter = itertools.count()


def _resolved(events: Sequence[AnalyticsEvent]) -> list[AnalyticsEvent]:
    """The history as if every event had carried its person's id (the rule, by hand)."""
    links: dict[str, tuple[int, str, str]] = {}
    for e in events:
        if e.name in ("Identify", "Alias"):
            source = e.anonymous_id if e.name == "Identify" else e.properties["previous_id"]
            link = (e.timestamp_ms, e.event_id, str(e.customer_id))
            links[source] = min(links.get(source, link), link)
    return [
        AnalyticsEvent(
            e.name,
            e.properties,
            customer_id=links[e.who][2] if e.who in links else e.who,
            timestamp_ms=e.timestamp_ms,
            event_id=e.event_id,
        )
        for e in events
        if e.name not in ("Identify", "Alias")
    ]


@settings(
    max_examples=40,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(histories(), st.randoms(use_true_random=False), st.integers(1, 5))
def test_arrival_order_batching_and_redelivery_never_change_the_aggregates(
    tmp_path: Path, events: list[AnalyticsEvent], rng: random.Random, size: int
) -> None:
    n = next(_counter)
    once = _store(tmp_path / f"once{n}.db")
    _apply(once, events)
    shuffled = _store(tmp_path / f"shuffled{n}.db")
    arrivals = events + rng.sample(events, rng.randint(0, len(events)))  # at least once
    rng.shuffle(arrivals)
    _apply(shuffled, arrivals, size)
    assert _snapshot(shuffled) == _snapshot(once)
    by_hand = _store(tmp_path / f"by_hand{n}.db")
    _apply(by_hand, _resolved(events))
    assert _snapshot(once) == _snapshot(by_hand)


def test_create_adds_the_identities_table_to_a_store_made_before_it(tmp_path: Path) -> None:
    """The analytics store's tables are made when missing (no migrations of its own): a store
    made by a version without identities gets the table from create() and keeps its counts."""
    store = _store(tmp_path / "a.db")
    journey = _journey()
    _apply(store, journey[:2])  # browsed and added, as an older version counted them
    with store.db.unit_of_work() as uow:
        uow.session.execute(sa.text(f"DROP TABLE {store.schema.identities.name}"))
    store.create()
    _apply(store, journey[2:])
    assert Reports(store).funnel(FUNNEL.name).total.counts == (1, 1, 1, 1)
