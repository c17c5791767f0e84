"""Adyen Checkout API's wire format: JSON bodies, headers, and HTTP statuses mapped to errors.

Every call is a JSON POST with the API key in ``X-API-Key`` and the
idempotency key in ``Idempotency-Key``. Adyen keeps a key for at least 31
days and answers a repeated request with the first response, so a request
whose answer was lost is resent as it is. A key has at most 64 characters:
a longer one is sent as a SHA-256 digest of itself (``ck-`` and 61 hex
digits), the same for every retry. Statuses mean, for a payment:

====================  ==============================================  =====================
status                meaning                                          raised here
====================  ==============================================  =====================
200, 201              done; a refusal is a 200 with ``resultCode``     (the JSON object)
400, 422              the request is wrong                             InvalidInputError
422 errorCode 704     the key's first request is still being handled   OperationInFlightError
401, 403              the API key is wrong or lacks the role           ConfigurationError
404                   no such payment (or a wrong URL)                 NotFoundError
429                   too many requests (``Retry-After``)              RateLimitedError
5xx                   may or may not have happened                     OutcomeUnknownError
====================  ==============================================  =====================
"""

from __future__ import annotations

import hashlib
import json
import urllib.parse
from collections.abc import Mapping
from typing import Any, Final

from commercekit.errors import (
    ConfigurationError,
    InvalidInputError,
    NotFoundError,
    OperationInFlightError,
    OutcomeUnknownError,
    RateLimitedError,
)
from commercekit.payments._core._flow import Flow, call
from commercekit.payments._redact import redact_provider_text
from commercekit.payments._transports._answers import json_object, retry_after_s
from commercekit.payments._transports._http import HttpRequest, HttpResponse
from commercekit.payments._transports._httpx import AsyncHttpTransport
from commercekit.payments._typing import HttpTransport

__all__ = ["AdyenClient", "adyen_key"]

_MAX_KEY: Final = 64
_MAX_MESSAGE: Final = 200
_IN_FLIGHT: Final = "704"


def adyen_key(key: str) -> str:
    """*key* as Adyen takes it: as it is up to 64 printable ASCII characters, else a digest."""
    if len(key) <= _MAX_KEY and key.isascii() and key.isprintable():
        return key
    return "ck-" + hashlib.sha256(key.encode("utf-8", "surrogatepass")).hexdigest()[: _MAX_KEY - 3]


class AdyenClient:
    """Sends one Checkout API call over a transport and maps the answer."""

    def __init__(
        self,
        api_key: str,
        transport: HttpTransport | AsyncHttpTransport,
        *,
        base_url: str,
        timeout_s: float,
    ) -> None:
        if not api_key:
            raise ConfigurationError("an Adyen API key (X-API-Key) is needed")
        self._api_key = api_key
        self._transport = transport
        self._base_url = base_url.rstrip("/")
        self._timeout_s = timeout_s

    def post(
        self, path: str, body: Mapping[str, Any], *, idempotency_key: str
    ) -> Flow[dict[str, Any]]:
        """POST *body* as JSON to *path* with *idempotency_key* (a flow)."""
        headers = {
            "X-API-Key": self._api_key,
            "Content-Type": "application/json",
            "Accept": "application/json",
            "Idempotency-Key": adyen_key(idempotency_key),
        }
        data = json.dumps(body, separators=(",", ":")).encode()
        request = HttpRequest("POST", self._base_url + path, headers, data, self._timeout_s)
        response = yield call(self._transport.handle, request)
        return self._answer(request, response)

    def _answer(self, request: HttpRequest, response: HttpResponse) -> dict[str, Any]:
        status = response.status
        data = json_object(response)
        what = f"Adyen {status} on POST {urllib.parse.urlsplit(request.url).path}"
        if 200 <= status < 300:
            if data is None:
                raise OutcomeUnknownError(
                    f"{what} with a body that is not JSON; the call may have taken effect"
                )
            return data
        error = data or {}
        code = redact_provider_text(error.get("errorCode") or "", limit=32)
        message = redact_provider_text(
            error.get("message") or error.get("detail") or "", limit=_MAX_MESSAGE
        )
        if status == 429:
            raise RateLimitedError(f"{what}: rate limited", retry_after_s=retry_after_s(response))
        if status >= 500:
            raise OutcomeUnknownError(f"{what}: {message or 'server error'}; look it up first")
        if status in (401, 403):
            raise ConfigurationError(f"{what}: the API key was refused or lacks a role")
        if status == 404:
            raise NotFoundError(f"{what}: {message or 'no such payment'}")
        if code == _IN_FLIGHT or status == 409:
            raise OperationInFlightError(
                f"{what}: the first request with this idempotency key is still being "
                "processed; retry it as it is",
                retry_after_s=retry_after_s(response),
            )
        detail = f" (errorCode {code})" if code else ""
        raise InvalidInputError(f"{what}: {message or 'bad request'}{detail}")

    def __repr__(self) -> str:
        return f"AdyenClient(base_url={self._base_url!r})"
