"""The caching proxy's server in code: serve a folder, hit it, purge through the admin port, drain.

``python -m commercekit.cdn serve`` does the same from the command line, with
worker processes (docs/cdn.md, "The server").
"""

from __future__ import annotations

import asyncio
import io
import tempfile
from pathlib import Path

import httpx

from commercekit.cdn import (
    AccessLog,
    AdminHandler,
    DirectoryOrigin,
    EdgeCache,
    MemoryStore,
    ProxyHandler,
    serve,
)


async def main(folder: Path) -> None:
    (folder / "logo.svg").write_text("<svg/>")
    edge = EdgeCache(DirectoryOrigin(folder), MemoryStore(16 * 1024 * 1024))
    log = io.StringIO()
    proxy = await serve(
        ProxyHandler(edge), port=0, header_timeout_s=5, access_log=AccessLog(log, flush_s=0.01)
    )
    admin = await serve(AdminHandler(edge, token="example-token"), port=0)
    url = f"http://127.0.0.1:{proxy.sockets[0].getsockname()[1]}"
    admin_url = f"http://127.0.0.1:{admin.sockets[0].getsockname()[1]}"
    async with httpx.AsyncClient() as client:
        for _ in range(2):
            response = await client.get(url + "/logo.svg")
            print(response.status_code, response.headers["cache-status"])
        purged = await client.post(
            admin_url + "/purge",
            json={"kind": "url", "values": [url + "/logo.svg"]},
            headers={"authorization": "Bearer example-token"},
        )
        print("purge:", purged.json())
        again = await client.get(url + "/logo.svg")
        print(again.status_code, again.headers["cache-status"])
    await proxy.drain(timeout_s=5)  # what SIGTERM does: finish responses, close
    await admin.drain(timeout_s=5)
    await edge.aclose()
    print("access log:", log.getvalue().splitlines()[0])


with tempfile.TemporaryDirectory() as folder:
    asyncio.run(main(Path(folder)))
