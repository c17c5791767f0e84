"""A sync-only user of commercekit.payments does not pay for asyncio, aiohttp or httpx at import."""

from __future__ import annotations

import json
import subprocess
import sys

ASYNC_MODULES = ("asyncio", "aiohttp", "httpx", "httpcore", "anyio", "sqlalchemy")


def _loaded_after(code: str) -> dict[str, bool]:
    names = repr(ASYNC_MODULES)
    probe = f"import json, sys; {code}; print(json.dumps({{m: m in sys.modules for m in {names}}}))"
    out = subprocess.run(
        [sys.executable, "-c", probe], capture_output=True, text=True, check=True, timeout=60
    )
    return dict(json.loads(out.stdout))


def test_importing_payments_loads_no_async_machinery() -> None:
    assert not any(_loaded_after("import commercekit.payments").values())


def test_a_sync_payment_loads_none_either() -> None:
    code = (
        "from commercekit.money import Money; "
        "from commercekit.payments import Card, InMemoryIdempotencyStore, PaymentService, "
        "SandboxGateway, StripeGateway, RetryPolicy; "
        "s = PaymentService(SandboxGateway(), InMemoryIdempotencyStore(), retry=RetryPolicy()); "
        "s.authorize('o-1', Money.of('5.00', 'USD'), Card('4242 4242 4242 4242', 12, 2030)); "
        "s.capture('o-1')"
    )
    loaded = _loaded_after(code)
    assert not loaded["asyncio"], loaded
    assert not loaded["aiohttp"], loaded
