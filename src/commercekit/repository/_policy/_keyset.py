"""Ordering and keyset pagination: order keys, the "after this row" predicate, cursors.

A page is fetched with ``WHERE (k1, k2, ...) > (v1, v2, ...)`` written as an
OR-chain (so each key may be ascending or descending, on every engine), and
the primary key is appended to the order so the order is total. The cursor is
the last row's key values, as an opaque URL-safe string. Order columns must
not hold NULLs.
"""

from __future__ import annotations

import base64
import datetime as dt
import decimal
import functools
import json
import uuid
from collections.abc import Callable, Sequence
from typing import Any, cast

import attrs
from sqlalchemy import and_, inspect, or_
from sqlalchemy.orm import InstrumentedAttribute
from sqlalchemy.sql import ColumnElement, operators
from sqlalchemy.sql.elements import UnaryExpression

from commercekit._json import read_json
from commercekit.errors import InvalidInputError

__all__ = [
    "OrderKey",
    "OrderSpec",
    "after_clause",
    "column_names",
    "decode_cursor",
    "encode_cursor",
    "merge_key",
    "order_clauses",
    "order_keys",
    "row_values",
]

OrderSpec = str | InstrumentedAttribute[Any] | UnaryExpression[Any]
"""An order key: ``"name"``, ``"-name"`` (descending), ``Model.name`` or ``desc(Model.name)``."""


@attrs.frozen
class OrderKey:
    """One mapped attribute to order by, and its direction."""

    name: str
    descending: bool = False


def _key_of(model: type[Any], spec: OrderSpec, names: frozenset[str]) -> OrderKey:
    if isinstance(spec, str):
        descending = spec.startswith("-")
        name = spec.lstrip("-+")
    elif isinstance(spec, UnaryExpression):
        descending = spec.modifier is operators.desc_op
        element = spec.element
        name = str(getattr(element, "key", None) or getattr(element, "name", ""))
    else:
        descending, name = False, spec.key
    if name not in names:
        raise InvalidInputError(f"{model.__name__} has no column attribute {name!r} to order by")
    return OrderKey(name, descending)


_MAX_CACHED = 4096
_names: dict[type[Any], frozenset[str]] = {}
_named_keys: dict[tuple[type[Any], tuple[str, ...]], tuple[OrderKey, ...]] = {}
_clauses: dict[tuple[type[Any], tuple[OrderKey, ...]], tuple[ColumnElement[Any], ...]] = {}


def _remember(cache: dict[Any, Any], key: Any, value: Any) -> None:
    # Idempotent values, so a race only computes twice; the bound keeps orders
    # chosen from request parameters from growing the cache without end.
    if len(cache) >= _MAX_CACHED:
        cache.clear()
    cache[key] = value


def column_names(model: type[Any]) -> frozenset[str]:
    """The mapped column attribute names of *model* (read once per class)."""
    names = _names.get(model)
    if names is None:
        names = frozenset(attr.key for attr in inspect(model).column_attrs)
        _remember(_names, model, names)
    return names


def order_keys(model: type[Any], order_by: Sequence[OrderSpec]) -> tuple[OrderKey, ...]:
    """Normalize *order_by* for *model*, appending its primary key to make the order total."""
    spec = tuple(order_by)
    if not all(isinstance(item, str) for item in spec):
        return _order_keys(model, spec)
    # The usual spelling, ("-created", "name"): worked out once per model and order.
    key = (model, cast("tuple[str, ...]", spec))
    keys = _named_keys.get(key)
    if keys is None:
        keys = _order_keys(model, spec)
        _remember(_named_keys, key, keys)
    return keys


def _order_keys(model: type[Any], spec: tuple[OrderSpec, ...]) -> tuple[OrderKey, ...]:
    mapper = inspect(model)
    names = column_names(model)
    keys = [_key_of(model, item, names) for item in spec]
    seen = {k.name for k in keys}
    for column in mapper.primary_key:
        name = mapper.get_property_by_column(column).key
        if name not in seen:
            keys.append(OrderKey(name))
    return tuple(keys)


def order_clauses(model: type[Any], keys: tuple[OrderKey, ...]) -> tuple[ColumnElement[Any], ...]:
    """ORDER BY clauses for *keys* (immutable expressions, so built once per order)."""
    clauses = _clauses.get((model, keys))
    if clauses is None:
        clauses = tuple(
            getattr(model, k.name).desc() if k.descending else getattr(model, k.name).asc()
            for k in keys
        )
        _remember(_clauses, (model, keys), clauses)
    return clauses


