"""commercekit._json: the one reader of JSON from outside refuses anything else typed."""

from __future__ import annotations

import pytest

from commercekit._json import MAX_DEPTH, read_json, read_json_object
from commercekit.errors import InvalidInputError


@pytest.mark.parametrize(
    ("text", "reason"),
    [
        (b"[" * 100_000, "nested too deep"),  # RecursionError in the decoder
        (b"[" * 3000 + b"]" * 3000, "nested too deep"),
        ("[" * (MAX_DEPTH + 1) + "]" * (MAX_DEPTH + 1), f"more than {MAX_DEPTH} levels"),
        ('{"a":' * (MAX_DEPTH + 1) + "1" + "}" * (MAX_DEPTH + 1), f"more than {MAX_DEPTH}"),
        ("9" * 5000, "limit"),  # past int's 4,300-digit conversion limit
        (b"\xff\xfe\x00", "not UTF-8"),
        (b"\x80abc", "not UTF-8"),
        ("{", "at character 1"),
        ("", "at character 0"),
        (7, "int, not text"),
        (None, "NoneType, not text"),
    ],
)
def test_anything_but_json_is_a_typed_error(text: object, reason: str) -> None:
    with pytest.raises(InvalidInputError, match=reason) as caught:
        read_json(text, what="the test body")  # type: ignore[arg-type]
    assert str(caught.value).startswith("the test body ")
    assert caught.value.__cause__ is None  # a JSONDecodeError would carry the whole document


def test_json_within_the_depth_reads() -> None:
    deep = "[" * MAX_DEPTH + "]" * MAX_DEPTH
    assert read_json(deep, what="x") is not None
    assert read_json('{"a": [1, {"b": null}]}', what="x") == {"a": [1, {"b": None}]}
    assert read_json("[[1]]", what="x", max_depth=2) == [[1]]
    with pytest.raises(InvalidInputError, match="more than 1 levels"):
        read_json("[[1]]", what="x", max_depth=1)
    assert read_json("3", what="x", max_depth=0) == 3


def test_an_object_is_asked_for() -> None:
    assert read_json_object(b'{"id": "evt_1"}', what="x") == {"id": "evt_1"}
    for other in ("[]", '"text"', "1", "null"):
        with pytest.raises(InvalidInputError, match="is not a JSON object"):
            read_json_object(other, what="x")
