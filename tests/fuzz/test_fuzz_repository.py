"""Fuzzing the repository's outside input: consistency tokens, group names, keys.

Tokens come back from cookies and headers, keys from URLs: whatever arrives,
the repository answers or raises a ``commercekit.errors`` error within a time
bound, and nothing already stored changes.
"""

from __future__ import annotations

import base64
import contextlib
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import select

from commercekit.repository import (
    ConsistencyToken,
    Database,
    GtidPosition,
    Lsn,
    Node,
    ReplicatedTopology,
    ShardedTopology,
    decode_cursor,
    encode_cursor,
    sqlite_engine,
)
from commercekit.repository._policy._position import parse_position
from tests.fuzz.hostile import (
    deeply_nested_json,
    hostile_bytes,
    hostile_text,
    json_value,
    not_a_string,
    only_ours,
)
from tests.repository.models import Base, Customer, customer

# Printed tokens with hostile parts: the parser's own grammar, bent.
token_like = st.builds(
    lambda group, kind, rest: f"ck1;{group}={kind}:{rest}",
    hostile_text,
    st.sampled_from(["lsn", "gtid", "ts", "LSN", ""]),
    hostile_text,
)
any_token = st.one_of(hostile_text, token_like, not_a_string, hostile_bytes)
any_key = st.one_of(
    hostile_text,
    hostile_bytes,
    st.integers(),
    st.floats(),
    st.none(),
    st.tuples(hostile_text, st.integers()),
    st.lists(st.integers(), max_size=3),
)
_FUZZ = settings(
    max_examples=60,  # each example makes about 15 reads and a write on SQLite
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)


class Shop:
    """A primary, two replicas and a sharded twin, all SQLite, with rows that must not change."""

    def __init__(self, root: Path) -> None:
        engines = {n: sqlite_engine(root / f"{n}.db") for n in ("primary", "r1", "r2", "s2")}
        for engine in engines.values():
            Base.metadata.create_all(engine)
        self.engines = engines
        main = ReplicatedTopology(
            Node("primary", engines["primary"]),
            [Node("r1", engines["r1"]), Node("r2", engines["r2"])],
        )
        self.db = Database(main)
        self.sharded = Database(
            ShardedTopology([main, ReplicatedTopology(Node("p2", engines["s2"]), name="s2")]),
            shard_keys={Customer: "id"},
        )
        for engine in engines.values():
            with engine.begin() as conn:
                conn.execute(Customer.__table__.insert(), [_row(i) for i in range(1, 4)])
        self.before = self.snapshot()

    def snapshot(self) -> dict[str, list[tuple[Any, ...]]]:
        out = {}
        for name, engine in self.engines.items():
            with engine.connect() as conn:
                rows = conn.execute(select(Customer.__table__).order_by(Customer.id))
                out[name] = [tuple(r) for r in rows]
        return out

    def close(self) -> None:
        self.db.close()
        self.sharded.close()
        for engine in self.engines.values():
            engine.dispose()


def _row(i: int) -> dict[str, Any]:
    c = customer(i)
    return {"id": c.id, "name": c.name, "email": c.email, "tier": "basic", "version": 1}


@pytest.fixture(scope="module")
def shop(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Shop]:
    s = Shop(tmp_path_factory.mktemp("fuzz-repo"))
    yield s
    s.close()


@given(any_token)
def test_token_parsing_answers_or_refuses_typed(text: Any) -> None:
    parsed = only_ours(ConsistencyToken.parse, text, bound_s=0.5)
    if parsed is not None:
        assert ConsistencyToken.parse(str(parsed)) == parsed  # what parses, round-trips
        assert "\n" not in str(parsed)


def _b64(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


@given(
    hostile_text
    | not_a_string
    | hostile_bytes.map(_b64)
    | json_value.map(lambda v: _b64(json.dumps(v).encode()))
    | st.integers(1, 3100).map(lambda n: _b64(deeply_nested_json(n)))
)
def test_page_cursors_answer_or_refuse_typed(cursor: Any) -> None:
    """Cursors come back in page links: whatever a client edits in, typed errors only."""
    values = only_ours(decode_cursor, cursor, bound_s=0.5)
    if values is not None:  # what decodes, encodes again (NaN is no equal of itself)
        again = encode_cursor(values)
        assert encode_cursor(decode_cursor(again)) == again


@given(hostile_text | not_a_string)
def test_positions_and_group_names_answer_or_refuse_typed(text: Any) -> None:
    for call in (Lsn.parse, GtidPosition.parse, parse_position):
        only_ours(call, text, bound_s=0.5)
    token = only_ours(ConsistencyToken.of, text, Lsn(1), bound_s=0.5)
    if token is not None:
        assert ConsistencyToken.parse(str(token)) == token
    only_ours(ConsistencyToken().merge, text, bound_s=0.5)
    only_ours(ReplicatedTopology, Node("p", sqlite_engine()), name=text, bound_s=0.5)


@_FUZZ
@given(token=any_token, key=any_key)
def test_reads_with_hostile_tokens_and_keys_change_nothing(
    shop: Shop, token: Any, key: Any
) -> None:
    repo = shop.db.repository(Customer)
    only_ours(repo.get, key, token=token, bound_s=2.0)
    only_ours(repo.get_many, [key, 1], token=token, bound_s=2.0)
    only_ours(repo.count, token=token, bound_s=2.0)
    only_ours(repo.find, token=token, after=key if isinstance(key, str) else None, bound_s=2.0)

    def read_only_work() -> object:
        with shop.db.unit_of_work(read_only=True, token=token, key=key) as uow:
            items = uow.repository(Customer)
            return items.get(1), only_ours(items.get, key), only_ours(items.get_many, [key])

    only_ours(read_only_work, bound_s=2.0)
    only_ours(shop.sharded.shard_for, key, bound_s=0.5)
    only_ours(shop.sharded.repository(Customer).get, key, token=token, bound_s=2.0)
    assert shop.snapshot() == shop.before


@_FUZZ
@given(token=any_token, key=any_key)
def test_writes_with_hostile_tokens_and_keys_store_nothing_half_done(
    shop: Shop, token: Any, key: Any
) -> None:
    def write() -> None:
        with shop.sharded.unit_of_work(token=token, shard_key=key) as uow:
            uow.repository(Customer).update(1, name="changed")
            raise _Undo  # a hostile caller's work that ends in an error: nothing stays

    only_ours(_undone, write, bound_s=2.0)
    assert shop.snapshot() == shop.before


class _Undo(Exception):
    pass


def _undone(write: Any) -> None:
    with contextlib.suppress(_Undo):
        write()
