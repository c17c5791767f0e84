"""Typed reports read from the aggregates; each renders as JSON (``to_json()``).

Money stays per currency: nothing here adds amounts of two currencies.
"""

from __future__ import annotations

import datetime as dt
import math
from collections import defaultdict
from collections.abc import Sequence
from decimal import ROUND_HALF_EVEN, Decimal
from typing import Any

import attrs
from sqlalchemy import desc, func, select

from commercekit.analytics._store._store import AnalyticsStore
from commercekit.errors import InvalidInputError, NotFoundError, UnsupportedTypeError
from commercekit.money import Money

__all__ = [
    "CartAbandonment",
    "Cohort",
    "FunnelDay",
    "FunnelReport",
    "ProductCount",
    "ProductRevenue",
    "Recommendation",
    "Reports",
    "RevenueDay",
    "SearchCount",
]


def _plain(value: Any) -> Any:
    if isinstance(value, Money):
        return {"amount": str(value.amount), "currency": value.currency.code}
    if attrs.has(type(value)):
        return {k: _plain(v) for k, v in attrs.asdict(value, recurse=False).items()}
    if isinstance(value, list | tuple):
        return [_plain(v) for v in value]
    return value


class _Json:
    def to_json(self) -> Any:
        """This report as plain JSON values (Money as amount string and currency)."""
        return _plain(self)


@attrs.frozen
class FunnelDay(_Json):
    """One day's cohort of a funnel: customers who entered that day, and how far they got."""

    day: str
    counts: tuple[int, ...]
    conversion: tuple[float, ...]  # share of the day's entrants reaching each step
    drop_off: tuple[int, ...]  # customers lost between step k and k+1
    median_convert_s: float | None
    step_conversion: tuple[float, ...] = ()  # share of step k-1's customers reaching step k
    overall_conversion: float = 0.0  # share of the entrants reaching the last step


@attrs.frozen
class FunnelReport(_Json):
    """A funnel over a range of days, per day and in total."""

    funnel: str
    steps: tuple[str, ...]
    window_s: int
    total: FunnelDay
    days: tuple[FunnelDay, ...]


@attrs.frozen
class RevenueDay(_Json):
    """Orders and revenue of one day in one currency."""

    day: str
    orders: int
    gross: Money
    refunds: int
    refunded: Money
    net: Money
    average_order_value: Money | None


@attrs.frozen
class ProductRevenue(_Json):
    """Units sold and revenue of one product in one currency (over the range asked)."""

    product: str
    quantity: int
    revenue: Money


@attrs.frozen
class ProductCount(_Json):
    """How often a product was viewed, added or bought (units)."""

    product: str
    count: int


@attrs.frozen
class CartAbandonment(_Json):
    """Customers who added to a cart, and those with no order after their first add."""

    carts: int
    abandoned: int
    rate: float


@attrs.frozen
class SearchCount(_Json):
    """A search query, how often it ran, and how often it found nothing."""

    query: str
    searches: int
    no_result: int


@attrs.frozen
class Cohort(_Json):
    """Customers whose first purchase fell in ``week``, and the share buying in week k."""

    week: str
    size: int
    retention: tuple[float, ...]


@attrs.frozen
class Recommendation(_Json):
    """A product bought by the same customers, with its cosine similarity."""

    product: str
    score: float
    together: int


def _count(what: str, value: object) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise UnsupportedTypeError(f"{what} is an int, got {value!r}")
    if value < 1:
        raise InvalidInputError(f"{what} is at least 1, got {value}")
    return value


def _day(value: str | None, what: str) -> str | None:
    if value is None:
        return None
    try:
        return dt.date.fromisoformat(value).isoformat()
    except (TypeError, ValueError) as exc:
        raise InvalidInputError(f"{what} is a YYYY-MM-DD day, got {value!r}") from exc


