"""Purgers that speak CDN purge APIs: Fastly, Cloudflare and CloudFront (over ``httpx``).

Each translates a :class:`PurgeSelector` into its API's requests, batches as
the API allows, raises :class:`PurgeRejectedError` for a 4xx (fix credentials
or input) and :class:`PurgeUnavailableError` for 5xx, 429 or network failure
(retry later). A purge kind an API does not have is refused up front with an
:class:`~commercekit.errors.InvalidInputError`, rather than done some other way.
Each API request has one deadline, *timeout_s*, for the whole exchange (httpx's
own timeouts are per read, so an API trickling its answer would otherwise hold
a purge for ever); an answer that is not the API's JSON is
:class:`PurgeUnavailableError` too.
"""

from __future__ import annotations

import asyncio
import functools
import json
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any
from urllib.parse import quote, urlsplit

from commercekit._closing import AsyncClosing
from commercekit._extras import require
from commercekit._loop import LoopPool, client_pool
from commercekit.errors import InvalidInputError, PurgeRejectedError, PurgeUnavailableError

from ._selector import PurgeKind, PurgeResult, PurgeSelector

if TYPE_CHECKING:
    import httpx

__all__ = ["CloudflarePurger", "FastlyPurger", "HttpPurger"]


def _batches(values: Sequence[str], size: int) -> list[Sequence[str]]:
    return [values[i : i + size] for i in range(0, len(values), size)]


class HttpPurger(AsyncClosing):
    """The HTTP plumbing the purgers share: one client, error mapping, JSON bodies.

    The client (unless one is passed in, which stays the caller's) is made on
    the event loop of the first call and belongs to it: ``await aclose()`` or
    ``async with`` closes it, and so does that loop as it shuts down.
    """

    def __init__(
        self, base_url: str, *, client: httpx.AsyncClient | None, timeout_s: float
    ) -> None:
        if client is None:
            require("httpx", extra="cdn", feature=type(self).__name__)
        self._base = base_url.rstrip("/")
        self._given = client  # the caller's: used, never closed here
        # Made on the event loop of the first call, and closed with it (or by aclose()).
        self._pooled: LoopPool[httpx.AsyncClient] = client_pool(
            type(self).__name__, functools.partial(_new_client, timeout_s)
        )
        self._timeout = timeout_s

    async def _http(self) -> httpx.AsyncClient:
        return self._given if self._given is not None else await self._pooled.get()

    async def _send(
        self, method: str, path: str, headers: dict[str, str], body: bytes | None = None
    ) -> httpx.Response:
        import httpx

        try:
            async with asyncio.timeout(self._timeout):
                client = await self._http()
                response = await client.request(
                    method, self._base + path, headers=headers, content=body
                )
        except TimeoutError as exc:
            raise PurgeUnavailableError(
                f"purge request {method} {path} got no whole answer within {self._timeout} s"
            ) from exc
        except httpx.HTTPError as exc:
            raise PurgeUnavailableError(f"purge request {method} {path} failed: {exc!r}") from exc
        if response.status_code == 429 or response.status_code >= 500:
            raise PurgeUnavailableError(
                f"purge API answered {response.status_code} to {method} {path}"
            )
        if response.status_code >= 400:
            raise PurgeRejectedError(
                f"purge API refused {method} {path} ({response.status_code}): {response.text[:300]}"
            )
        return response

    @staticmethod
    def _json(response: httpx.Response, api: str) -> dict[str, Any]:
        """The JSON object *response* carries, or :class:`PurgeUnavailableError`."""
        try:
            answer = response.json()
        except ValueError as exc:
            raise PurgeUnavailableError(
                f"{api} answered {response.status_code} with something that is not JSON: "
                f"{response.text[:100]!r}"
            ) from exc
        if not isinstance(answer, dict):
            raise PurgeUnavailableError(
                f"{api} answered JSON that is not an object: {answer!r:.100}"
            )
        return answer

    async def aclose(self) -> None:
        """Close the client this purger made (a *client* passed in is the caller's).

        Done too by the event loop it belongs to as it shuts down.
        """
        await self._pooled.aclose()


def _new_client(timeout_s: float) -> httpx.AsyncClient:
    import httpx

    return httpx.AsyncClient(timeout=timeout_s)


