"""The cart's add-wins observed-remove map: merge laws, no lost adds, no resurrected lines."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from commercekit.commerce.cart import CartState
from commercekit.errors import InvalidInputError

SKUS = ["A", "B", "C"]

op = st.one_of(
    st.tuples(st.just("add"), st.sampled_from(SKUS), st.integers(1, 5)),
    st.tuples(st.just("set"), st.sampled_from(SKUS), st.integers(0, 5)),
    st.tuples(st.just("remove"), st.sampled_from(SKUS), st.just(0)),
    st.tuples(st.just("merge"), st.integers(0, 2), st.just(0)),
)


def apply(state: CartState, step: tuple[str, object, int], replicas: list[CartState]) -> CartState:
    kind, arg, qty = step
    if kind == "add":
        return state.add(str(arg), qty)
    if kind == "set":
        return state.set(str(arg), qty)
    if kind == "remove":
        return state.remove(str(arg))
    return state.merge(replicas[int(str(arg))])


@st.composite
def histories(draw: st.DrawFn) -> list[CartState]:
    """Three replicas of one cart, each written by its own app server, merging now and then."""
    replicas = [CartState(), CartState(), CartState()]
    for _ in range(draw(st.integers(0, 20))):
        i = draw(st.integers(0, 2))
        replicas[i] = apply(replicas[i], draw(op), replicas)
    return replicas


@settings(max_examples=35, deadline=None)
@given(histories())
def test_merge_is_commutative_associative_and_idempotent(replicas: list[CartState]) -> None:
    a, b, c = replicas
    assert a.merge(b) == b.merge(a)
    assert a.merge(b).merge(c) == a.merge(b.merge(c))
    assert a.merge(a) == a
    assert a.merge(b).lines() == b.merge(a).lines()


@settings(max_examples=35, deadline=None)
@given(histories())
def test_no_add_is_lost_and_no_removed_line_comes_back(replicas: list[CartState]) -> None:
    everything = replicas[0].merge(replicas[1]).merge(replicas[2])
    removed = set().union(*(r.removed for r in replicas))
    for r in replicas:
        for dot in r.dots.values():
            if dot.id in removed:
                # removed somewhere: dead everywhere it is merged, for ever
                assert dot.id in everything.removed
            else:
                assert dot.id in everything.dots
                assert dot.id not in everything.removed
    expected: dict[str, int] = {}
    for dot in everything.dots.values():
        if dot.id not in removed:
            expected[dot.sku] = expected.get(dot.sku, 0) + dot.qty
    assert everything.lines() == dict(sorted(expected.items()))
    compacted = everything.compact()  # every copy has seen every removal here
    assert compacted.lines() == everything.lines()
    assert not compacted.removed
    assert compacted.merge(everything.compact()) == compacted


@settings(max_examples=25, deadline=None)
@given(histories(), st.sampled_from(SKUS))
def test_a_removed_line_stays_removed_when_an_old_copy_merges_in(
    replicas: list[CartState], sku: str
) -> None:
    old = replicas[0]
    newer = old.merge(replicas[1]).remove(sku)
    assert newer.quantity(sku) == 0
    assert newer.merge(old).quantity(sku) == 0
    assert old.merge(newer).quantity(sku) == 0


def test_concurrent_add_wins_over_remove() -> None:
    base = CartState().add("A", 1)
    removed = base.remove("A")
    added = base.add("A", 2)  # a concurrent add the remover had not seen
    assert removed.merge(added).lines() == {"A": 2}


def test_json_round_trip() -> None:
    state = CartState().add("A", 2).add("B", 1).remove("A").add("A", 3)
    assert CartState.from_json(state.to_json()) == state


write = st.one_of(
    st.tuples(st.just("add"), st.integers(0, 2), st.sampled_from(SKUS), st.integers(1, 5)),
    st.tuples(st.just("set"), st.integers(0, 2), st.sampled_from(SKUS), st.integers(0, 5)),
    st.tuples(st.just("remove"), st.integers(0, 2), st.sampled_from(SKUS), st.just(0)),
    st.tuples(st.just("merge"), st.integers(0, 2), st.integers(0, 2), st.just(0)),
    st.tuples(st.just("old"), st.integers(0, 2), st.integers(0, 99), st.just(0)),
)


@settings(max_examples=60, deadline=None)
@given(st.lists(write, max_size=20))
def test_compaction_on_every_write_never_brings_a_removed_line_back(
    steps: list[tuple[str, int, object, int]],
) -> None:
    """The persisted carts' rules (docs/commerce.md, "Compacting the removal markers").

    Three stored carts, compacted on every write as ``Carts`` does: a write
    applies its operation to the stored row; a merge folds an open cart into
    another and closes it. Every copy taken in between, before compaction
    (the state a write computed, tombstones and all), is kept; merging one
    back into its cart ("old") is within the rules when it was taken at or
    after the cart's last removal (it carries that removal's tombstones: a
    copy from before it is what the rules forbid, see the next test). After
    each step: no removed dot is live in an open cart (a merged cart is
    closed for good), every other dot ever added is live in exactly one open
    cart, and compacting keeps the lines.
    """
    rows = [CartState(), CartState(), CartState()]
    is_open = [True, True, True]
    copies: list[list[CartState]] = [[], [], []]  # per cart: copies taken before compaction
    since = [0, 0, 0]  # per cart: the first copy that has seen its last removal
    removed: set[str] = set()
    added: set[str] = set()
    for kind, i, arg, qty in steps:
        if not is_open[i]:
            continue
        if kind == "merge":
            j = int(str(arg))
            if j == i or not is_open[j]:
                continue
            before = rows[j].merge(rows[i])  # source i into target j, as Carts.merge
            is_open[i] = False
        elif kind == "old":
            eligible = copies[i][since[i] :]
            if not eligible:
                continue
            j, before = i, rows[i].merge(eligible[int(str(arg)) % len(eligible)])
        else:
            j = i
            before = apply(rows[i], (kind, arg, qty), rows)
            added |= set(before.dots) - set(rows[i].dots)
            if before.removed - rows[i].removed:
                removed |= before.removed - rows[i].removed
                since[j] = len(copies[j])
        copies[j].append(before)
        rows[j] = before.compact()
        assert rows[j].lines() == before.lines()
        assert not rows[j].removed
        live = [d for n, row in enumerate(rows) if is_open[n] for d in row.dots]
        assert not removed & set(live), "a removed dot is live again"  # closed carts are done
        assert sorted(live) == sorted(added - removed)  # none lost, none twice


def test_a_copy_taken_before_the_removal_would_bring_it_back() -> None:
    """Why ``Carts`` never merges a copy it read before a write: that copy lacks the tombstone."""
    stale = CartState().add("A", 1)
    stored = stale.remove("A")
    assert stored.merge(stale).lines() == {}  # the tombstone is still there: safe
    assert stored.compact().merge(stale).lines() == {"A": 1}  # compacted: it comes back


@pytest.mark.parametrize(
    "text", ["[" * 100_000, '{"d": ' + "[" * 3000 + "]" * 3000 + ', "r": []}', "{}", '{"d": 1}']
)
def test_a_stored_cart_that_is_not_one_is_a_typed_error(text: str) -> None:
    with pytest.raises(InvalidInputError, match="stored cart"):
        CartState.from_json(text)
