"""The proxy's admin endpoints, served on their own port: ``/metrics`` and an authenticated purge.

``GET /metrics``: the edge's metrics in the Prometheus text format (needs the
``[prometheus]`` extra). ``GET /healthz``: 200 while serving. ``POST /purge``
with ``Authorization: Bearer <token>`` and a JSON body
``{"kind": "url" | "tag" | "prefix" | "all", "values": [...], "soft": false}``
purges and answers ``{"purged": n}``; a wrong or missing token gets 401 (the
token is compared in constant time and never logged). :class:`AdminHandler`
answers for one process; :class:`FanOutAdmin` (the parent of several worker
processes) forwards each request to every worker's own admin socket, adds
their purge counts, and labels each worker's metrics with ``worker="N"``.
"""

from __future__ import annotations

import hmac
import json
import logging
from collections.abc import Callable, Iterable, Sequence
from typing import Any

from commercekit._extras import require
from commercekit._json import read_json_object
from commercekit.cdn._edge._cache import EdgeCache
from commercekit.cdn._purge._selector import PurgeKind, PurgeSelector
from commercekit.errors import InvalidInputError

from ._proxy import WireResponse

__all__ = ["AdminHandler", "FanOutAdmin"]

log = logging.getLogger("commercekit.cdn")

Exposition = Callable[[], tuple[bytes, str]]


def _answer(status: int, body: bytes, content_type: str = "application/json") -> WireResponse:
    headers = [
        (b"content-type", content_type.encode()),
        (b"content-length", str(len(body)).encode()),
        (b"cache-control", b"no-store"),
    ]
    return status, headers, body


def _json(status: int, value: Any) -> WireResponse:
    return _answer(status, json.dumps(value).encode() + b"\n")


def _authorized(token: str, headers: Iterable[tuple[bytes | str, bytes | str]]) -> bool:
    if not token:
        return False
    for name, value in headers:
        if _text(name).lower() == "authorization":
            given = value if isinstance(value, bytes) else value.encode("latin-1")
            return hmac.compare_digest(given.strip(), b"Bearer " + token.encode())
    return False


def _refused() -> WireResponse:
    log.warning("a purge with a wrong or missing token was refused")
    return _json(401, {"error": "a valid Authorization: Bearer token is required"})


def parse_purge(body: bytes) -> tuple[PurgeSelector, bool]:
    """The selector and softness a purge request's JSON body asks for (may raise 400s)."""
    doc = read_json_object(body or b"{}", what="the purge body")
    try:
        kind = PurgeKind(doc.get("kind", "url"))
    except ValueError as exc:
        raise InvalidInputError("kind must be one of url, tag, prefix, all") from exc
    values = doc.get("values", [])
    if not isinstance(values, list) or len(values) > 1000:
        raise InvalidInputError("values must be a list of at most 1,000 strings")
    soft = doc.get("soft", False)
    if not isinstance(soft, bool):
        raise InvalidInputError("soft must be true or false")
    return PurgeSelector(kind, tuple(values)), soft


class AdminHandler:
    """The admin endpoints of one process: *edge* to purge, *exposition* for ``/metrics``."""

    max_body_bytes = 256 * 1024

    def __init__(
        self, edge: EdgeCache, *, token: str, exposition: Exposition | None = None
    ) -> None:
        self._edge = edge
        self._token = token
        self._exposition = exposition

    async def respond(
        self,
        method: str,
        target: str,
        headers: Iterable[tuple[bytes | str, bytes | str]],
        body: bytes = b"",
    ) -> WireResponse:
        """Answer one admin request; never raises."""
        path = target.partition("?")[0]
        if path == "/healthz" and method in ("GET", "HEAD"):
            return _answer(200, b"ok\n", "text/plain")
        if path == "/metrics" and method in ("GET", "HEAD"):
            if self._exposition is None:
                return _answer(503, b"install commercekit[prometheus] for /metrics\n", "text/plain")
            text, content_type = self._exposition()
            return _answer(200, text, content_type)
        if path == "/purge":
            if method != "POST":
                return _json(405, {"error": "use POST"})
            if not _authorized(self._token, headers):
                return _refused()
            try:
                selector, soft = parse_purge(body)
                result = await self._edge.purge(selector, soft=soft)
            except InvalidInputError as exc:
                return _json(400, {"error": str(exc)})
            log.info("purged %s %s (soft=%s)", selector.kind.value, selector.values[:5], soft)
            return _json(200, {"purged": result.purged})
        return _json(404, {"error": "not found; try /metrics, /healthz or POST /purge"})