class FastlyPurger(HttpPurger):
    """Fastly: URLs, surrogate keys (256 per request) and purge-all; soft purges supported.

    Fastly has no prefix purge: tag responses with ``Surrogate-Key`` instead.
    """

    KEYS_PER_REQUEST = 256

    def __init__(
        self,
        service_id: str,
        api_token: str,
        *,
        base_url: str = "https://api.fastly.com",
        client: httpx.AsyncClient | None = None,
        timeout_s: float = 10.0,
    ) -> None:
        super().__init__(base_url, client=client, timeout_s=timeout_s)
        self._service = quote(service_id, safe="")
        self._token = api_token

    def __repr__(self) -> str:
        return f"FastlyPurger(service_id={self._service!r})"

    async def purge(self, selector: PurgeSelector, /, *, soft: bool = False) -> PurgeResult:
        """Purge through Fastly's API."""
        headers = {"Fastly-Key": self._token, "Accept": "application/json"}
        if soft:
            headers["Fastly-Soft-Purge"] = "1"
        ids: list[str] = []
        if selector.kind is PurgeKind.URL:
            for url in selector.values:
                parts = urlsplit(url)
                target = (
                    parts.netloc + (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
                )
                response = await self._send(
                    "POST", "/purge/" + quote(target, safe="/?=&:"), headers
                )
                ids.append(str(self._json(response, "Fastly").get("id", "")))
        elif selector.kind is PurgeKind.TAG:
            for batch in _batches(selector.values, self.KEYS_PER_REQUEST):
                body = json.dumps({"surrogate_keys": list(batch)}).encode()
                json_headers = {**headers, "Content-Type": "application/json"}
                response = await self._send(
                    "POST", f"/service/{self._service}/purge", json_headers, body
                )
                ids.extend(str(v) for v in self._json(response, "Fastly").values())
        elif selector.kind is PurgeKind.ALL:
            if soft:
                raise InvalidInputError("Fastly's purge-all is always hard; pass soft=False")
            await self._send("POST", f"/service/{self._service}/purge_all", headers)
        else:
            raise InvalidInputError("Fastly has no prefix purge; tag responses with Surrogate-Key")
        return PurgeResult(purged=None, ids=tuple(ids))


class CloudflarePurger(HttpPurger):
    """Cloudflare: files (URLs), cache tags, prefixes and everything; all hard.

    *per_request* is the plan's limit of items per purge call (30 by default).
    """

    def __init__(
        self,
        zone_id: str,
        api_token: str,
        *,
        base_url: str = "https://api.cloudflare.com/client/v4",
        client: httpx.AsyncClient | None = None,
        timeout_s: float = 10.0,
        per_request: int = 30,
    ) -> None:
        super().__init__(base_url, client=client, timeout_s=timeout_s)
        self._zone = quote(zone_id, safe="")
        self._token = api_token
        self._per_request = per_request

    def __repr__(self) -> str:
        return f"CloudflarePurger(zone_id={self._zone!r})"

    async def purge(self, selector: PurgeSelector, /, *, soft: bool = False) -> PurgeResult:
        """Purge through Cloudflare's ``purge_cache`` endpoint."""
        if soft:
            raise InvalidInputError("Cloudflare has no soft purge; pass soft=False")
        field = {
            PurgeKind.URL: "files",
            PurgeKind.TAG: "tags",
            PurgeKind.PREFIX: "prefixes",
        }.get(selector.kind)
        bodies: list[dict[str, Any]]
        if field is None:
            bodies = [{"purge_everything": True}]
        else:
            values = list(selector.values)
            if selector.kind is PurgeKind.PREFIX:  # Cloudflare prefixes carry no scheme
                values = [v.split("://", 1)[-1] for v in values]
            bodies = [{field: list(b)} for b in _batches(values, self._per_request)]
        headers = {"Authorization": f"Bearer {self._token}", "Content-Type": "application/json"}
        ids: list[str] = []
        for body in bodies:
            response = await self._send(
                "POST", f"/zones/{self._zone}/purge_cache", headers, json.dumps(body).encode()
            )
            answer = self._json(response, "Cloudflare")
            if not answer.get("success"):
                raise PurgeRejectedError(f"Cloudflare refused the purge: {answer.get('errors')}")
            result = answer.get("result")
            ids.append(str(result.get("id", "")) if isinstance(result, dict) else "")
        return PurgeResult(purged=None, ids=tuple(ids))
