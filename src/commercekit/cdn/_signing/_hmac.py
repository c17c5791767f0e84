"""``HmacUrlSigner``: imgproxy-style signed URLs (``/<signature>/<path>``), HMAC-SHA256.

The signature is the URL-safe base64 (no padding) of ``HMAC-SHA256(key, salt
+ path[?query])``, put in front of the path as its first segment, as imgproxy
does; with no query and no expiry the URLs are imgproxy's own. Expiry and
start time travel in the query (``exp``, ``nbf``, epoch seconds) and are
signed with it. Verification parses the URL (never string replacement),
compares in constant time, then checks the times with a clock skew allowance.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import re
import time
from typing import Any
from urllib.parse import parse_qsl, urlsplit

from commercekit.errors import ConfigurationError, SignatureError, SignatureExpiredError
from commercekit.typing import WallClock

__all__ = ["HmacUrlSigner"]


_CONTROLS = re.compile(r"[\x00-\x20\x7f]")
_URLSAFE = bytes.maketrans(b"+/", b"-_")


def _b64(raw: bytes) -> str:
    return binascii.b2a_base64(raw, newline=False).translate(_URLSAFE).rstrip(b"=").decode()


def _pads(key: bytes) -> tuple[Any, Any]:
    """The HMAC-SHA256 inner and outer hash states for *key* (RFC 2104), computed once.

    Copying a primed ``hashlib`` state per call costs a third of ``hmac.digest``,
    which sets the key up again on every call.
    """
    if len(key) > 64:
        key = hashlib.sha256(key).digest()
    key = key.ljust(64, b"\0")
    inner = hashlib.sha256(bytes(b ^ 0x36 for b in key))
    outer = hashlib.sha256(bytes(b ^ 0x5C for b in key))
    return inner, outer


class HmacUrlSigner:
    """Signs and verifies URLs with a shared secret *key* (and optional *salt*).

    *signature_size* truncates the MAC (imgproxy's ``IMGPROXY_SIGNATURE_SIZE``;
    at least 16 bytes). *clock_skew_s* is the tolerance on ``exp`` and ``nbf``.
    """

    __slots__ = ("_clock", "_inner", "_outer", "_salt", "_size", "_skew")

    def __init__(
        self,
        key: bytes,
        salt: bytes = b"",
        *,
        signature_size: int = 32,
        clock: WallClock = time.time,
        clock_skew_s: float = 30.0,
    ) -> None:
        if len(key) < 16:
            raise ConfigurationError("an HMAC key needs at least 16 bytes (secrets.token_bytes)")
        if not 16 <= signature_size <= 32:
            raise ConfigurationError(f"signature_size must be 16..32, got {signature_size}")
        self._inner, self._outer = _pads(key)
        self._salt = salt
        self._size = signature_size
        self._clock = clock
        self._skew = clock_skew_s

    def _mac(self, path: str, query: str) -> str:
        inner = self._inner.copy()
        inner.update(self._salt + (f"{path}?{query}" if query else path).encode("utf-8"))
        outer = self._outer.copy()
        outer.update(inner.digest())
        return _b64(outer.digest()[: self._size])

    def sign(
        self, url: str, /, *, expires_at: float | None = None, starts_at: float | None = None
    ) -> str:
        """Return *url* signed; with *expires_at* / *starts_at* it is valid only in that window."""
        # Split by hand: urlsplit/urlunsplit would be most of the cost of signing.
        scheme_end = url.find("://")
        path_start = url.find("/", scheme_end + 3) if scheme_end >= 0 else 0
        if path_start < 0:
            origin, rest = url, "/"
        else:
            origin, rest = url[:path_start], url[path_start:]
        path, _, query = rest.partition("#")[0].partition("?")
        if not path.startswith("/"):
            path = "/" + path
        if starts_at is not None:
            query = f"{query}&nbf={int(starts_at)}" if query else f"nbf={int(starts_at)}"
        if expires_at is not None:
            query = f"{query}&exp={int(expires_at)}" if query else f"exp={int(expires_at)}"
        signature = self._mac(path, query)
        return f"{origin}/{signature}{path}?{query}" if query else f"{origin}/{signature}{path}"

    def verify(self, url: str, /) -> None:
        """Raise :class:`SignatureError` unless *url* carries a valid, current signature.

        ``urlsplit`` drops tab, CR and LF, so a URL holding any control
        character or space is refused before it is split.
        """
        if not isinstance(url, str):
            raise SignatureError(f"a signed URL is a str, not {type(url).__name__}")
        if _CONTROLS.search(url) is not None:
            raise SignatureError("the signed URL contains a control character or a space")
        try:
            url.encode("utf-8")  # a lone surrogate cannot have been signed
            parts = urlsplit(url)
        except ValueError as exc:
            raise SignatureError("the signed URL does not parse") from exc
        signature, slash, rest = parts.path.lstrip("/").partition("/")
        if not slash or not signature or len(signature) > 64:
            raise SignatureError("the URL has no signature segment")
        try:
            given = base64.urlsafe_b64decode(signature + "=" * (-len(signature) % 4))
        except (binascii.Error, ValueError) as exc:
            raise SignatureError("the signature segment is not base64") from exc
        expected = base64.urlsafe_b64decode(
            (s := self._mac("/" + rest, parts.query)) + "=" * (-len(s) % 4)
        )
        if not hmac.compare_digest(given, expected):
            raise SignatureError("the signature does not match the URL")
        self._check_times(parts.query)

    def _check_times(self, query: str) -> None:
        now = self._clock()
        params = dict(parse_qsl(query, keep_blank_values=True))
        try:
            expires = int(params["exp"]) if "exp" in params else None
            starts = int(params["nbf"]) if "nbf" in params else None
        except ValueError as exc:
            raise SignatureError("exp and nbf must be whole epoch seconds") from exc
        if expires is not None and now > expires + self._skew:
            raise SignatureExpiredError(f"the URL expired at {expires} (now {int(now)})")
        if starts is not None and now < starts - self._skew:
            raise SignatureExpiredError(f"the URL is not valid before {starts} (now {int(now)})")

    def __repr__(self) -> str:
        return f"HmacUrlSigner(signature_size={self._size})"
