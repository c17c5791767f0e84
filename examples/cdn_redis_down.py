"""Redis goes away: the edge keeps serving its hottest images from process memory.

A ``TieredStore`` puts a small ``MemoryStore`` before a ``RedisStore``. Here
the Redis URL points at a port where nothing listens (Redis is down): each
lookup gives up within ``timeout_s``, the circuit breaker then skips Redis
without waiting, and the near tier serves what the edge fetched.

Run: python examples/cdn_redis_down.py   (needs the [redis] extra)
"""

from __future__ import annotations

import asyncio
import socket
import time

from commercekit.cdn import (
    EdgeCache,
    Headers,
    MemoryStore,
    MockOrigin,
    RedisStore,
    Request,
    Response,
    TieredStore,
)


def image(request: Request) -> Response:
    return Response(200, Headers({"cache-control": "max-age=300"}), b"<jpeg bytes>")


def a_port_nobody_listens_on() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


async def main() -> None:
    redis = RedisStore.from_url(
        f"redis://127.0.0.1:{a_port_nobody_listens_on()}/0",
        timeout_s=0.2,  # the most a lookup may wait for Redis
        breaker_failures=3,  # failures in a row before Redis is skipped
        breaker_reset_s=1.0,  # then one probe a second
    )
    origin = MockOrigin(image)
    async with EdgeCache(origin, TieredStore(MemoryStore(32 * 2**20), redis)) as edge:
        started = time.perf_counter()
        for _ in range(1000):
            await edge.get("https://img.shop.example/sneaker.jpg")
        took = time.perf_counter() - started
        print(f"1000 requests in {took:.2f} s, {len(origin.requests)} origin request(s)")
        print(f"Redis skipped (breaker open): {redis.breaker.is_open}")


if __name__ == "__main__":
    asyncio.run(main())
