"""Amazon Pay's request signing: the canonical request, the string to sign, the headers.

Built the way Amazon's API SDKs build them (the Node.js SDK's ``signHeaders``):

* the signed headers are every header sent but ``authorization``, sorted by
  lower-cased name and joined with ``;``;
* the canonical request is ``METHOD\\n/path\\nquery\\n``, then
  ``name:value\\n`` for each signed header, a blank line, the signed header
  list, and the hex SHA-256 of the body (empty for none);
* the query string is ``key=encodeURIComponent(value)`` sorted by key and
  joined with ``&``;
* the string to sign is ``ALGORITHM\\n`` and the hex SHA-256 of the
  canonical request;
* the signature is RSASSA-PSS with SHA-256 and MGF1-SHA-256, salt 32 bytes
  for ``AMZN-PAY-RSASSA-PSS-V2`` and 20 for the older ``AMZN-PAY-RSASSA-PSS``,
  base64-encoded into ``authorization: ALGORITHM PublicKeyId=...,
  SignedHeaders=..., Signature=...``.

The private key is loaded once and never shown: not in ``repr``, not in an
error (a key that does not load raises :class:`ConfigurationError` naming
only what was wrong with it).
"""

from __future__ import annotations

import base64
import contextlib
import hashlib
import time
import urllib.parse
from collections.abc import Mapping
from typing import Final

import attrs
from cryptography.exceptions import InvalidSignature, UnsupportedAlgorithm
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import padding, rsa

from commercekit.errors import ConfigurationError, InvalidInputError, SignatureError

__all__ = [
    "ALGORITHMS",
    "AmazonPaySigner",
    "SignedRequest",
    "canonical_request",
    "load_private_key",
    "pay_date",
    "query_string",
    "string_to_sign",
    "verify_signature",
]

ALGORITHMS: Final[Mapping[str, int]] = {"AMZN-PAY-RSASSA-PSS-V2": 32, "AMZN-PAY-RSASSA-PSS": 20}
"""The signing algorithms Amazon Pay accepts, with the PSS salt length of each."""

_URI_SAFE: Final = "-_.!~*'()"  # what JavaScript's encodeURIComponent leaves as it is


def query_string(params: Mapping[str, str] | None) -> str:
    """*params* as Amazon's SDKs put them in the canonical request and the URL."""
    if not params:
        return ""
    return "&".join(
        f"{key}={urllib.parse.quote(str(params[key]), safe=_URI_SAFE)}" for key in sorted(params)
    )


def _sha256_hex(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def canonical_request(
    method: str, path: str, query: str, headers: Mapping[str, str], body: bytes
) -> str:
    """The canonical request of one call; *headers* are the signed ones, *path* starts with /."""
    names = sorted(headers, key=str.lower)
    lines = [method, path, query, *(f"{name.lower()}:{headers[name]}" for name in names)]
    signed = ";".join(name.lower() for name in names)
    return "\n".join(lines) + "\n\n" + signed + "\n" + _sha256_hex(body)


def string_to_sign(algorithm: str, canonical: str) -> str:
    """``ALGORITHM\\n`` and the hex SHA-256 of *canonical*."""
    return f"{algorithm}\n{_sha256_hex(canonical.encode())}"


def pay_date(now: float) -> str:
    """``x-amz-pay-date`` for the epoch seconds *now*: ``YYYY-MM-DDTHH:MM:SSZ``."""
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(now))


def _pss(algorithm: str) -> padding.PSS:
    return padding.PSS(mgf=padding.MGF1(hashes.SHA256()), salt_length=ALGORITHMS[algorithm])


def verify_signature(
    public_key: rsa.RSAPublicKey, algorithm: str, message: str, signature_b64: str
) -> None:
    """Check an Amazon Pay signature of *message*; raise :class:`SignatureError` if it fails."""
    if algorithm not in ALGORITHMS:
        raise SignatureError(f"unknown Amazon Pay signing algorithm {algorithm!r}")
    try:
        raw = base64.b64decode(signature_b64, validate=True)
        public_key.verify(raw, message.encode(), _pss(algorithm), hashes.SHA256())
    except (InvalidSignature, ValueError) as exc:
        raise SignatureError("the Amazon Pay signature does not verify") from exc


