"""One transaction at a time through a SQLAlchemy engine, with driver errors translated.

Shared by the SQL stores of this package. A lost connection or a locked
database before COMMIT becomes an :class:`~commercekit.errors.UnavailableError`
(nothing was kept, safe to retry), after a transaction the database rolled
back as a deadlock victim has been run again a few times; a connection lost *during* COMMIT a
:class:`~commercekit.errors.CommitOutcomeUnknownError` (the transaction may
have committed: look the data up first), as the repository reports it; a
value the database refuses an
:class:`~commercekit.errors.InvalidInputError`, each raised ``from`` the driver
error. Unique-constraint violations (:class:`sqlalchemy.exc.IntegrityError`)
pass through untouched: the stores use them as their atomic "someone else won".
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import TypeVar

import sqlalchemy as sa
from sqlalchemy.engine import Connection, Engine

from commercekit.errors import CommitOutcomeUnknownError, InvalidInputError, UnavailableError
from commercekit.repository._errors import ErrorKind, classify

__all__ = ["SqlRunner"]

_T = TypeVar("_T")

_VICTIM_RERUNS = 3


class SqlRunner:
    """Runs units of work on *engine* in transactions; *what* names the store in errors."""

    def __init__(
        self, engine: Engine, *, what: str, unsaved: str, serialize: bool | None = None
    ) -> None:
        self.engine = engine
        self._what = what
        self._unsaved = unsaved
        # SQLite has one writer at a time anyway, and an in-memory database shares one
        # connection between threads (a rollback in one thread would undo another's
        # insert), so this process's transactions on SQLite take turns. An async store
        # passes serialize=False and takes turns with an asyncio lock instead (a thread
        # lock held across an await would stop the event loop).
        if serialize is None:
            serialize = engine.dialect.name == "sqlite"
        self._serial = threading.Lock() if serialize else None

    def tx(self, work: Callable[[Connection], _T]) -> _T:
        """Run *work* in one transaction: committed if it returns, rolled back if it raises."""

        def once() -> _T:
            with self.engine.connect() as conn:
                transaction = conn.begin()
                try:
                    result = work(conn)
                except BaseException:
                    if transaction.is_active:
                        transaction.rollback()
                    raise
                try:
                    transaction.commit()
                except (sa.exc.OperationalError, sa.exc.InterfaceError) as exc:
                    if classify(exc) in (ErrorKind.DISCONNECT, ErrorKind.CANCELED):
                        raise CommitOutcomeUnknownError(
                            f"{self._what} lost its connection during COMMIT "
                            f"({type(exc.orig).__name__}); the write may have been kept: "
                            "look it up before doing the work again"
                        ) from exc
                    raise
                return result

        def turn() -> _T:
            if self._serial is None:
                return once()
            with self._serial:
                return once()

        def run() -> _T:
            # A transaction the database chose as a deadlock victim (or that waited past
            # its lock timeout) was rolled back whole: it runs again at once, a few times,
            # before the caller hears of it. InnoDB picks such victims among concurrent
            # inserts into one unique index, which is what claiming keys does.
            reruns_left = _VICTIM_RERUNS
            while True:
                try:
                    return turn()
                except sa.exc.OperationalError as exc:
                    if not reruns_left or classify(exc) is not ErrorKind.SERIALIZATION:
                        raise
                    reruns_left -= 1

        return self.guard(run)

    def guard(self, work: Callable[[], _T]) -> _T:
        """Run *work*, translating driver errors (see the module docstring)."""
        try:
            return work()
        except sa.exc.IntegrityError:
            raise
        except (sa.exc.OperationalError, sa.exc.InterfaceError) as exc:
            raise UnavailableError(
                f"{self._what} is unavailable ({type(exc.orig).__name__}); "
                f"{self._unsaved}, retry shortly"
            ) from exc
        except sa.exc.DataError as exc:
            raise InvalidInputError(
                f"{self._what} refused a value ({type(exc.orig).__name__}); nothing was kept"
            ) from exc

    def __repr__(self) -> str:
        return f"SqlRunner({self.engine.url.render_as_string()!r})"
