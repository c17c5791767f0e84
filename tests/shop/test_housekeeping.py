"""Each app server runs the shop's housekeeping: stalled checkouts and refunds recovered, idle
carts expired."""

from __future__ import annotations

import asyncio
import sys
import threading
from types import SimpleNamespace
from typing import Any

from tests.shop._procs import EXAMPLES

if str(EXAMPLES) not in sys.path:  # the shop is an example package, not installed
    sys.path.insert(0, str(EXAMPLES))


from commercekit.errors import StoreUnavailableError
from shop import web


def test_housekeeping_recovers_checkouts_and_expires_idle_carts_every_round() -> None:
    calls: list[Any] = []

    def recover() -> list[object]:
        calls.append("recover")
        return []

    def recover_refunds() -> list[str]:
        calls.append("refunds")
        return []

    def expire_abandoned(*, idle_s: float) -> int:
        calls.append(("expire", idle_s))
        if len(calls) == 3:
            raise StoreUnavailableError("the Redis cart store could not list idle carts")
        return 0

    shop: Any = SimpleNamespace(
        commerce=SimpleNamespace(
            checkout=SimpleNamespace(recover=recover),
            orders=SimpleNamespace(recover_refunds=recover_refunds),
            carts=SimpleNamespace(expire_abandoned=expire_abandoned),
        )
    )

    async def run() -> None:
        task = asyncio.create_task(web.housekeeping(shop, every_s=0.01, idle_s=864000.0))
        while len(calls) < 9:
            await asyncio.sleep(0.01)
        task.cancel()

    # On a thread of its own: Playwright's event loop may be running in this one
    # (the browser tests share one Chromium), and asyncio.run refuses to nest.
    failed: list[BaseException] = []

    def target() -> None:
        try:
            asyncio.run(run())
        except BaseException as exc:  # handed to the test's thread
            failed.append(exc)

    thread = threading.Thread(target=target)
    thread.start()
    thread.join(timeout=30)
    assert not thread.is_alive()
    assert failed == []
    # a round that failed (Redis down) did not stop the next ones
    assert calls[:9] == ["recover", "refunds", ("expire", 864000.0)] * 3
