"""The translation of driver errors into commercekit's errors, at the boundary.

Driver and SQLAlchemy errors are translated here and raised ``from`` the
original, so ``__cause__`` (and ``.orig``) keep the driver's error. The classes
live in :mod:`commercekit.errors`::

    ConflictError
     └── StaleVersionError ............ an update or delete saw another version
    DuplicateError (ConflictError) ..... a unique key exists already
    TransientError
     ├── SerializationFailureError .... serialization failure or deadlock: retry the whole work
     └── UnavailableError
          └── DatabaseUnavailableError . cannot reach a node, or lost it before COMMIT
    OutcomeUnknownError
     └── CommitOutcomeUnknownError .... lost during COMMIT, or the synchronous-replication
                                        wait was cancelled: look the row up, never retry blindly
    InvalidStateError
     └── ReadOnlyError ................ a write in a read-only unit of work or on a replica
    CommerceKitError
     └── RepositoryError .............. any other database error (bad SQL, a constraint)
"""

from __future__ import annotations

import enum
import sqlite3

from sqlalchemy import exc as sa_exc
from sqlalchemy.orm import exc as orm_exc

from commercekit.errors import (
    CommerceKitError,
    CommitOutcomeUnknownError,
    ConflictError,
    DatabaseUnavailableError,
    DuplicateError,
    ReadOnlyError,
    RepositoryError,
    SerializationFailureError,
    StaleVersionError,
)

__all__ = ["ErrorKind", "classify", "describe", "translate"]


class ErrorKind(enum.Enum):
    """What a driver error means for routing and retrying."""

    DISCONNECT = "disconnect"
    SERIALIZATION = "serialization"
    DUPLICATE = "duplicate"
    INTEGRITY = "integrity"
    READ_ONLY = "read_only"
    CANCELED = "canceled"
    OTHER = "other"


# PostgreSQL SQLSTATEs: class 08 is connection exceptions; 57P01-57P03 are
# shutdowns and "cannot connect now"; 53300 too many connections.
_PG_DISCONNECT = {"57P01", "57P02", "57P03", "53300", "08000", "08003", "08006", "08001", "08004"}
_PG_SERIALIZATION = {"40001", "40P01"}
# MySQL/MariaDB error numbers.
_MY_DISCONNECT = {2002, 2003, 2006, 2013, 2055, 1053, 1927, 4031}
_MY_SERIALIZATION = {1213, 1205}
_MY_DUPLICATE = {1062, 1586}
_MY_READ_ONLY = {1290, 1792}


def _driver_code(orig: BaseException) -> tuple[str | None, int | None]:
    sqlstate = getattr(orig, "sqlstate", None)
    number = None
    args = getattr(orig, "args", ())
    if args and isinstance(args[0], int):
        number = args[0]
    return (sqlstate if isinstance(sqlstate, str) else None), number


