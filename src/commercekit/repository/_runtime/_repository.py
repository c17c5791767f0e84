"""``Repository``: typed get / find / add / update / delete over one SQLAlchemy session.

A repository is handed out by a unit of work (``uow.repository(Customer)``)
and works on its session, so everything it does commits or rolls back with
the unit of work. Plain SQLAlchemy stays one attribute away (``.session``).
"""

from __future__ import annotations

import builtins
from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import Any, Generic, TypeVar

import attrs
from sqlalchemy import ColumnElement, func, inspect, select, tuple_
from sqlalchemy import exc as sa_exc
from sqlalchemy.orm import Mapped, Session, declared_attr, mapped_column
from sqlalchemy.orm import exc as orm_exc

from commercekit.errors import InvalidInputError, NotFoundError, StaleVersionError
from commercekit.repository._errors import translate
from commercekit.repository._policy._keyset import (
    OrderSpec,
    after_clause,
    column_names,
    decode_cursor,
    encode_cursor,
    order_clauses,
    order_keys,
    row_values,
)

__all__ = ["Page", "Repository", "Versioned", "model_info"]

T = TypeVar("T")
_MAX_LIMIT = 10_000


class Versioned:
    """Mixin: an integer ``version`` column that SQLAlchemy checks on every UPDATE and DELETE.

    A write whose row changed since it was read matches no row and raises
    :class:`StaleVersionError` (optimistic concurrency).
    """

    version: Mapped[int] = mapped_column(nullable=False, default=1)

    @declared_attr.directive
    def __mapper_args__(cls) -> dict[str, Any]:
        return {"version_id_col": cls.__table__.c.version}  # type: ignore[attr-defined]


@attrs.frozen
class Page(Generic[T]):
    """One page of a keyset-paginated query: the items, and the cursor of the next page."""

    items: tuple[T, ...]
    next_after: str | None
    """Pass as ``after=`` for the next page; None on the last page."""

    def __iter__(self) -> Any:
        return iter(self.items)

    def __len__(self) -> int:
        return len(self.items)


def _where(
    model: type[Any], where: Sequence[ColumnElement[bool]], equals: Mapping[str, object]
) -> list[ColumnElement[bool]]:
    clauses = list(where)
    names = column_names(model)
    for name, value in equals.items():
        if name not in names:
            raise InvalidInputError(f"{model.__name__} has no column attribute {name!r}")
        clauses.append(getattr(model, name) == value)
    return clauses


_model_infos: dict[type[Any], tuple[list[str], str | None]] = {}


def model_info(model: type[Any]) -> tuple[list[str], str | None]:
    """A mapped class's primary-key attribute names and version attribute (computed once)."""
    info = _model_infos.get(model)
    if info is None:
        mapper = inspect(model)
        pk = [mapper.get_property_by_column(c).key for c in mapper.primary_key]
        version_col = mapper.version_id_col
        version = None if version_col is None else mapper.get_property_by_column(version_col).key
        info = _model_infos[model] = (pk, version)
    return info


