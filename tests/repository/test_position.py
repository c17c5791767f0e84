from __future__ import annotations

import pytest
from hypothesis import given

from commercekit.errors import ConfigurationError, InvalidInputError
from commercekit.repository import (
    CommitTime,
    ConsistencyToken,
    GtidPosition,
    Lsn,
    Node,
    ReplicatedTopology,
    sqlite_engine,
)
from commercekit.repository._policy._position import covers, format_position, later, parse_position
from commercekit.repository._policy._token import as_token

from .strategies import gtids, lsns, positions


def test_lsn_parses_postgres_form() -> None:
    assert Lsn.parse("16/B374D848").value == (0x16 << 32) | 0xB374D848
    assert str(Lsn.parse("0/3000148")) == "0/3000148"


@pytest.mark.parametrize("bad", ["", "16", "x/1", "1/2/3", "123456789/0"])
def test_bad_lsn_is_refused(bad: str) -> None:
    with pytest.raises(InvalidInputError):
        Lsn.parse(bad)


def test_gtid_covers_per_domain() -> None:
    have = GtidPosition.parse("0-1-10,1-2-5")
    assert covers(have, GtidPosition.parse("0-1-10"))
    assert covers(have, GtidPosition.parse("0-3-9,1-2-5"))
    assert not covers(have, GtidPosition.parse("0-1-11"))
    assert not covers(have, GtidPosition.parse("2-1-1"))


def test_kinds_never_cover_each_other() -> None:
    assert not covers(Lsn(10), GtidPosition.parse("0-1-1"))
    assert not covers(CommitTime(10.0), CommitTime(1.0))


@given(positions())
def test_positions_round_trip(position: Lsn | GtidPosition | CommitTime) -> None:
    assert parse_position(format_position(position)) == position


@given(lsns(), lsns())
def test_later_lsn_covers_both(a: Lsn, b: Lsn) -> None:
    merged = later(a, b)
    assert covers(merged, a)
    assert covers(merged, b)


@given(gtids(), gtids())
def test_later_gtid_covers_both(a: GtidPosition, b: GtidPosition) -> None:
    merged = later(a, b)
    assert covers(merged, a)
    assert covers(merged, b)


def test_token_round_trips_and_merges() -> None:
    a = ConsistencyToken.of("main", Lsn.parse("0/10"))
    b = ConsistencyToken.of("s2", GtidPosition.parse("0-1-7"))
    c = ConsistencyToken.of("main", Lsn.parse("0/20"))
    merged = a.merge(b).merge(c)
    text = str(merged)
    assert text == "ck1;main=lsn:0/20;s2=gtid:0-1-7"
    assert ConsistencyToken.parse(text) == merged
    assert merged.get("main") == Lsn.parse("0/20")
    assert merged.get("nope") is None
    assert str(ConsistencyToken()) == ""
    assert not ConsistencyToken.parse("")


@pytest.mark.parametrize(
    "bad",
    ["x", "ck2;main=lsn:0/1", "ck1;main", "ck1;a=lsn:0/1;a=lsn:0/2", "ck1;m=zz:1", "ck1;" * 2000],
)
def test_bad_tokens_are_refused(bad: str) -> None:
    with pytest.raises(InvalidInputError):
        ConsistencyToken.parse(bad)


@given(positions(), positions())
def test_any_token_round_trips(
    a: Lsn | GtidPosition | CommitTime, b: Lsn | GtidPosition | CommitTime
) -> None:
    token = ConsistencyToken.of("g1", a).merge(ConsistencyToken.of("g2", b))
    assert ConsistencyToken.parse(str(token)) == token


@pytest.mark.parametrize(
    "bad",
    [
        "ck1;main\n=lsn:0/1",  # `$` matched before a final newline
        "ck1;main=lsn:0/1\n",
        "ck1;main=gtid:0-1-1\n",
        "ck1;main=gtid:\u0661-1-1",  # Arabic-Indic digits are not ASCII digits
        "ck1;main=lsn:\uff10/1",
        "ck1;main=ts:\u0661\u0662",
        "ck1;main=ts:1_000",
        "ck1;main=ts: 12",
        "ck1;main=ts:nan",
        "ck1;main=ts:1e400",
    ],
)
def test_tokens_with_a_trailing_newline_or_foreign_digits_are_refused(bad: str) -> None:
    with pytest.raises(InvalidInputError):
        ConsistencyToken.parse(bad)


@pytest.mark.parametrize("bad", ["main\n", "main\n\n", "\nmain", "m\u0430in", ""])
def test_group_names_are_checked_whole(bad: str) -> None:
    with pytest.raises(InvalidInputError):
        ConsistencyToken.of(bad, Lsn(1))


@pytest.mark.parametrize("bad", ["0/1\n", "0/1 x", "\u0661/1"])
def test_lsn_text_is_checked_whole(bad: str) -> None:
    with pytest.raises(InvalidInputError):
        Lsn.parse(bad)


@pytest.mark.parametrize("bad", ["0-1-1\n-", "0-1-1x", "\u0661-1-1", "0-1-\u00b2"])
def test_gtid_text_is_checked_whole(bad: str) -> None:
    with pytest.raises(InvalidInputError):
        GtidPosition.parse(bad)


@pytest.mark.parametrize("bad", [12, b"ck1;main=lsn:0/1", ["ck1"], 1.5, object()])
def test_tokens_of_the_wrong_type_are_refused_typed(bad: object) -> None:
    with pytest.raises(InvalidInputError, match="consistency token"):
        ConsistencyToken.parse(bad)  # type: ignore[arg-type]
    with pytest.raises(InvalidInputError, match="consistency token"):
        as_token(bad)  # type: ignore[arg-type]


@pytest.mark.parametrize("bad", [12, b"main", None, ("main",)])
def test_group_names_of_the_wrong_type_are_refused_typed(bad: object) -> None:
    with pytest.raises(InvalidInputError, match="group name"):
        ConsistencyToken.of(bad, Lsn(1))  # type: ignore[arg-type]


@pytest.mark.parametrize("bad", ["main\n", "", "a b", 7])
def test_a_topology_refuses_a_group_name_no_token_could_carry(bad: object) -> None:
    with pytest.raises(ConfigurationError, match="group name"):
        ReplicatedTopology(Node("p", sqlite_engine()), name=bad)  # type: ignore[arg-type]