@attrs.frozen
class SignedRequest:
    """What signing one request produced: the headers to send and how they were reached."""

    headers: Mapping[str, str] = attrs.field(repr=False)
    canonical_request: str = attrs.field(repr=False)
    string_to_sign: str = attrs.field(repr=False)
    signed_headers: str


def load_private_key(private_key: str | bytes | rsa.RSAPrivateKey) -> rsa.RSAPrivateKey:
    """The RSA key in PEM text *private_key* (or the key itself), or ConfigurationError."""
    if isinstance(private_key, rsa.RSAPrivateKey):
        return private_key
    if not isinstance(private_key, str | bytes) or not private_key:
        raise ConfigurationError("an Amazon Pay private key is PEM text (str or bytes)")
    data = private_key.encode() if isinstance(private_key, str) else private_key
    key: object = None
    # the error is raised below, outside the handler: the loader's message may quote the key
    with contextlib.suppress(ValueError, TypeError, UnsupportedAlgorithm):
        key = serialization.load_pem_private_key(data, password=None)
    if key is None:
        raise ConfigurationError("the Amazon Pay private key is not an unencrypted PEM RSA key")
    if not isinstance(key, rsa.RSAPrivateKey):
        raise ConfigurationError("the Amazon Pay private key must be an RSA key")
    if key.key_size < 2048:
        raise ConfigurationError(f"the Amazon Pay private key has {key.key_size} bits; use 2048")
    return key


class AmazonPaySigner:
    """Signs requests for one public key id with its private key. The key is never shown."""

    def __init__(
        self,
        public_key_id: str,
        private_key: str | bytes | rsa.RSAPrivateKey,
        *,
        algorithm: str = "AMZN-PAY-RSASSA-PSS-V2",
    ) -> None:
        if not isinstance(public_key_id, str) or not public_key_id.strip():
            raise ConfigurationError("an Amazon Pay public key id is needed")
        if algorithm not in ALGORITHMS:
            raise ConfigurationError(
                f"Amazon Pay signs with one of {sorted(ALGORITHMS)}, not {algorithm!r}"
            )
        self._key = load_private_key(private_key)
        self.public_key_id = public_key_id
        self.algorithm = algorithm

    @property
    def public_key(self) -> rsa.RSAPublicKey:
        """The public half (what Amazon holds under the public key id)."""
        return self._key.public_key()

    def sign(self, message: str) -> str:
        """The base64 PSS signature of *message*."""
        raw = self._key.sign(message.encode(), _pss(self.algorithm), hashes.SHA256())
        return base64.b64encode(raw).decode()

    def sign_request(
        self,
        method: str,
        path: str,
        *,
        query: Mapping[str, str] | None = None,
        body: bytes = b"",
        headers: Mapping[str, str],
    ) -> SignedRequest:
        """Sign one request whose every header is in *headers*; add ``authorization``."""
        if method != method.upper() or not path.startswith("/"):
            raise InvalidInputError("sign an upper-case method and a path that starts with /")
        if any(name.lower() == "authorization" for name in headers):
            raise InvalidInputError("the authorization header is what signing adds")
        canonical = canonical_request(method, path, query_string(query), headers, body)
        to_sign = string_to_sign(self.algorithm, canonical)
        signed = ";".join(sorted(name.lower() for name in headers))
        authorization = (
            f"{self.algorithm} PublicKeyId={self.public_key_id}, "
            f"SignedHeaders={signed}, Signature={self.sign(to_sign)}"
        )
        return SignedRequest(
            {**headers, "authorization": authorization}, canonical, to_sign, signed
        )

    def button_signature(self, payload: str) -> str:
        """The signature of a button payload (``amazon.Pay.renderButton``'s ``signature``)."""
        return self.sign(f"{self.algorithm}\n{_sha256_hex(payload.encode())}")

    def __repr__(self) -> str:
        return (
            f"AmazonPaySigner(public_key_id={self.public_key_id!r}, algorithm={self.algorithm!r})"
        )
