"""AWS Signature Version 4 (header form), with ``hashlib`` and ``hmac`` only.

Produces the same ``Authorization`` header as botocore's ``SigV4Auth`` for the
requests the purgers send (checked in the tests): every header signed except
``user-agent``/``expect``, ``host`` added from the URL, values with runs of
whitespace collapsed, the query sorted and percent-encoded.
"""

from __future__ import annotations

import hashlib
import hmac
import time
from urllib.parse import quote, urlsplit

import attrs

__all__ = ["AwsCredentials", "sigv4_headers"]

_UNSIGNED = frozenset({"user-agent", "expect", "x-amzn-trace-id"})


@attrs.frozen(repr=False)
class AwsCredentials:
    """An AWS access key (and optional session token). The repr never shows the secret."""

    access_key_id: str
    secret_access_key: str
    session_token: str | None = None

    def __repr__(self) -> str:
        return f"AwsCredentials(access_key_id={self.access_key_id!r}, secret_access_key='***')"


def _hmac(key: bytes, text: str) -> bytes:
    return hmac.digest(key, text.encode("utf-8"), "sha256")


def _canonical_query(query: str) -> str:
    # The URL's query is taken as already encoded, sorted by key then value (as botocore does).
    if not query:
        return ""
    pairs = [part.partition("=")[::2] for part in query.split("&")]
    return "&".join(f"{k}={v}" for k, v in sorted(pairs))


def sigv4_headers(
    method: str,
    url: str,
    headers: dict[str, str],
    body: bytes,
    credentials: AwsCredentials,
    *,
    region: str,
    service: str,
    now: float | None = None,
) -> dict[str, str]:
    """Return *headers* plus ``X-Amz-Date``, the session token if any, and ``Authorization``."""
    moment = time.gmtime(time.time() if now is None else now)
    amz_date = time.strftime("%Y%m%dT%H%M%SZ", moment)
    day = amz_date[:8]
    parts = urlsplit(url)
    out = dict(headers)
    out["X-Amz-Date"] = amz_date
    if credentials.session_token:
        out["X-Amz-Security-Token"] = credentials.session_token
    signed: dict[str, str] = {}
    for name, value in out.items():
        lower = name.lower()
        if lower not in _UNSIGNED:
            signed[lower] = " ".join(value.split())
    if "host" not in signed:
        default = {"http": 80, "https": 443}.get(parts.scheme)
        host = parts.hostname or ""
        if parts.port is not None and parts.port != default:
            host = f"{host}:{parts.port}"
        signed["host"] = host
    names = sorted(signed)
    canonical_headers = "".join(f"{n}:{signed[n]}\n" for n in names)
    signed_headers = ";".join(names)
    canonical_request = "\n".join(
        [
            method.upper(),
            quote(parts.path or "/", safe="/~"),
            _canonical_query(parts.query),
            canonical_headers,
            signed_headers,
            hashlib.sha256(body).hexdigest(),
        ]
    )
    scope = f"{day}/{region}/{service}/aws4_request"
    string_to_sign = "\n".join(
        [
            "AWS4-HMAC-SHA256",
            amz_date,
            scope,
            hashlib.sha256(canonical_request.encode("utf-8")).hexdigest(),
        ]
    )
    key = _hmac(("AWS4" + credentials.secret_access_key).encode("utf-8"), day)
    for part in (region, service, "aws4_request"):
        key = _hmac(key, part)
    signature = hmac.new(key, string_to_sign.encode("utf-8"), hashlib.sha256).hexdigest()
    out["Authorization"] = (
        f"AWS4-HMAC-SHA256 Credential={credentials.access_key_id}/{scope}, "
        f"SignedHeaders={signed_headers}, Signature={signature}"
    )
    return out
