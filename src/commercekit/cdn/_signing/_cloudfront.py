"""CloudFront signed URLs and signed cookies (canned and custom policies), via ``cryptography``.

Byte-compatible with botocore's ``CloudFrontSigner``: the policy is the same
compact JSON, the signature is RSA PKCS#1 v1.5 over SHA-1 (CloudFront's
classic keys) or SHA-256 (with ``Hash-Algorithm=SHA256``), or ECDSA P-256 over
SHA-256, in CloudFront's base64 (``+``->``-``, ``=``->``_``, ``/``->``~``).

RSA signing costs hundreds of microseconds, so :meth:`CloudFrontSigner.sign_for`
rounds the expiry up to a window and memoizes one signature per URL and window.
"""

from __future__ import annotations

import base64
import binascii
import fnmatch
import json
import math
import time
from collections import OrderedDict
from typing import Literal
from urllib.parse import parse_qsl, urlsplit

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, padding, rsa

from commercekit._json import read_json
from commercekit.errors import ConfigurationError, SignatureError, SignatureExpiredError
from commercekit.typing import WallClock

__all__ = ["CloudFrontSigner", "cloudfront_b64decode", "cloudfront_b64encode", "cloudfront_policy"]

HashName = Literal["SHA1", "SHA256"]
_SIGNING_PARAMS = ("Expires", "Policy", "Signature", "Key-Pair-Id", "Hash-Algorithm")
_MEMO_ENTRIES = 4096


def cloudfront_b64encode(data: bytes) -> str:
    """CloudFront's URL-safe base64: ``+`` -> ``-``, ``=`` -> ``_``, ``/`` -> ``~``."""
    return (
        base64.b64encode(data).replace(b"+", b"-").replace(b"=", b"_").replace(b"/", b"~").decode()
    )


def cloudfront_b64decode(text: str) -> bytes:
    """Undo :func:`cloudfront_b64encode`; raise :class:`SignatureError` on garbage."""
    try:
        raw = text.replace("-", "+").replace("_", "=").replace("~", "/").encode("ascii")
        return base64.b64decode(raw, validate=True)
    except (binascii.Error, ValueError, UnicodeEncodeError) as exc:
        raise SignatureError("a CloudFront signature or policy is not valid base64") from exc


def cloudfront_policy(
    resource: str,
    *,
    expires_at: float,
    starts_at: float | None = None,
    ip_range: str | None = None,
) -> str:
    """Return the compact policy JSON botocore's ``build_policy`` writes, key order included."""
    condition: dict[str, object] = {"DateLessThan": {"AWS:EpochTime": int(expires_at)}}
    if ip_range:
        condition["IpAddress"] = {"AWS:SourceIp": ip_range if "/" in ip_range else ip_range + "/32"}
    if starts_at is not None:
        condition["DateGreaterThan"] = {"AWS:EpochTime": int(starts_at)}
    statement = {"Resource": resource, "Condition": condition}
    return json.dumps({"Statement": [statement]}, separators=(",", ":"))