class Repository(Generic[T]):
    """Typed access to one mapped class through one session.

    *node* names where the session runs (for errors); *guard* vets objects
    before they are added (a sharded database checks they belong to its shard).
    """

    __slots__ = ("_guard", "_model", "_node", "_pk", "_session", "_version")

    def __init__(
        self,
        model: type[T],
        session: Session,
        *,
        node: str = "primary",
        guard: Callable[[object], None] | None = None,
    ) -> None:
        self._model = model
        self._session = session
        self._node = node
        self._guard = guard
        self._pk, self._version = model_info(model)

    @property
    def model(self) -> type[T]:
        """The mapped class."""
        return self._model

    @property
    def session(self) -> Session:
        """The SQLAlchemy session, for anything the repository does not cover."""
        return self._session

    def _fail(self, exc: Exception) -> Exception:
        return translate(exc, node=self._node)

    # -- reads --------------------------------------------------------------

    def get(self, key: Any) -> T | None:
        """The object with primary key *key* (a tuple for composite keys), or None."""
        if key is None:
            raise InvalidInputError(f"a {self._model.__name__} key is required, got None")
        try:
            return self._session.get(self._model, key)
        except (sa_exc.DBAPIError, orm_exc.StaleDataError) as exc:
            raise self._fail(exc) from exc
        except (sa_exc.SQLAlchemyError, TypeError, ValueError, OverflowError) as exc:
            raise self._bad_key(key, exc) from None

    def require(self, key: Any) -> T:
        """The object with primary key *key*; :class:`NotFoundError` when there is none."""
        found = self.get(key)
        if found is None:
            raise NotFoundError(f"no {self._model.__name__} with key {key!r}")
        return found

    def get_many(self, keys: Iterable[Any]) -> list[T]:
        """The objects with these keys that exist, in the order of *keys* (one query)."""
        try:
            wanted = list(dict.fromkeys(keys))
        except TypeError as exc:
            raise self._bad_key(keys, exc) from None
        if not wanted:
            return []
        columns = [getattr(self._model, name) for name in self._pk]
        try:
            if len(columns) == 1:
                clause = columns[0].in_(wanted)
            else:
                clause = tuple_(*columns).in_([tuple(k) for k in wanted])
            rows = self._scalars(select(self._model).where(clause))
        except (sa_exc.SQLAlchemyError, TypeError, ValueError, OverflowError) as exc:
            if isinstance(exc, sa_exc.DBAPIError):
                raise
            raise self._bad_key(wanted[0], exc) from None
        found = {self._key_of(obj): obj for obj in rows}
        return [found[k] for k in wanted if k in found]

    def _bad_key(self, key: object, exc: Exception) -> InvalidInputError:
        return InvalidInputError(
            f"not a {self._model.__name__} key: a {type(key).__name__} "
            f"({type(exc).__name__}); pass the primary key value (a tuple for composite keys)"
        )

    def _key_of(self, obj: object) -> Any:
        values = tuple(getattr(obj, name) for name in self._pk)
        return values[0] if len(values) == 1 else values

    def _scalars(self, statement: Any) -> list[T]:
        try:
            return list(self._session.scalars(statement))
        except sa_exc.DBAPIError as exc:
            raise self._fail(exc) from exc
        except OverflowError as exc:  # SQLite's driver, before anything is sent
            raise _too_big(self._model) from exc

    def find(
        self,
        *where: ColumnElement[bool],
        order_by: Sequence[OrderSpec] = (),
        limit: int = 50,
        after: str | None = None,
        **equals: object,
    ) -> Page[T]:
        """One page of matches, ordered by *order_by* then the primary key.

        *where* takes SQLAlchemy conditions (``Customer.age >= 18``), *equals*
        plain equality (``status="paid"``). Pass the page's ``next_after`` as
        *after* for the next page (keyset pagination: no OFFSET, stable under inserts).
        """
        if not 0 < limit <= _MAX_LIMIT:
            raise InvalidInputError(f"limit must be between 1 and {_MAX_LIMIT}, got {limit!r}")
        keys = order_keys(self._model, order_by)
        clauses = _where(self._model, where, equals)
        if after is not None:
            clauses.append(after_clause(self._model, keys, decode_cursor(after)))
        statement = (
            select(self._model)
            .where(*clauses)
            .order_by(*order_clauses(self._model, keys))
            .limit(limit + 1)
        )
        rows = self._scalars(statement)
        more = len(rows) > limit
        items = tuple(rows[:limit])
        cursor = encode_cursor(row_values(items[-1], keys)) if more and items else None
        return Page(items, cursor)

    def list(
        self,
        *where: ColumnElement[bool],
        order_by: Sequence[OrderSpec] = (),
        limit: int | None = None,
        **equals: object,
    ) -> list[T]:
        """Every match (up to *limit*), ordered by *order_by* then the primary key."""
        keys = order_keys(self._model, order_by)
        statement = (
            select(self._model)
            .where(*_where(self._model, where, equals))
            .order_by(*order_clauses(self._model, keys))
        )
        if limit is not None:
            statement = statement.limit(limit)
        return self._scalars(statement)

    def count(self, *where: ColumnElement[bool], **equals: object) -> int:
        """How many rows match."""
        statement = (
            select(func.count()).select_from(self._model).where(*_where(self._model, where, equals))
        )
        try:
            return int(self._session.scalar(statement) or 0)
        except sa_exc.DBAPIError as exc:
            raise self._fail(exc) from exc
        except OverflowError as exc:  # SQLite's driver, before anything is sent
            raise _too_big(self._model) from exc

    # -- writes -------------------------------------------------------------

    def add(self, obj: T) -> T:
        """Add *obj* and flush, so database defaults and keys are set; return it."""
        if self._guard is not None:
            self._guard(obj)
        self._session.add(obj)
        self._flush()
        return obj

    def add_all(self, objs: Iterable[T]) -> builtins.list[T]:
        """Add every object in one flush."""
        items = list(objs)
        if self._guard is not None:
            for obj in items:
                self._guard(obj)
        self._session.add_all(items)
        self._flush()
        return items

    def _flush(self) -> None:
        try:
            self._session.flush()
        except (sa_exc.DBAPIError, orm_exc.StaleDataError) as exc:
            self._session.rollback()
            raise self._fail(exc) from exc

    def _load(self, target: T | Any, expected_version: int | None) -> T:
        if isinstance(target, self._model):
            state = inspect(target)
            if state.session is not self._session:
                try:
                    target = self._session.merge(target)
                except orm_exc.StaleDataError as exc:
                    raise StaleVersionError(
                        f"{self._model.__name__} {self._key_of(target)!r} changed since it "
                        "was read; reload it and try again"
                    ) from exc
            obj: T = target
        else:
            obj = self.require(target)
        if expected_version is not None:
            if self._version is None:
                raise InvalidInputError(
                    f"{self._model.__name__} has no version column (use the Versioned mixin)"
                )
            current = getattr(obj, self._version)
            if current != expected_version:
                raise StaleVersionError(
                    f"{self._model.__name__} {self._key_of(obj)!r} is at version {current}, "
                    f"not {expected_version}; reload it and try again"
                )
        return obj

    def update(
        self, target: T | Any, /, *, expected_version: int | None = None, **changes: Any
    ) -> T:
        """Apply *changes* to the object (or the one with key *target*) and flush.

        With a version column the UPDATE matches only the version read, so a
        concurrent change raises :class:`StaleVersionError`; *expected_version*
        also checks the version the caller saw (a web form's hidden field).
        A detached object is merged first, and its version is checked.
        """
        obj = self._load(target, expected_version)
        names = {attr.key for attr in inspect(self._model).column_attrs}
        for name, value in changes.items():
            if name not in names or name in self._pk or name == self._version:
                raise InvalidInputError(f"cannot set {self._model.__name__}.{name}")
            setattr(obj, name, value)
        self._flush()
        return obj

    def delete(self, target: T | Any, /, *, expected_version: int | None = None) -> None:
        """Delete the object (or the one with key *target*); versions are checked as in update."""
        obj = self._load(target, expected_version)
        self._session.delete(obj)
        self._flush()


def _too_big(model: type) -> InvalidInputError:
    return InvalidInputError(
        f"a value in a {model.__name__} query does not fit the database's integers "
        "(64-bit at most); check the value before asking"
    )
