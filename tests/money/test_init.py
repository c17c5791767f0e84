"""Tests for commercekit.money's public surface."""

from __future__ import annotations

import doctest

import commercekit.money as money_package


def test_all_lists_exactly_the_public_names() -> None:
    public = {name for name in vars(money_package) if not name.startswith("_")}
    assert set(money_package.__all__) == public
    assert len(money_package.__all__) == len(set(money_package.__all__))


def test_every_public_name_has_a_docstring_or_is_data() -> None:
    for name in money_package.__all__:
        value = getattr(money_package, name)
        if callable(value) and not isinstance(value, type(money_package.RoundingMode)):
            assert (value.__doc__ or "").strip(), name


def test_package_docstring_example_runs() -> None:
    result = doctest.testmod(money_package)
    assert result.attempted > 0
    assert result.failed == 0
