"""Amazon Pay's wire format: endpoints, signed JSON calls, and HTTP statuses mapped to errors.

A call goes to ``https://pay-api.amazon.{com,eu,jp}/{sandbox|live}/v2/...``
(``/v2/...`` for a public key id that names its environment, ``SANDBOX-...``
or ``LIVE-...``), signed by :class:`AmazonPaySigner`. A POST that creates
something carries ``x-amz-pay-idempotency-key``: at most 32 characters of
``[A-Za-z0-9_-]``, so it is derived from the caller's key (as it is when it
fits, else a SHA-256 digest), the same for every retry. Amazon keeps the
first answer to a key and replays it; a different request under the same key
is a ``DuplicateIdempotencyKey`` error. Statuses mean:

====================  ==========================================  =======================
status                meaning                                      raised here
====================  ==========================================  =======================
200, 201              done                                          (the JSON object)
400                   the request is wrong                          InvalidInputError
400 DuplicateIdem...  the key was used for another request          ConflictError
401, 403              the key or account is refused                 ConfigurationError
404                   no such object                                NotFoundError
422 and 4xx           the object's state or amounts refuse it       AmazonPayRefusal
429                   throttled (``Retry-After``)                   RateLimitedError
5xx                   may or may not have happened                  OutcomeUnknownError
====================  ==========================================  =======================

A GET or a failure before anything changed is an :class:`UnavailableError`
instead of an unknown outcome. Amazon's ``message`` text is never put into
an error: it may quote what was sent.
"""

from __future__ import annotations

import hashlib
import json
import re
import time
import urllib.parse
from collections.abc import Mapping
from typing import Any, Final

import attrs
from cryptography.hazmat.primitives.asymmetric import rsa

from commercekit.errors import (
    ConfigurationError,
    ConflictError,
    InvalidInputError,
    InvalidStateError,
    NotFoundError,
    OutcomeUnknownError,
    RateLimitedError,
    UnavailableError,
)
from commercekit.payments._amazonpay._signing import (
    ALGORITHMS,
    AmazonPaySigner,
    SignedRequest,
    load_private_key,
    pay_date,
    query_string,
)
from commercekit.payments._core._flow import Flow, call, drive
from commercekit.payments._transports._answers import json_object, retry_after_s
from commercekit.payments._transports._http import HttpRequest, HttpResponse
from commercekit.payments._transports._httpx import AsyncHttpTransport
from commercekit.payments._typing import Clock, HttpTransport

__all__ = [
    "API_HOSTS",
    "AmazonPayClient",
    "AmazonPayConfig",
    "AmazonPayRefusal",
    "amazon_pay_idempotency_key",
    "check_id",
]

API_HOSTS: Final[Mapping[str, tuple[str, str]]] = {
    "us": ("na", "pay-api.amazon.com"),
    "eu": ("eu", "pay-api.amazon.eu"),
    "jp": ("jp", "pay-api.amazon.jp"),
}
"""Each region's ``x-amz-pay-region`` value and API host."""

_KEY: Final = re.compile(r"[A-Za-z0-9_-]{1,32}")
_CODE: Final = re.compile(r"[A-Za-z]{1,64}")
_ID: Final = re.compile(r"[A-Za-z0-9._-]{1,128}")
_VERSION: Final = "v2"


def amazon_pay_idempotency_key(key: str) -> str:
    """*key* as ``x-amz-pay-idempotency-key`` takes it: as it is when it fits, else a digest."""
    if _KEY.fullmatch(key):
        return key
    return "ck" + hashlib.sha256(key.encode()).hexdigest()[:30]


def _region(value: str) -> str:
    if value not in API_HOSTS:
        raise ConfigurationError(
            f"an Amazon Pay region is one of {sorted(API_HOSTS)}, not {value!r}"
        )
    return value