class Reports:
    """Read the reports of an :class:`AnalyticsStore` (read-only units of work)."""

    def __init__(self, store: AnalyticsStore) -> None:
        self.store = store
        self.schema = store.schema

    def _rows(self, stmt: Any) -> Sequence[Any]:
        with self.store.db.unit_of_work(read_only=True) as uow:
            return uow.session.execute(stmt).all()

    def funnel(
        self, name: str, *, since: str | None = None, until: str | None = None
    ) -> FunnelReport:
        """The funnel *name* for entry days in [since, until] (inclusive, YYYY-MM-DD)."""
        spec = next((f for f in self.store.funnels if f.name == name), None)
        if spec is None:
            raise NotFoundError(
                f"no funnel named {name!r}; known: {[f.name for f in self.store.funnels]}"
            )
        since, until = _day(since, "since"), _day(until, "until")
        fc, fp = self.schema.funnel_counts, self.schema.funnel_progress
        where = [fc.c.funnel == name, fc.c.n != 0]
        if since:
            where.append(fc.c.day >= since)
        if until:
            where.append(fc.c.day <= until)
        n = len(spec.steps)
        per_day: dict[str, list[int]] = defaultdict(lambda: [0] * n)
        for day, reached, count in self._rows(select(fc.c.day, fc.c.reached, fc.c.n).where(*where)):
            for k in range(int(reached)):
                per_day[day][k] += int(count)
        with self.store.db.unit_of_work(read_only=True) as uow:
            session = uow.session

            def median(day: str | None, converted: int) -> float | None:
                # The middle one or two of an index-ordered scan (no full read of the rows).
                if converted == 0:
                    return None
                cond = [fp.c.funnel == name, fp.c.reached == n]
                if day is not None:
                    cond.append(fp.c.day == day)
                elif since or until:
                    cond += [fp.c.day >= (since or ""), fp.c.day <= (until or "9999")]
                middle = session.scalars(
                    select(fp.c.convert_ms).where(*cond).order_by(fp.c.convert_ms)
                    .offset((converted - 1) // 2).limit(2 - converted % 2)
                ).all()  # fmt: skip
                return sum(int(m) for m in middle) / len(middle) / 1000

            medians = {d: median(d, per_day[d][n - 1]) for d in per_day}
            total_counts = [sum(per_day[d][k] for d in per_day) for k in range(n)]
            total_median = median(None, total_counts[n - 1] if n else 0)
        days = tuple(_funnel_day(d, per_day[d], medians[d]) for d in sorted(per_day))
        total = _funnel_day("total", total_counts, total_median)
        return FunnelReport(name, spec.steps, spec.window_s, total, days)

    def revenue(self, *, since: str | None = None, until: str | None = None) -> list[RevenueDay]:
        """Orders, gross, refunds, net and average order value per day and currency."""
        r = self.schema.revenue
        where = []
        if since := _day(since, "since"):
            where.append(r.c.day >= since)
        if until := _day(until, "until"):
            where.append(r.c.day <= until)
        out = []
        for day, cur, orders, gross, refunds, refunded in self._rows(
            select(
                r.c.day, r.c.currency, r.c.orders, r.c.gross_minor, r.c.refunds, r.c.refunded_minor
            )
            .where(*where)
            .order_by(r.c.day, r.c.currency)
        ):
            g, rf = Money.from_minor(int(gross), cur), Money.from_minor(int(refunded), cur)
            aov = None
            if orders:
                minor = (Decimal(int(gross)) / int(orders)).quantize(Decimal(1), ROUND_HALF_EVEN)
                aov = Money.from_minor(int(minor), cur)
            out.append(RevenueDay(day, int(orders), g, int(refunds), rf, g - rf, aov))
        return out

    def revenue_totals(self) -> dict[str, Money]:
        """Gross revenue of all days, per currency (never summed across currencies)."""
        r = self.schema.revenue
        return {
            cur: Money.from_minor(int(total), cur)
            for cur, total in self._rows(
                select(r.c.currency, func.sum(r.c.gross_minor)).group_by(r.c.currency)
            )
        }

    def product_revenue(self, *, limit: int = 20) -> list[ProductRevenue]:
        """Products by revenue, per currency, highest first (ties by product id)."""
        _count("limit", limit)
        pr = self.schema.product_revenue
        total = func.sum(pr.c.revenue_minor)
        rows = self._rows(
            select(pr.c.product, pr.c.currency, func.sum(pr.c.quantity), total)
            .group_by(pr.c.product, pr.c.currency)
            .order_by(desc(total), pr.c.product)
            .limit(limit)
        )
        return [ProductRevenue(p, int(q), Money.from_minor(int(m), c)) for p, c, q, m in rows]

    def top_products(self, kind: str = "bought", *, limit: int = 10) -> list[ProductCount]:
        """Products most often *kind* (``viewed``, ``added`` or ``bought``)."""
        if kind not in ("viewed", "added", "bought"):
            raise InvalidInputError(f"kind is viewed, added or bought, got {kind!r}")
        _count("limit", limit)
        pc = self.schema.product_counts
        total = func.sum(pc.c.n)
        rows = self._rows(
            select(pc.c.product, total)
            .where(pc.c.kind == kind)
            .group_by(pc.c.product)
            .order_by(desc(total), pc.c.product)
            .limit(limit)
        )
        return [ProductCount(p, int(n)) for p, n in rows]

    def cart_abandonment(self) -> CartAbandonment:
        """Share of customers who added to a cart and ordered nothing at or after that."""
        c, it = self.schema.carts, self.schema.identities
        person = func.coalesce(it.c.person, c.c.customer)
        earliest_add = func.min(c.c.first_add_ms)  # per person: the ids of one, as one
        carts = abandoned = 0
        for first_add, last_order in self._rows(
            select(earliest_add, func.max(c.c.last_order_ms))
            .select_from(c.outerjoin(it, it.c.source == c.c.customer))
            .group_by(person)
            .having(earliest_add.is_not(None))
        ):
            carts += 1
            abandoned += last_order is None or last_order < first_add
        return CartAbandonment(carts, abandoned, abandoned / carts if carts else 0.0)

    def no_result_searches(self, *, limit: int = 20) -> list[SearchCount]:
        """Queries that found nothing, most frequent first."""
        _count("limit", limit)
        s = self.schema.searches
        rows = self._rows(
            select(s.c.query, s.c.searches, s.c.no_result)
            .where(s.c.no_result > 0)
            .order_by(desc(s.c.no_result), s.c.query)
            .limit(limit)
        )
        return [SearchCount(q, int(n), int(z)) for q, n, z in rows]

    def cohorts(self, *, weeks: int = 8) -> list[Cohort]:
        """Weekly retention of first-purchase cohorts for weeks 0 to *weeks* - 1."""
        _count("weeks", weeks)
        cw, it = self.schema.customer_weeks, self.schema.identities
        pw = (
            select(func.coalesce(it.c.person, cw.c.customer).label("person"), cw.c.week)
            .select_from(cw.outerjoin(it, it.c.source == cw.c.customer))
            .distinct()
            .subquery()
        )
        first = (
            select(pw.c.person, func.min(pw.c.week).label("w0")).group_by(pw.c.person).subquery()
        )
        counts: dict[str, list[int]] = defaultdict(lambda: [0] * weeks)
        for w0, week, n in self._rows(
            select(first.c.w0, pw.c.week, func.count())
            .join(first, first.c.person == pw.c.person)
            .group_by(first.c.w0, pw.c.week)
        ):
            k = (dt.date.fromisoformat(week) - dt.date.fromisoformat(w0)).days // 7
            if 0 <= k < weeks:
                counts[w0][k] += int(n)
        return [
            Cohort(w, c[0], tuple(x / c[0] if c[0] else 0.0 for x in c))
            for w, c in sorted(counts.items())
        ]

    def also_bought(self, product: str, *, k: int = 10) -> list[Recommendation]:
        """Customers who bought *product* also bought: top *k* by cosine similarity."""
        _count("k", k)
        s = self.schema
        ic, co = s.item_counts, s.co_counts
        rows = self._rows(
            select(co.c.b, co.c.n, ic.c.n)
            .join(ic, ic.c.product == co.c.b)
            .where(co.c.a == product, co.c.n > 0)
        )
        own = self._rows(select(ic.c.n).where(ic.c.product == product, ic.c.n > 0))
        if not own:
            return []
        n_a = int(own[0][0])
        scored = [Recommendation(b, int(n) / math.sqrt(n_a * int(nb)), int(n)) for b, n, nb in rows]
        scored.sort(key=lambda r: (-r.score, -r.together, r.product))
        return scored[:k]

    def dead_letters(self, *, limit: int = 100) -> list[dict[str, Any]]:
        """Parked messages, newest first: handle, event id, reason, body."""
        _count("limit", limit)
        d = self.schema.dead_letters
        rows = self._rows(
            select(d.c.handle, d.c.event_id, d.c.reason, d.c.body)
            .order_by(desc(d.c.id))
            .limit(limit)
        )
        return [{"handle": h, "event_id": e, "reason": r, "body": b} for h, e, r, b in rows]


def _funnel_day(day: str, counts: Sequence[int], median_s: float | None) -> FunnelDay:
    entered = counts[0] if counts else 0
    conversion = tuple(c / entered if entered else 0.0 for c in counts)
    drop = tuple(counts[k] - counts[k + 1] for k in range(len(counts) - 1))
    step = tuple(
        1.0 if k == 0 and entered else c / counts[k - 1] if k and counts[k - 1] else 0.0
        for k, c in enumerate(counts)
    )
    overall = conversion[-1] if conversion else 0.0
    return FunnelDay(day, tuple(counts), conversion, drop, median_s, step, overall)
