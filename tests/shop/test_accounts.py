"""The shop's own table (accounts) through AsyncDatabase: sign-up, sign-in, two sign-ups at once."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from commercekit.errors import ConflictError
from tests.shop._procs import shop_env


def test_accounts_are_read_and_written_on_the_event_loop(tmp_path: Path) -> None:
    from shop.root import build_shop
    from shop.settings import Settings

    shop = build_shop(Settings.from_env(shop_env(tmp_path)))

    async def scenario() -> None:
        try:
            # the same new email twice at once: one account, and both get its id
            both = await asyncio.gather(
                shop.sign_in("Ada@Example.com", "secret-1"),
                shop.sign_in("ada@example.com ", "secret-1"),
            )
            assert both[0][0] == both[1][0]
            assert sorted(created for _, created in both) == [False, True]
            assert await shop.sign_in("ada@example.com", "secret-1") == (both[0][0], False)
            with pytest.raises(ConflictError):
                await shop.sign_in("ada@example.com", "wrong-pw")
            other, created = await shop.sign_in("grace@example.com", "secret-2")
            assert created
            assert other != both[0][0]
        finally:
            await shop.aclose()

    try:
        asyncio.run(scenario())
    finally:
        shop.close()