@attrs.frozen(repr=False)
class AmazonPayConfig:
    """One Amazon Pay merchant account: keys, region, environment, store.

    *private_key* is the PEM text (or the loaded key) of the RSA key whose
    public half is registered under *public_key_id* in Seller Central; it is
    loaded when the config is made and kept only as a key object, so the text
    is not kept and the key is never shown (``repr``, ``attrs.asdict``).
    *endpoint* replaces ``https://pay-api.amazon.<tld>`` (a loopback server in
    tests); ``x-amz-pay-host`` then names its host and port.
    """

    public_key_id: str
    private_key: rsa.RSAPrivateKey = attrs.field(converter=load_private_key, repr=False)
    store_id: str = attrs.field(kw_only=True)
    region: str = attrs.field(default="us", kw_only=True, validator=lambda i, a, v: _region(v))
    sandbox: bool = attrs.field(default=True, kw_only=True)
    algorithm: str = attrs.field(default="AMZN-PAY-RSASSA-PSS-V2", kw_only=True)
    endpoint: str | None = attrs.field(default=None, kw_only=True)
    timeout_s: float = attrs.field(default=30.0, kw_only=True)

    def __attrs_post_init__(self) -> None:
        if not self.store_id:
            raise ConfigurationError("an Amazon Pay store id (the client id) is needed")
        prefix = self.public_key_id.upper().split("-", 1)[0]
        if prefix in ("LIVE", "SANDBOX") and (prefix == "SANDBOX") != self.sandbox:
            raise ConfigurationError(
                f"public key id {self.public_key_id!r} is for {prefix.lower()}, "
                f"but sandbox={self.sandbox}"
            )
        if self.algorithm not in ALGORITHMS:
            raise ConfigurationError(f"Amazon Pay signs with one of {sorted(ALGORITHMS)}")

    @property
    def base_url(self) -> str:
        """Where calls go: the region's API host unless *endpoint* is set."""
        if self.endpoint:
            return self.endpoint.rstrip("/")
        return "https://" + API_HOSTS[self.region][1]

    @property
    def path_prefix(self) -> str:
        """``/v2`` for a key id that names its environment, else ``/sandbox/v2`` or ``/live/v2``."""
        prefix = self.public_key_id.upper()
        if prefix.startswith(("LIVE", "SANDBOX")):
            return f"/{_VERSION}"
        return f"/{'sandbox' if self.sandbox else 'live'}/{_VERSION}"

    def __repr__(self) -> str:
        return (
            f"AmazonPayConfig(public_key_id={self.public_key_id!r}, store_id={self.store_id!r}, "
            f"region={self.region!r}, sandbox={self.sandbox})"
        )


class AmazonPayRefusal(InvalidStateError):
    """Amazon answered 4xx with a reason code: the object's state or amounts refuse the call."""

    def __init__(self, message: str, *, status: int, reason_code: str) -> None:
        super().__init__(message)
        self.status = status
        self.reason_code = reason_code


