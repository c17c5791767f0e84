"""Fixtures the CDN tests share: Redis on 127.0.0.1:6379 (db 15) for the store's tests."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Iterator

import pytest

REDIS_URL = "redis://127.0.0.1:6379/15"


@pytest.fixture
def namespace(require_redis: None) -> Iterator[str]:
    """A Redis key prefix of the test's own, its keys deleted afterwards."""
    ns = f"test:{uuid.uuid4().hex}"
    yield ns

    async def clean() -> None:
        from redis.asyncio import Redis

        client = Redis.from_url(REDIS_URL)
        keys = [k async for k in client.scan_iter(match=f"{ns}:*")]
        if keys:
            await client.delete(*keys)
        await client.aclose()

    asyncio.run(clean())
