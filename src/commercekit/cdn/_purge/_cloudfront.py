"""``CloudFrontPurger``: CloudFront invalidations, batched and kept within the in-progress limits.

CloudFront allows at most 3,000 paths, of which 15 wildcard paths, in
invalidations *in progress* per distribution. The purger remembers the
invalidations it created; before sending a batch that would go over, it asks
CloudFront (``GetInvalidation``) which have completed, and waits (with the
injected ``sleep``) until there is room, up to *max_wait_s*, then raises
:class:`PurgeUnavailableError`. Requests are signed with SigV4 (``_sigv4``).
"""

from __future__ import annotations

import asyncio
import re
import time
import uuid
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING
from urllib.parse import quote, urlsplit
from xml.sax.saxutils import escape

from commercekit._retry import async_sleep
from commercekit.cdn._signing._sigv4 import AwsCredentials, sigv4_headers
from commercekit.errors import InvalidInputError, PurgeUnavailableError
from commercekit.typing import WallClock

from ._purgers import HttpPurger
from ._selector import PurgeKind, PurgeResult, PurgeSelector

if TYPE_CHECKING:
    import httpx

__all__ = ["CloudFrontPurger"]

_API = "/2020-05-31"
_NS = "http://cloudfront.amazonaws.com/doc/2020-05-31/"


def _path_of(value: str) -> str:
    path = urlsplit(value).path if "://" in value else value
    return path if path.startswith("/") else "/" + path


def _tag(xml: str, name: str) -> str | None:
    found = re.search(rf"<{name}>([^<]*)</{name}>", xml)
    return found.group(1) if found else None


class CloudFrontPurger(HttpPurger):
    """Invalidates paths of one CloudFront distribution (URL, prefix as ``path*``, or ``/*``).

    CloudFront has no tags and no soft invalidation; those are refused.
    """

    def __init__(
        self,
        distribution_id: str,
        credentials: AwsCredentials,
        *,
        base_url: str = "https://cloudfront.amazonaws.com",
        client: httpx.AsyncClient | None = None,
        timeout_s: float = 10.0,
        max_paths_in_progress: int = 3000,
        max_wildcards_in_progress: int = 15,
        max_wait_s: float = 900.0,
        poll_interval_s: float = 10.0,
        clock: WallClock = time.time,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
    ) -> None:
        super().__init__(base_url, client=client, timeout_s=timeout_s)
        self._distribution = quote(distribution_id, safe="")
        self._credentials = credentials
        self._max_paths = max_paths_in_progress
        self._max_wild = max_wildcards_in_progress
        self._max_wait = max_wait_s
        self._poll = poll_interval_s
        self._clock = clock
        self._sleep = async_sleep(sleep, owner="CloudFrontPurger")
        self._in_progress: dict[str, tuple[int, int]] = {}
        # An asyncio.Lock belongs to the loop it first waited on: one per loop (the latest).
        self._submitting: tuple[asyncio.AbstractEventLoop, asyncio.Lock] | None = None

    def __repr__(self) -> str:
        return f"CloudFrontPurger(distribution_id={self._distribution!r})"

    @property
    def in_progress(self) -> dict[str, tuple[int, int]]:
        """Invalidations made here and not yet seen completed: id -> (paths, wildcards)."""
        return dict(self._in_progress)

    async def _signed(self, method: str, path: str, body: bytes = b"") -> str:
        url = self._base + path
        headers = {"Content-Type": "text/xml"} if body else {}
        signed = sigv4_headers(
            method,
            url,
            headers,
            body,
            self._credentials,
            region="us-east-1",
            service="cloudfront",
            now=self._clock(),
        )
        response = await self._send(method, path, signed, body or None)
        return response.text

    async def purge(self, selector: PurgeSelector, /, *, soft: bool = False) -> PurgeResult:
        """Create the invalidations for *selector*, batched within the limits."""
        if soft:
            raise InvalidInputError("CloudFront invalidations are always hard; pass soft=False")
        if selector.kind is PurgeKind.TAG:
            raise InvalidInputError("CloudFront has no cache tags; purge by URL or prefix")
        if selector.kind is PurgeKind.ALL:
            paths = ["/*"]
        elif selector.kind is PurgeKind.PREFIX:
            paths = [_path_of(v).rstrip("*") + "*" for v in selector.values]
        else:
            paths = [_path_of(v) for v in selector.values]
        paths = list(dict.fromkeys(paths))
        ids: list[str] = []
        batch: list[str] = []
        for path in paths:
            if not self._fits([*batch, path]):
                if not batch:
                    raise InvalidInputError(f"path {path!r} alone exceeds CloudFront's limits")
                ids.append(await self._submit(batch))
                batch = []
            batch.append(path)
        if batch:
            ids.append(await self._submit(batch))
        return PurgeResult(purged=None, ids=tuple(ids))

    def _fits(self, batch: list[str]) -> bool:
        wild = sum(p.endswith("*") for p in batch)
        return len(batch) <= self._max_paths and wild <= self._max_wild

    def _room(self, batch: list[str]) -> bool:
        paths = sum(p for p, _ in self._in_progress.values()) + len(batch)
        wild = sum(w for _, w in self._in_progress.values()) + sum(p.endswith("*") for p in batch)
        return paths <= self._max_paths and wild <= self._max_wild

    async def _refresh(self) -> None:
        for inv_id in list(self._in_progress):
            text = await self._signed(
                "GET", f"{_API}/distribution/{self._distribution}/invalidation/{quote(inv_id)}"
            )
            if _tag(text, "Status") == "Completed":
                self._in_progress.pop(inv_id, None)

    async def _submit(self, batch: list[str]) -> str:
        # One submission at a time: two purges that both found room would together break
        # CloudFront's limit on paths in progress.
        async with self._lock():
            return await self._submit_alone(batch)

    def _lock(self) -> asyncio.Lock:
        """The running loop's submission lock (a later loop gets a new one)."""
        loop = asyncio.get_running_loop()
        if self._submitting is None or self._submitting[0] is not loop:
            self._submitting = (loop, asyncio.Lock())
        return self._submitting[1]

    async def _submit_alone(self, batch: list[str]) -> str:
        deadline = self._clock() + self._max_wait
        while not self._room(batch):
            await self._refresh()
            if self._room(batch):
                break
            if self._clock() >= deadline:
                raise PurgeUnavailableError(
                    f"CloudFront invalidations in progress leave no room for {len(batch)} paths "
                    f"after {self._max_wait} s; try again later"
                )
            await self._sleep(self._poll)
        items = "".join(f"<Path>{escape(p)}</Path>" for p in batch)
        body = (
            '<?xml version="1.0" encoding="UTF-8"?>'
            f'<InvalidationBatch xmlns="{_NS}"><Paths><Quantity>{len(batch)}</Quantity>'
            f"<Items>{items}</Items></Paths>"
            f"<CallerReference>{uuid.uuid4()}</CallerReference></InvalidationBatch>"
        ).encode()
        text = await self._signed(
            "POST", f"{_API}/distribution/{self._distribution}/invalidation", body
        )
        inv_id = _tag(text, "Id")
        if not inv_id:
            raise PurgeUnavailableError("CloudFront's answer carried no invalidation Id")
        if _tag(text, "Status") != "Completed":
            self._in_progress[inv_id] = (len(batch), sum(p.endswith("*") for p in batch))
        return inv_id
