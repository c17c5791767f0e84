"""Hypothesis strategies for the repository's values (positions, tokens, replica views)."""

from __future__ import annotations

from hypothesis import strategies as st

from commercekit.repository import CommitTime, GtidPosition, Lsn, ReplicaView


def lsns() -> st.SearchStrategy[Lsn]:
    return st.builds(Lsn, st.integers(0, 2**64 - 1))


def gtids() -> st.SearchStrategy[GtidPosition]:
    triple = st.tuples(st.integers(0, 3), st.integers(1, 5), st.integers(0, 10**6))
    return st.lists(triple, max_size=4, unique_by=lambda t: t[0]).map(
        lambda ts: GtidPosition(tuple(ts))
    )


def commit_times() -> st.SearchStrategy[CommitTime]:
    return st.builds(CommitTime, st.floats(0, 4e9, allow_nan=False, allow_infinity=False))


def positions() -> st.SearchStrategy[Lsn | GtidPosition | CommitTime]:
    return st.one_of(lsns(), gtids(), commit_times())


def replica_views(
    position: st.SearchStrategy[Lsn | GtidPosition | CommitTime] | None = None,
) -> st.SearchStrategy[list[ReplicaView]]:
    view = st.builds(
        ReplicaView,
        name=st.just("x"),
        available=st.booleans(),
        lag_s=st.none() | st.floats(0, 100, allow_nan=False),
        replayed=st.none() | (positions() if position is None else position),
        wait_failed_at_s=st.none() | st.floats(0, 100, allow_nan=False),
    )
    return st.lists(view, max_size=5).map(
        lambda vs: [
            ReplicaView(
                name=f"r{i}",
                available=v.available,
                lag_s=v.lag_s,
                replayed=v.replayed,
                wait_failed_at_s=v.wait_failed_at_s,
            )
            for i, v in enumerate(vs)
        ]
    )