class FanOutAdmin:
    """The admin endpoints of a parent process: each request goes to every worker's socket."""

    max_body_bytes = AdminHandler.max_body_bytes

    def __init__(self, sockets: Sequence[str], *, token: str) -> None:
        # At start-up, not on the first admin request: the workers are reached with httpx.
        require("httpx", extra="cdn", feature="the admin endpoints of several workers")
        self._sockets = sockets
        self._token = token

    async def respond(
        self,
        method: str,
        target: str,
        headers: Iterable[tuple[bytes | str, bytes | str]],
        body: bytes = b"",
    ) -> WireResponse:
        """Forward one admin request to every worker; combine the answers."""
        import httpx

        path = target.partition("?")[0]
        if path == "/purge" and method == "POST" and not _authorized(self._token, headers):
            return _refused()
        answers: list[httpx.Response] = []
        try:
            for uds in self._sockets:
                transport = httpx.AsyncHTTPTransport(uds=uds)
                async with httpx.AsyncClient(transport=transport, timeout=30) as client:
                    answers.append(
                        await client.request(
                            method,
                            "http://worker" + target,
                            headers=[(_text(k), _text(v)) for k, v in headers if _forwarded(k)],
                            content=body,
                        )
                    )
        except httpx.HTTPError as exc:
            log.warning("an admin request to a worker failed: %r", exc)
            return _json(502, {"error": "a worker did not answer"})
        failed = next((a for a in answers if a.status_code != 200), None)
        if failed is not None:
            return _answer(failed.status_code, failed.content)
        if path == "/purge":
            counts = [a.json().get("purged") for a in answers]
            total = None if None in counts else sum(counts)
            return _json(200, {"purged": total, "workers": len(answers)})
        if path == "/metrics":
            text = merge_metrics([a.content for a in answers])
            return _answer(200, text, answers[0].headers.get("content-type", "text/plain"))
        return _answer(200, answers[0].content, "text/plain")


def _text(value: bytes | str) -> str:
    return value.decode("latin-1") if isinstance(value, bytes) else value


def _forwarded(name: bytes | str) -> bool:
    return _text(name).lower() in ("authorization", "content-type")


def merge_metrics(texts: Sequence[bytes]) -> bytes:
    """Join the Prometheus texts of several workers, each sample labelled ``worker="N"``.

    Each metric family stays contiguous (its ``# HELP``/``# TYPE`` once, then
    the samples of every worker), as the text format requires.
    """
    families: dict[bytes, tuple[list[bytes], list[bytes]]] = {}
    for worker, text in enumerate(texts):
        label = f'worker="{worker}"'.encode()
        family = b""
        for line in text.splitlines():
            if line.startswith((b"# HELP ", b"# TYPE ")):
                family = line.split(b" ", 3)[2]
                comments, _ = families.setdefault(family, ([], []))
                if worker == 0:
                    comments.append(line)
                continue
            if not line or line.startswith(b"#"):
                continue
            name, space, value = line.rpartition(b" ")
            if name.endswith(b"}"):
                joiner = b"" if name.endswith(b"{}") else b","
                name = name[:-1] + joiner + label + b"}"
            else:
                name = name + b"{" + label + b"}"
            families.setdefault(family, ([], []))[1].append(name + space + value)
    out = [line for comments, samples in families.values() for line in (*comments, *samples)]
    return b"\n".join(out) + b"\n"