def after_clause(
    model: type[Any], keys: Sequence[OrderKey], values: Sequence[object]
) -> ColumnElement[bool]:
    """The predicate "comes after the row whose key values are *values*" in *keys* order."""
    if len(values) != len(keys):
        raise InvalidInputError(
            f"the cursor has {len(values)} values but the order has {len(keys)} keys"
        )
    branches = []
    for i, key in enumerate(keys):
        column = getattr(model, key.name)
        equal = [getattr(model, k.name) == v for k, v in zip(keys[:i], values[:i], strict=True)]
        step = column < values[i] if key.descending else column > values[i]
        branches.append(and_(*equal, step))
    return or_(*branches)


def row_values(obj: object, keys: Sequence[OrderKey]) -> tuple[object, ...]:
    """The key values of *obj*, the cursor of the page that ends with it."""
    return tuple(getattr(obj, k.name) for k in keys)


def merge_key(keys: Sequence[OrderKey]) -> Callable[[object], Any]:
    """A sort key for objects in *keys* order (for merging pages from several shards)."""

    def compare(a: object, b: object) -> int:
        for key in keys:
            x, y = getattr(a, key.name), getattr(b, key.name)
            if x != y:
                less = x < y
                return (1 if less else -1) if key.descending else (-1 if less else 1)
        return 0

    return functools.cmp_to_key(compare)


def _tag(value: object) -> list[object]:
    if value is None or isinstance(value, bool | int | float | str):
        return ["v", value]
    if isinstance(value, dt.datetime):
        return ["dt", value.isoformat()]
    if isinstance(value, dt.date):
        return ["d", value.isoformat()]
    if isinstance(value, decimal.Decimal):
        return ["dec", str(value)]
    if isinstance(value, uuid.UUID):
        return ["u", str(value)]
    if isinstance(value, bytes):
        return ["b", base64.urlsafe_b64encode(value).decode()]
    raise InvalidInputError(f"cannot put a {type(value).__name__} in a page cursor")


def _untag(item: object) -> object:
    if not isinstance(item, list) or len(item) != 2 or not isinstance(item[0], str):
        raise InvalidInputError("malformed page cursor")
    tag, raw = item
    if tag == "v":
        # a JSON scalar: decode_cursor reads at most 2 levels deep (the list of
        # values, each a [tag, raw] pair), so *raw* is never an array or object
        return raw
    if not isinstance(raw, str):
        raise InvalidInputError("malformed page cursor")
    parse: dict[str, Callable[[str], object]] = {
        "dt": dt.datetime.fromisoformat,
        "d": dt.date.fromisoformat,
        "dec": decimal.Decimal,
        "u": uuid.UUID,
        "b": base64.urlsafe_b64decode,
    }
    if tag not in parse:
        raise InvalidInputError("malformed page cursor")
    return parse[tag](raw)


_CURSOR_JSON = json.JSONEncoder(separators=(",", ":"))
"""``json.dumps(..., separators=...)`` without building an encoder on every page."""


def encode_cursor(values: Sequence[object]) -> str:
    """An opaque, URL-safe cursor for *values*."""
    text = _CURSOR_JSON.encode([_tag(v) for v in values])
    return base64.urlsafe_b64encode(text.encode()).decode().rstrip("=")


def decode_cursor(cursor: str) -> tuple[object, ...]:
    """The values of a cursor made by :func:`encode_cursor`.

    Anything else (a page link someone edited, however crafted) is
    :class:`InvalidInputError`.
    """
    if not isinstance(cursor, str):
        raise InvalidInputError(f"a page cursor is a str, not {type(cursor).__name__}")
    if len(cursor) > 4096:
        raise InvalidInputError("a page cursor is at most 4096 characters")
    try:
        raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4))
    except ValueError as exc:
        raise InvalidInputError(f"malformed page cursor: {cursor[:40]!r}") from exc
    items = read_json(raw, what=f"the page cursor {cursor[:40]!r}", max_depth=2)
    if not isinstance(items, list):
        raise InvalidInputError("malformed page cursor")
    try:
        return tuple(_untag(item) for item in items)
    except (ValueError, decimal.InvalidOperation) as exc:
        raise InvalidInputError(f"malformed page cursor: {cursor[:40]!r}") from exc