class CloudFrontSigner:
    """Signs URLs and cookies for one CloudFront key (*key_pair_id* and its private key).

    *private_key* is a ``cryptography`` RSA or EC private key, or PEM bytes.
    *hash_algorithm* is ``"SHA1"`` (the default CloudFront and botocore use)
    or ``"SHA256"``; EC keys always use SHA-256. :meth:`verify` checks with
    the matching public key, allowing *clock_skew_s*.
    """

    def __init__(
        self,
        key_pair_id: str,
        private_key: rsa.RSAPrivateKey | ec.EllipticCurvePrivateKey | bytes,
        *,
        hash_algorithm: HashName = "SHA1",
        clock: WallClock = time.time,
        clock_skew_s: float = 30.0,
        window_s: float = 300.0,
    ) -> None:
        if isinstance(private_key, bytes):
            loaded = serialization.load_pem_private_key(private_key, password=None)
            if not isinstance(loaded, rsa.RSAPrivateKey | ec.EllipticCurvePrivateKey):
                raise ConfigurationError("CloudFront keys are RSA or ECDSA (P-256)")
            private_key = loaded
        if hash_algorithm not in ("SHA1", "SHA256"):
            raise ConfigurationError(
                f"hash_algorithm must be SHA1 or SHA256, not {hash_algorithm!r}"
            )
        if not key_pair_id or any(c in key_pair_id for c in "&=?#"):
            raise ConfigurationError(f"key_pair_id {key_pair_id!r} is not a CloudFront key id")
        self._key_id = key_pair_id
        self._key = private_key
        self._ec = isinstance(private_key, ec.EllipticCurvePrivateKey)
        self._hash: HashName = "SHA256" if self._ec else hash_algorithm
        self._clock = clock
        self._skew = clock_skew_s
        self._window = window_s
        self._memo: OrderedDict[tuple[str, int], str] = OrderedDict()

    # -- signing ------------------------------------------------------------------------

    def _signature(self, policy: bytes) -> bytes:
        algorithm = hashes.SHA256() if self._hash == "SHA256" else hashes.SHA1()  # noqa: S303
        if isinstance(self._key, ec.EllipticCurvePrivateKey):
            return self._key.sign(policy, ec.ECDSA(algorithm))
        return self._key.sign(policy, padding.PKCS1v15(), algorithm)

    def _params(
        self,
        resource: str,
        expires_at: float,
        starts_at: float | None = None,
        ip: str | None = None,
        *,
        canned: bool,
    ) -> list[tuple[str, str]]:
        policy = cloudfront_policy(
            resource, expires_at=expires_at, starts_at=starts_at, ip_range=ip
        )
        raw = policy.encode("utf-8")
        if canned:
            first = ("Expires", str(int(expires_at)))
        else:
            first = ("Policy", cloudfront_b64encode(raw))
        params = [first, ("Signature", cloudfront_b64encode(self._signature(raw)))]
        if self._hash == "SHA256":
            params.append(("Hash-Algorithm", "SHA256"))
        params.append(("Key-Pair-Id", self._key_id))
        return params

    def sign(
        self,
        url: str,
        /,
        *,
        expires_at: float,
        starts_at: float | None = None,
        ip_range: str | None = None,
        resource: str | None = None,
    ) -> str:
        """Return *url* signed: canned, or custom with *starts_at*, *ip_range* or *resource*.

        *resource* (custom policies only) may hold ``*`` wildcards, to sign once for many URLs.
        """
        canned = starts_at is None and ip_range is None and resource in (None, url)
        params = self._params(resource or url, expires_at, starts_at, ip_range, canned=canned)
        separator = "&" if "?" in url else "?"
        return url + separator + "&".join(f"{k}={v}" for k, v in params)

    def sign_for(self, url: str, /, *, ttl_s: float) -> str:
        """Return *url* signed for at least *ttl_s*, memoized: one RSA signature per URL per window.

        The expiry is rounded up to a multiple of ``window_s``, so every call
        within one window returns the same URL (also friendlier to caches).
        """
        expires = int(math.ceil((self._clock() + ttl_s) / self._window) * self._window)
        key = (url, expires)
        found = self._memo.get(key)
        if found is not None:
            return found
        signed = self.sign(url, expires_at=expires)
        self._memo[key] = signed
        if len(self._memo) > _MEMO_ENTRIES:
            self._memo.popitem(last=False)
        return signed

    def signed_cookies(
        self,
        resource: str,
        /,
        *,
        expires_at: float,
        starts_at: float | None = None,
        ip_range: str | None = None,
    ) -> dict[str, str]:
        """Return the ``CloudFront-*`` cookies granting *resource* (custom: wildcards allowed)."""
        canned = starts_at is None and ip_range is None and "*" not in resource
        params = self._params(resource, expires_at, starts_at, ip_range, canned=canned)
        return {f"CloudFront-{k}": v for k, v in params}

    # -- verifying ----------------------------------------------------------------------

    def verify(self, url: str, /) -> None:
        """Raise :class:`SignatureError` unless *url* is validly signed by this key, now."""
        try:
            parts = urlsplit(url)
        except ValueError as exc:
            raise SignatureError("the signed URL does not parse") from exc
        pairs = parse_qsl(parts.query, keep_blank_values=True)
        found = {k: v for k, v in pairs if k in _SIGNING_PARAMS}
        kept = [f"{k}={v}" for k, v in _raw_pairs(parts.query) if k not in _SIGNING_PARAMS]
        base = url.split("?", 1)[0] + ("?" + "&".join(kept) if kept else "")
        self._verify_params(found, base)

    def verify_cookies(self, url: str, cookies: dict[str, str]) -> None:
        """Raise :class:`SignatureError` unless *cookies* grant *url* now."""
        found = {
            k.removeprefix("CloudFront-"): v
            for k, v in cookies.items()
            if k.startswith("CloudFront-")
        }
        self._verify_params(found, url)

    def _verify_params(self, found: dict[str, str], url: str) -> None:
        if found.get("Key-Pair-Id") != self._key_id or "Signature" not in found:
            raise SignatureError("missing signature or unknown Key-Pair-Id")
        if "Expires" in found:
            text = found["Expires"]
            # int() also takes "+1", " 1", "1_0" and other scripts' digits: another spelling
            # of one signed value would give a URL (and a cache key) the signer never made.
            if not (text.isascii() and text.isdigit() and len(text) <= 12) or (
                str(int(text)) != text
            ):
                raise SignatureError("Expires is not a whole number as the signer writes it")
            expires = int(text)
            policy = cloudfront_policy(url, expires_at=expires).encode()
        elif "Policy" in found:
            policy = cloudfront_b64decode(found["Policy"])
        else:
            raise SignatureError("neither Expires nor Policy is present")
        self._check_signature(policy, cloudfront_b64decode(found["Signature"]))
        self._check_policy(policy, url)

    def _check_signature(self, policy: bytes, signature: bytes) -> None:
        algorithm = hashes.SHA256() if self._hash == "SHA256" else hashes.SHA1()  # noqa: S303
        try:
            if isinstance(self._key, ec.EllipticCurvePrivateKey):
                self._key.public_key().verify(signature, policy, ec.ECDSA(algorithm))
            else:
                self._key.public_key().verify(signature, policy, padding.PKCS1v15(), algorithm)
        except InvalidSignature as exc:
            raise SignatureError("the CloudFront signature does not match") from exc

    def _check_policy(self, policy: bytes, url: str) -> None:
        try:
            [statement] = read_json(policy, what="the CloudFront policy")["Statement"]
            resource = statement["Resource"]
            condition = statement["Condition"]
            expires = int(condition["DateLessThan"]["AWS:EpochTime"])
            starts = condition.get("DateGreaterThan", {}).get("AWS:EpochTime")
        except (ValueError, KeyError, TypeError, AttributeError) as exc:
            raise SignatureError("the CloudFront policy is malformed") from exc
        if not fnmatch.fnmatchcase(url, resource):
            raise SignatureError("the policy does not cover this URL")
        now = self._clock()
        if now > expires + self._skew:
            raise SignatureExpiredError(f"the URL expired at {expires} (now {int(now)})")
        if starts is not None and now < int(starts) - self._skew:
            raise SignatureExpiredError(f"the URL is not valid before {starts} (now {int(now)})")

    def __repr__(self) -> str:
        return f"CloudFrontSigner(key_pair_id={self._key_id!r}, hash={self._hash})"


def _raw_pairs(query: str) -> list[tuple[str, str]]:
    out = []
    for part in query.split("&"):
        if part:
            k, _, v = part.partition("=")
            out.append((k, v))
    return out