def classify(error: BaseException) -> ErrorKind:
    """Say what *error* (a SQLAlchemy ``DBAPIError`` or a driver error) means."""
    if isinstance(error, sa_exc.DBAPIError):
        if error.connection_invalidated:
            return ErrorKind.DISCONNECT
        orig: BaseException = error.orig if error.orig is not None else error
    else:
        orig = error
    sqlstate, number = _driver_code(orig)
    # psycopg raises OperationalError (or a subclass: ConnectionTimeout when a
    # connect runs out of time) without a SQLSTATE when it cannot connect or
    # the server went away mid-conversation.
    if (
        sqlstate is None
        and type(orig).__module__.startswith("psycopg")
        and any(c.__name__ in {"OperationalError", "InterfaceError"} for c in type(orig).__mro__)
    ):
        return ErrorKind.DISCONNECT
    # PyMySQL sets a generic SQLSTATE too (23000 for every integrity error), so
    # MySQL/MariaDB are classified by error number first (asyncmy keeps
    # PyMySQL's error classes and numbers).
    if number is not None and type(orig).__module__.startswith(("pymysql", "asyncmy")):
        if number in _MY_DISCONNECT:
            return ErrorKind.DISCONNECT
        if number in _MY_SERIALIZATION:
            return ErrorKind.SERIALIZATION
        if number in _MY_DUPLICATE:
            return ErrorKind.DUPLICATE
        if number in _MY_READ_ONLY:
            return ErrorKind.READ_ONLY
        if number == 1317:
            return ErrorKind.CANCELED
        return ErrorKind.INTEGRITY if isinstance(error, sa_exc.IntegrityError) else ErrorKind.OTHER
    if sqlstate is not None:
        if sqlstate in _PG_DISCONNECT or sqlstate.startswith("08"):
            return ErrorKind.DISCONNECT
        if sqlstate in _PG_SERIALIZATION:
            return ErrorKind.SERIALIZATION
        if sqlstate == "23505":
            return ErrorKind.DUPLICATE
        if sqlstate.startswith("23"):
            return ErrorKind.INTEGRITY
        if sqlstate == "25006":
            return ErrorKind.READ_ONLY
        if sqlstate == "57014":
            return ErrorKind.CANCELED
        return ErrorKind.OTHER
    if isinstance(orig, sqlite3.Error):
        name = getattr(orig, "sqlite_errorname", "")
        if name.startswith(("SQLITE_BUSY", "SQLITE_LOCKED")):
            return ErrorKind.SERIALIZATION
        if name in {"SQLITE_CONSTRAINT_UNIQUE", "SQLITE_CONSTRAINT_PRIMARYKEY"}:
            return ErrorKind.DUPLICATE
        if name.startswith("SQLITE_CONSTRAINT"):
            return ErrorKind.INTEGRITY
        if name.startswith(("SQLITE_CANTOPEN", "SQLITE_IOERR")):
            return ErrorKind.DISCONNECT
        if name.startswith("SQLITE_READONLY"):
            return ErrorKind.READ_ONLY
        return ErrorKind.OTHER
    if isinstance(error, sa_exc.DisconnectionError):
        return ErrorKind.DISCONNECT
    if isinstance(error, sa_exc.IntegrityError):
        return ErrorKind.INTEGRITY
    return ErrorKind.OTHER


def translate(error: BaseException, *, node: str, committing: bool = False) -> CommerceKitError:
    """Return the commercekit error for *error* raised on *node* (raise it ``from`` *error*).

    *committing* says COMMIT had been sent: a lost connection then means the
    outcome is unknown, not that nothing happened.
    """
    if isinstance(error, CommerceKitError):
        return error
    if isinstance(error, orm_exc.StaleDataError):
        return StaleVersionError(
            f"the row changed on {node} since it was read ({error}); reload it and try again"
        )
    kind = classify(error)
    detail = _short(error)
    if committing and kind in {ErrorKind.DISCONNECT, ErrorKind.CANCELED}:
        return CommitOutcomeUnknownError(
            f"the connection to {node} failed during COMMIT ({detail}); the transaction may "
            "have committed: look the data up before doing the work again"
        )
    if kind is ErrorKind.DISCONNECT:
        down = DatabaseUnavailableError(
            f"cannot use database node {node!r} ({detail}); nothing was committed, "
            "retry when it is back"
        )
        down.orig = error
        return down
    if kind is ErrorKind.SERIALIZATION:
        return SerializationFailureError(
            f"{node} aborted the transaction ({detail}); retry the whole unit of work"
        )
    if kind is ErrorKind.DUPLICATE:
        return DuplicateError(f"a row with the same unique key exists on {node} ({detail})")
    if kind is ErrorKind.INTEGRITY:
        return ConflictError(f"a constraint refused the change on {node} ({detail})")
    if kind is ErrorKind.READ_ONLY:
        return ReadOnlyError(f"{node} is read-only and refused a write ({detail})")
    return RepositoryError(f"database error on {node}: {detail}")


def describe(error: BaseException) -> str:
    """A one-line account of *error* for a log line: the driver's class and first line."""
    return _short(error)


def _short(error: BaseException) -> str:
    orig = getattr(error, "orig", None) or error
    text = str(orig).strip().splitlines()
    first = text[0] if text else type(orig).__name__
    return f"{type(orig).__name__}: {first[:200]}"
