"""Stripe's wire format: form encoding, headers, and HTTP statuses mapped to commercekit errors.

Stripe takes ``application/x-www-form-urlencoded`` bodies with nested keys in
brackets (``metadata[order]=42``, ``card[number]=...``), an ``Authorization:
Bearer`` key, and an ``Idempotency-Key`` header on every POST. Its statuses
mean, for a payment:

====================  ==============================================  =====================
status                meaning                                          raised here
====================  ==============================================  =====================
2xx                   done                                             (the JSON object)
402                   the card was declined                            (a decline result)
400, 404              the request is wrong or names nothing            InvalidInputError,
                                                                       NotFoundError
400 idempotency_error the key was used with other parameters           ConflictError
401, 403              the API key is wrong                             ConfigurationError
409                   a request with the same key is in flight         OperationInFlightError
429                   too many requests (``Retry-After``)              RateLimitedError
5xx                   may or may not have happened                     OutcomeUnknownError
====================  ==============================================  =====================
"""

from __future__ import annotations

import hashlib
import urllib.parse
from collections.abc import Mapping, Sequence
from typing import Any, Final

from commercekit.errors import (
    ConfigurationError,
    ConflictError,
    InvalidInputError,
    InvalidStateError,
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

__all__ = ["CardError", "StripeClient", "form_encode"]

Params = Mapping[str, Any]
_MAX_MESSAGE: Final = 200


def header_key(key: str) -> str:
    """*key* as an HTTP header value: as it is when printable ASCII, else a stable digest.

    Header values travel as Latin-1 at best, so a key in another script (or
    with a control character) is sent as ``ck-`` and a SHA-256 hex digest of
    its UTF-8 bytes, the same for every retry of that key.
    """
    if key.isascii() and key.isprintable():
        return key
    return "ck-" + hashlib.sha256(key.encode("utf-8", "surrogatepass")).hexdigest()


def form_encode(params: Params) -> str:
    """Encode *params* as Stripe does: nested mappings and lists as ``a[b]`` and ``a[0]``."""
    pairs: list[tuple[str, str]] = []

    def walk(prefix: str, value: Any) -> None:
        if value is None:
            return
        if isinstance(value, Mapping):
            for key, inner in value.items():
                walk(f"{prefix}[{key}]" if prefix else str(key), inner)
        elif isinstance(value, Sequence) and not isinstance(value, str | bytes):
            for i, inner in enumerate(value):
                walk(f"{prefix}[{i}]", inner)
        elif isinstance(value, bool):
            pairs.append((prefix, "true" if value else "false"))
        else:
            pairs.append((prefix, str(value)))

    walk("", params)
    try:
        return urllib.parse.urlencode(pairs)
    except UnicodeEncodeError:  # a lone surrogate in a reference, a key, a description
        raise InvalidInputError(
            "a Stripe request parameter holds a lone surrogate, which cannot be sent"
        ) from None


class CardError(InvalidStateError):
    """Stripe answered 402: the card was declined. Carries Stripe's ``error`` object.

    The gateway turns it into a decline result where one belongs (authorize,
    purchase, verify); from any other call (a capture, a refund) it reaches
    the caller as the :class:`~commercekit.errors.InvalidStateError` it is.
    """

    def __init__(self, error: Mapping[str, Any]) -> None:
        super().__init__(f"card declined: {redact_provider_text(error.get('code'), limit=64)}")
        self.error = error


class StripeClient:
    """Sends one Stripe API call over a transport and maps the answer."""

    def __init__(
        self,
        api_key: str,
        transport: HttpTransport | AsyncHttpTransport,
        *,
        base_url: str,
        timeout_s: float,
        stripe_version: str | None,
    ) -> None:
        if not api_key:
            raise ConfigurationError("a Stripe secret key (sk_...) is needed")
        self._api_key = api_key
        self._transport = transport
        self._base_url = base_url.rstrip("/")
        self._timeout_s = timeout_s
        self._version = stripe_version

    def post(self, path: str, params: Params, *, idempotency_key: str) -> Flow[dict[str, Any]]:
        """POST *params* to *path* with *idempotency_key* (a flow)."""
        if not isinstance(idempotency_key, str) or not idempotency_key:
            raise InvalidInputError("a Stripe call needs a non-empty str idempotency key")
        headers = self._headers()
        headers["Content-Type"] = "application/x-www-form-urlencoded"
        headers["Idempotency-Key"] = header_key(idempotency_key)
        body = form_encode(params).encode()
        request = HttpRequest("POST", self._base_url + path, headers, body, self._timeout_s)
        response = yield call(self._transport.handle, request)
        return self._answer(request, response)

    def get(self, path: str, params: Params | None = None) -> Flow[dict[str, Any]]:
        """GET *path* with *params* in the query string (a flow)."""
        query = form_encode(params or {})
        url = self._base_url + path + (f"?{query}" if query else "")
        request = HttpRequest("GET", url, self._headers(), b"", self._timeout_s)
        response = yield call(self._transport.handle, request)
        return self._answer(request, response)

    def _headers(self) -> dict[str, str]:
        headers = {"Authorization": f"Bearer {self._api_key}", "Accept": "application/json"}
        if self._version:
            headers["Stripe-Version"] = self._version
        return headers

    def _answer(self, request: HttpRequest, response: HttpResponse) -> dict[str, Any]:
        status = response.status
        data = json_object(response)
        if 200 <= status < 300:
            if data is None:
                raise OutcomeUnknownError(
                    f"Stripe answered {status} to {request.method} with a body that is not "
                    "JSON; the call may have taken effect"
                )
            return data
        error: Mapping[str, Any] = (data or {}).get("error") or {}
        message = redact_provider_text(error.get("message") or "", limit=_MAX_MESSAGE)
        what = f"Stripe {status} on {request.method} {urllib.parse.urlsplit(request.url).path}"
        if status == 402:
            raise CardError(error)
        if status == 409:
            raise OperationInFlightError(
                f"{what}: a request with this idempotency key is in flight; retry it as it is",
                retry_after_s=retry_after_s(response),
            )
        if status == 429:
            raise RateLimitedError(f"{what}: rate limited", retry_after_s=retry_after_s(response))
        if status >= 500:
            raise OutcomeUnknownError(f"{what}: {message or 'server error'}; look it up first")
        if status in (401, 403):
            raise ConfigurationError(f"{what}: the API key was refused")
        if status == 404:
            raise NotFoundError(f"{what}: {message or 'no such object'}")
        if error.get("type") == "idempotency_error":
            raise ConflictError(f"{what}: {message}")
        raise InvalidInputError(f"{what}: {message or 'bad request'}")

    def __repr__(self) -> str:
        return f"StripeClient(base_url={self._base_url!r})"
