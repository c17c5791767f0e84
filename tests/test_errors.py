"""The exception tree: builtin-compatible bases, the retry-safety marker, the drawn tree."""

from __future__ import annotations

import inspect

import pytest

from commercekit import errors
from commercekit.errors import (
    CommerceKitError,
    InvalidInputError,
    NotFoundError,
    OutcomeUnknownError,
    TransientError,
    UnavailableError,
    UnsupportedTypeError,
    is_transient,
)

ALL_ERRORS = [
    obj for obj in vars(errors).values() if inspect.isclass(obj) and issubclass(obj, BaseException)
]


def test_every_error_is_a_commercekit_error_and_is_exported() -> None:
    for cls in ALL_ERRORS:
        assert issubclass(cls, CommerceKitError)
        assert cls.__name__ in errors.__all__


def test_every_error_is_drawn_in_the_tree() -> None:
    doc = errors.__doc__ or ""
    for cls in ALL_ERRORS:
        assert cls.__name__ in doc, f"{cls.__name__} is missing from the tree in errors.py"


@pytest.mark.parametrize(
    ("cls", "builtin"),
    [
        (InvalidInputError, ValueError),
        (errors.ConfigurationError, ValueError),
        (errors.PrecisionError, ValueError),
        (UnsupportedTypeError, TypeError),
        (NotFoundError, LookupError),
        (errors.UnknownCurrencyError, LookupError),
    ],
)
def test_builtin_bases_let_callers_catch_the_usual_way(
    cls: type[Exception], builtin: type[Exception]
) -> None:
    with pytest.raises(builtin):
        raise cls("bad")


def test_only_transient_errors_are_safe_to_retry() -> None:
    assert is_transient(TransientError("flaky"))
    assert is_transient(UnavailableError("no node"))
    assert not is_transient(OutcomeUnknownError("sent, no answer"))
    assert not is_transient(InvalidInputError("bad"))
    assert not is_transient(ConnectionError("foreign"))


def raised_from(exc: BaseException, cause: BaseException) -> BaseException:
    try:
        raise exc from cause
    except BaseException as caught:
        return caught


def raised_while_handling(exc: BaseException, context: BaseException) -> BaseException:
    try:
        try:
            raise context
        except BaseException:
            raise exc  # noqa: B904 - the point: a context, not a cause
    except BaseException as caught:
        return caught


def test_a_foreign_error_raised_from_a_transient_one_is_transient() -> None:
    assert is_transient(raised_from(RuntimeError("wrapped"), UnavailableError("no node")))
    deep = raised_from(KeyError("x"), raised_from(RuntimeError("y"), TransientError("z")))
    assert is_transient(deep)
    # A commercekit error says what it means by its own type, whatever its cause.
    assert not is_transient(raised_from(InvalidInputError("bad"), UnavailableError("down")))
    assert not is_transient(raised_from(OutcomeUnknownError("sent"), UnavailableError("x")))
    assert not is_transient(raised_from(RuntimeError("w"), OutcomeUnknownError("sent")))
    # Only an explicit cause counts, and a cycle ends.
    assert not is_transient(raised_while_handling(RuntimeError("w"), UnavailableError("down")))
    loop = RuntimeError("a")
    loop.__cause__ = RuntimeError("b")
    loop.__cause__.__cause__ = loop
    assert not is_transient(loop)


def test_the_cause_is_kept_when_translating() -> None:
    def translate() -> None:
        try:
            raise ConnectionResetError("peer reset")
        except OSError as exc:
            raise UnavailableError("replica r1 dropped the connection; retrying") from exc

    with pytest.raises(UnavailableError) as info:
        translate()
    assert isinstance(info.value.__cause__, ConnectionResetError)
