"""``traced``, the decorator form of ``span``: what it returns with and without opentelemetry-api.

Its spans under a real tracer provider are in tests/analytics/test_tracing.py;
what it costs beside an empty call is measured by benchmarks/analytics.py.
"""

from __future__ import annotations

import asyncio
import subprocess
import sys
import textwrap
from collections.abc import Iterator
from pathlib import Path

import pytest

from commercekit.errors import InvalidInputError
from commercekit.metrics import TRACING_AVAILABLE, refresh_tracing, traced

ROOT = Path(__file__).resolve().parents[2]


def test_without_a_provider_a_traced_function_runs_as_itself() -> None:
    assert TRACING_AVAILABLE  # opentelemetry-api is installed in the test environment
    assert not refresh_tracing()  # and no provider is set in this process

    def add(a: int, b: int = 1) -> int:
        """Add two numbers."""
        return a + b

    async def fetch(key: str) -> str:
        await asyncio.sleep(0)
        return key.upper()

    def fail() -> None:
        raise KeyError("passes through")

    traced_add = traced("add")(add)
    traced_fetch = traced("fetch", kind="client", attributes={"k": 1})(fetch)
    assert traced_add is not add  # the API is importable: a wrapper that looks for a provider
    assert traced_add.__wrapped__ is add  # type: ignore[attr-defined]
    assert (traced_add.__name__, traced_add.__doc__) == ("add", "Add two numbers.")
    assert [traced_add(2) for _ in range(600)] == [3] * 600  # past the re-check every 256 calls
    assert traced_add(2, b=5) == 7
    assert asyncio.run(traced_fetch("sku")) == "SKU"
    assert asyncio.iscoroutinefunction(traced_fetch)
    with pytest.raises(KeyError):
        traced("fail")(fail)()


def test_a_method_keeps_its_binding() -> None:
    class Cart:
        def __init__(self) -> None:
            self.lines = 2

        @traced("cart_total")
        def total(self, extra: int) -> int:
            return self.lines + extra

    assert Cart().total(3) == 5


def test_a_wrong_kind_or_a_generator_function_is_refused() -> None:
    with pytest.raises(InvalidInputError, match="kind"):
        traced("x", kind="sideways")

    def numbers() -> Iterator[int]:
        yield 1

    async def stream() -> object:
        yield 1

    with pytest.raises(InvalidInputError, match="generator"):
        traced("numbers")(numbers)
    with pytest.raises(InvalidInputError, match="generator"):
        traced("stream")(stream)


BLOCKED = textwrap.dedent(
    """
    import asyncio, runpy, sys

    class NoOpenTelemetry:
        "Makes opentelemetry unimportable, as in a process where it is not installed."

        def find_spec(self, name, path=None, target=None):
            if name == "opentelemetry" or name.startswith("opentelemetry."):
                raise ModuleNotFoundError(f"No module named {name!r}", name=name)
            return None

    sys.meta_path.insert(0, NoOpenTelemetry())
    from commercekit.errors import InvalidInputError
    from commercekit.metrics import TRACING_AVAILABLE, current_traceparent, span, traced

    assert TRACING_AVAILABLE is False

    def add(a, b):
        return a + b

    async def fetch():
        return 1

    assert traced("add")(add) is add
    assert traced("fetch", kind="client", attributes={"k": "v"})(fetch) is fetch
    try:
        traced("add", kind="sideways")
    except InvalidInputError:
        pass
    else:
        raise AssertionError("a wrong kind was accepted")
    assert span("a") is span("b")
    with span("c"):
        assert current_traceparent() is None
    # The guarded span sites: a unit of work, an origin fetch, payment calls, checkout steps.
    for example in sys.argv[1:]:
        runpy.run_path(example, run_name="__main__")
    assert not [m for m in sys.modules if m.startswith("opentelemetry.")], "imported"
    print("ok")
    """
)


def test_without_opentelemetry_traced_returns_the_very_same_function() -> None:
    """In an interpreter where opentelemetry cannot be imported, as when it is not installed.

    The instrumented parts (their span sites skip the span there) run their examples.
    """
    examples = [
        str(ROOT / "examples" / f"{name}.py")
        for name in ("repository_basics", "cdn_edge_cache", "payments_basics", "commerce_checkout")
    ]
    result = subprocess.run(
        [sys.executable, "-c", BLOCKED, *examples],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
        cwd=ROOT,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    assert result.stdout.rstrip().endswith("ok")