class AmazonPayClient:
    """Sends one signed Checkout v2 call over a transport and maps the answer."""

    def __init__(
        self,
        config: AmazonPayConfig,
        transport: HttpTransport | AsyncHttpTransport,
        *,
        clock: Clock = time.time,
        user_agent: str = "commercekit-amazonpay/1 (Python)",
    ) -> None:
        self._config = config
        self._signer = AmazonPaySigner(
            config.public_key_id, config.private_key, algorithm=config.algorithm
        )
        self._transport = transport
        self._clock = clock
        self._user_agent = user_agent
        netloc = urllib.parse.urlsplit(config.base_url).netloc
        self._host = netloc if config.endpoint else API_HOSTS[config.region][1]

    @property
    def signer(self) -> AmazonPaySigner:
        """The signer (for button payloads)."""
        return self._signer

    def send(
        self,
        method: str,
        fragment: str,
        *,
        body: Mapping[str, Any] | None = None,
        query: Mapping[str, str] | None = None,
        idempotency_key: str | None = None,
    ) -> Flow[dict[str, Any]]:
        """Send *method* to ``<prefix>/<fragment>``; return Amazon's JSON object (a flow)."""
        request, _ = self.prepare(
            method, fragment, body=body, query=query, idempotency_key=idempotency_key
        )
        try:
            response = yield call(self._transport.handle, request)
        except OutcomeUnknownError:
            if method == "GET":
                raise UnavailableError(f"Amazon Pay GET {fragment.split('/')[0]} failed") from None
            raise
        return self._answer(method, fragment, response)

    def call(
        self,
        method: str,
        fragment: str,
        *,
        body: Mapping[str, Any] | None = None,
        query: Mapping[str, str] | None = None,
        idempotency_key: str | None = None,
    ) -> dict[str, Any]:
        """:meth:`send` run at once over a sync transport."""
        flow = self.send(method, fragment, body=body, query=query, idempotency_key=idempotency_key)
        return drive(flow)

    def prepare(
        self,
        method: str,
        fragment: str,
        *,
        body: Mapping[str, Any] | None = None,
        query: Mapping[str, str] | None = None,
        idempotency_key: str | None = None,
    ) -> tuple[HttpRequest, SignedRequest]:
        """The signed request :meth:`call` sends, and how it was signed."""
        path = f"{self._config.path_prefix}/{fragment}"
        data = b"" if body is None else json.dumps(body, ensure_ascii=False).encode()
        headers = {
            "accept": "application/json",
            "content-type": "application/json",
            "user-agent": self._user_agent,
            "x-amz-pay-date": pay_date(self._clock()),
            "x-amz-pay-host": self._host,
            "x-amz-pay-region": API_HOSTS[self._config.region][0],
        }
        if idempotency_key is not None:
            headers["x-amz-pay-idempotency-key"] = amazon_pay_idempotency_key(idempotency_key)
        signed = self._signer.sign_request(method, path, query=query, body=data, headers=headers)
        url = self._config.base_url + path
        if query:
            url += "?" + query_string(query)
        return HttpRequest(method, url, signed.headers, data, self._config.timeout_s), signed

    def _answer(self, method: str, fragment: str, response: HttpResponse) -> dict[str, Any]:
        status = response.status
        data = json_object(response) or {}
        what = f"Amazon Pay {status} on {method} {fragment.split('/')[0]}"
        changes = method != "GET"
        if 200 <= status < 300:
            if not data:
                if changes:
                    raise OutcomeUnknownError(f"{what} with a body that is not JSON; look it up")
                raise UnavailableError(f"{what} with a body that is not JSON")
            return data
        code = str(data.get("reasonCode") or "")
        code = code if _CODE.fullmatch(code) else ""
        named = f"{what} ({code})" if code else what
        if status == 429:
            raise RateLimitedError(f"{named}: throttled", retry_after_s=retry_after_s(response))
        if status >= 500 or status == 409:
            if changes:
                raise OutcomeUnknownError(f"{named}: the call may have taken effect; look it up")
            raise UnavailableError(f"{named}: retry later")
        if status in (401, 403):
            raise ConfigurationError(
                f"{named}: the signature, key or account was refused; check the public key "
                "id, the private key, the region and sandbox/live"
            )
        if status == 404:
            raise NotFoundError(f"{named}: no such object")
        if code == "DuplicateIdempotencyKey":
            raise ConflictError(f"{named}: the idempotency key was used for another request")
        if status == 400 or not code:
            raise InvalidInputError(f"{named}: the request was refused as it is")
        raise AmazonPayRefusal(f"{named}", status=status, reason_code=code)

    def __repr__(self) -> str:
        return f"AmazonPayClient({self._config!r})"


def check_id(value: str, what: str) -> str:
    """*value* if it can be an Amazon Pay object id in a URL path, else raise."""
    if not isinstance(value, str) or not _ID.fullmatch(value):
        raise InvalidInputError(f"an Amazon Pay {what} id is 1-128 of [A-Za-z0-9._-]")
    return value
