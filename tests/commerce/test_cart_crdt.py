"""The cart's add-wins observed-remove map: merge laws, no lost adds, no resurrected lines."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from commercekit.commerce.cart import CartState

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


@settings(max_examples=60, deadline=None)
@given(histories())
def test_merge_is_commutative_associative_and_idempotent(replicas: list[CartState]) -> None:
    a, b, c = replicas
    assert a.merge(b) == b.merge(a)
    assert a.merge(b).merge(c) == a.merge(b.merge(c))
    assert a.merge(a) == a
    assert a.merge(b).lines() == b.merge(a).lines()


@settings(max_examples=60, deadline=None)
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


@settings(max_examples=40, deadline=None)
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
