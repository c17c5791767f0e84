"""The edge's conformance suite: one test per rule, through the real proxy over loopback.

``test_rule`` runs each case alone. ``test_25_at_a_time_with_unsafe_requests``
runs the whole suite 25 cases at a time, every request beside an unsafe one to
an unrelated URL of the same edge, and requires exactly the results of the
one-at-a-time run; ``COMMERCEKIT_CONFORMANCE_RUNS=3`` repeats it three times in
a row (once by default, to keep the default run short).
"""

from __future__ import annotations

import asyncio
import os
from collections.abc import Iterator
from typing import Any

import pytest

from . import _cases  # noqa: F401  (registers the cases)
from ._harness import CASES, SharedOrigin, run_all, run_case

RUNS = int(os.environ.get("COMMERCEKIT_CONFORMANCE_RUNS", "1"))
_sequential: dict[str, list[Any]] = {}
"""What each case observed alone (filled by ``test_rule``, the baseline of the concurrent runs)."""


@pytest.fixture(scope="module")
def origin() -> Iterator[SharedOrigin]:
    with SharedOrigin() as shared:
        yield shared


@pytest.mark.parametrize("name", sorted(CASES), ids=sorted(CASES))
def test_rule(name: str, origin: SharedOrigin) -> None:
    result = asyncio.run(run_case(name, origin, noisy=False))
    _sequential[name] = result
    assert not (result and isinstance(result[0], str) and result[0].startswith("failed")), (
        f"{CASES[name][0]}: {result[0]}"
    )


def test_25_at_a_time_with_unsafe_requests(origin: SharedOrigin) -> None:
    missing = [n for n in CASES if n not in _sequential]
    for name in missing:  # run alone (-k), or in another order
        _sequential[name] = asyncio.run(run_case(name, origin, noisy=False))
    sequential = dict(_sequential)
    for _ in range(RUNS):
        concurrent = asyncio.run(run_all(origin, width=25, noisy=True))
        differ = {
            n: (sequential[n], concurrent[n]) for n in sequential if sequential[n] != concurrent[n]
        }
        assert not differ, differ
