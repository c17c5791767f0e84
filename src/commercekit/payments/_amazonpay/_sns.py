"""Amazon SNS message verification, as SNS prescribes it, for Amazon Pay's notifications.

Amazon Pay posts its instant payment notifications as Amazon SNS messages.
:meth:`SnsVerifier.verify` accepts one only when all of this holds:

* it is a JSON object of one of the three SNS types, with every field its
  type signs, and ``SignatureVersion`` 1 (SHA1withRSA) or 2 (SHA256withRSA);
* ``SigningCertURL`` (and a ``SubscribeURL``) is ``https`` on an Amazon SNS
  host, ``sns.<region>.amazonaws.com`` (``.com.cn`` in China), with no user
  info or port, and the certificate is a ``.pem`` file;
* the certificate chains to a trusted root (the system's, unless given) with
  the name ``sns.amazonaws.com``, is valid now, and intermediates come from
  the PEM file itself, from *intermediates*, or from the certificate's
  "CA Issuers" address (fetched and checked like everything else);
* the signature verifies over the canonical string (``Key\\nValue\\n`` for
  ``Message``, ``MessageId``, ``Subject`` if present, ``SubscribeURL``,
  ``Timestamp``, ``Token``, ``TopicArn``, ``Type``, as the type signs them);
* the ``Timestamp`` is within *max_age_s* of now (and not in the future),
  and the ``TopicArn`` is one of *topic_arns* when those are given.

Verified certificates are cached by URL (bounded, dropped when expired), so
a steady stream of notifications costs one fetch per signing certificate.
Fetching goes through *fetch* (an HTTPS GET unless given); tests serve the
certificate from a loopback server and pass their own test CA as *trust_roots*.
"""

from __future__ import annotations

import base64
import binascii
import calendar
import datetime
import re
import ssl
import threading
import time
import urllib.parse
from collections import OrderedDict
from collections.abc import Callable, Mapping, Sequence
from typing import Any, Final

import attrs
from cryptography import x509
from cryptography.exceptions import InvalidSignature, UnsupportedAlgorithm
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import padding, rsa
from cryptography.x509.oid import AuthorityInformationAccessOID
from cryptography.x509.verification import PolicyBuilder, Store, VerificationError

from commercekit._json import read_json_object
from commercekit.errors import (
    ConfigurationError,
    InvalidInputError,
    OutcomeUnknownError,
    SignatureError,
    SignatureExpiredError,
    UnavailableError,
)
from commercekit.payments._transports._http import HttpRequest, UrllibTransport
from commercekit.payments._typing import Clock, HttpTransport

__all__ = ["SNS_HOST", "SnsMessage", "SnsVerifier", "sns_canonical_string"]

SNS_HOST: Final = re.compile(r"sns\.[a-z0-9-]{3,}\.amazonaws\.com(?:\.cn)?")
"""The hosts a signing certificate (or a subscribe URL) may come from."""

_FIELDS: Final = {
    "Notification": ("Message", "MessageId", "Subject", "Timestamp", "TopicArn", "Type"),
    "SubscriptionConfirmation": (
        "Message",
        "MessageId",
        "SubscribeURL",
        "Timestamp",
        "Token",
        "TopicArn",
        "Type",
    ),
}
_FIELDS["UnsubscribeConfirmation"] = _FIELDS["SubscriptionConfirmation"]
_HASHES: Final = {"1": hashes.SHA1, "2": hashes.SHA256}
_MAX_BODY: Final = 256 * 1024
_MAX_CERT: Final = 64 * 1024
_TIMESTAMP: Final = re.compile(
    r"([0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}:[0-9]{2})(\.[0-9]{1,9})?Z", re.ASCII
)
_MESSAGE_ID: Final = re.compile(r"[A-Za-z0-9-]{1,100}", re.ASCII)
_FUTURE_S: Final = 300.0


def sns_canonical_string(message: Mapping[str, Any]) -> str:
    """The text SNS signs for *message*: ``Key\\nValue\\n`` for each field its type signs."""
    kind = message.get("Type")
    if not isinstance(kind, str) or kind not in _FIELDS:
        raise InvalidInputError("an SNS message's Type is Notification or a (un)subscription")
    parts = []
    for field in _FIELDS[kind]:
        value = message.get(field)
        if value is None and field == "Subject":
            continue  # signed only when present
        if not isinstance(value, str):
            raise InvalidInputError(f"the SNS message has no {field} string")
        parts.append(f"{field}\n{value}\n")
    return "".join(parts)


@attrs.frozen
class SnsMessage:
    """A verified SNS message. *message* is the ``Message`` text (Amazon Pay's JSON)."""

    type: str
    message_id: str
    topic_arn: str
    timestamp: float
    message: str = attrs.field(repr=False)
    subject: str | None = None
    subscribe_url: str | None = None


def _sns_url(url: object, what: str) -> str:
    if not isinstance(url, str):
        raise SignatureError(f"the SNS message has no {what}")
    parts = urllib.parse.urlsplit(url)
    host = parts.hostname or ""
    if (
        parts.scheme != "https"
        or not SNS_HOST.fullmatch(host)
        or parts.netloc != host
        or (what == "SigningCertURL" and not parts.path.endswith(".pem"))
    ):
        raise SignatureError(f"the {what} is not an https address on an Amazon SNS host")
    return url


def _timestamp(text: object) -> float:
    match = _TIMESTAMP.fullmatch(text) if isinstance(text, str) else None
    if match is None:
        raise InvalidInputError("the SNS message's Timestamp is not ISO 8601 UTC")
    try:
        seconds = calendar.timegm(time.strptime(match.group(1), "%Y-%m-%dT%H:%M:%S"))
    except ValueError:
        raise InvalidInputError("the SNS message's Timestamp is not a date") from None
    return seconds + float(match.group(2) or 0)


def _https_get(transport: HttpTransport) -> Callable[[str], bytes]:
    def fetch(url: str) -> bytes:
        try:
            response = transport.handle(HttpRequest("GET", url, timeout_s=10.0))
        except OutcomeUnknownError:  # a read that timed out changed nothing: retry later
            raise UnavailableError("fetching a certificate timed out") from None
        if response.status != 200:
            raise UnavailableError(f"fetching a certificate answered {response.status}")
        return response.body

    return fetch


def _system_roots() -> list[x509.Certificate]:
    paths = ssl.get_default_verify_paths()
    for candidate in (paths.cafile, paths.openssl_cafile):
        if candidate:
            try:
                with open(candidate, "rb") as handle:
                    return x509.load_pem_x509_certificates(handle.read())
            except (OSError, ValueError):
                continue
    raise ConfigurationError("no system CA bundle was found; pass trust_roots")


class SnsVerifier:
    """Verifies Amazon SNS messages; see the module docstring."""

    def __init__(
        self,
        *,
        trust_roots: Sequence[x509.Certificate] | None = None,
        intermediates: Sequence[x509.Certificate] = (),
        fetch: Callable[[str], bytes] | None = None,
        topic_arns: Sequence[str] | None = None,
        max_age_s: float = 3600.0,
        certificate_name: str = "sns.amazonaws.com",
        cache_size: int = 64,
        clock: Clock = time.time,
    ) -> None:
        roots = list(trust_roots) if trust_roots is not None else _system_roots()
        if not roots:
            raise ConfigurationError("an SNS verifier needs at least one trusted root")
        self._store = Store(roots)
        self._intermediates = list(intermediates)
        self._fetch = fetch if fetch is not None else _https_get(UrllibTransport())
        self._topics = frozenset(topic_arns) if topic_arns is not None else None
        self._max_age_s = max_age_s
        self._name = certificate_name
        self._cache: OrderedDict[str, x509.Certificate] = OrderedDict()
        self._cache_size = cache_size
        self._clock = clock
        self._lock = threading.Lock()
        self.fetches = 0

    def verify(self, body: bytes | str) -> SnsMessage:
        """Return the message if *body* is a genuine, fresh SNS message; raise otherwise.

        Raises:
            InvalidInputError: not an SNS message, or a field is malformed.
            SignatureError: the certificate URL, the certificate or the
                signature is wrong, or the topic is not one of ours.
            SignatureExpiredError: the message is older than *max_age_s*.
            UnavailableError: the certificate could not be fetched (retry).
        """
        raw = body.encode() if isinstance(body, str) else body
        if not isinstance(raw, bytes) or len(raw) > _MAX_BODY:
            raise InvalidInputError("an SNS message is a JSON body of at most 256 KiB")
        data = read_json_object(raw, what="the SNS message")
        canonical = sns_canonical_string(data)
        if not _MESSAGE_ID.fullmatch(data["MessageId"]):
            raise InvalidInputError("the SNS MessageId is not an SNS message id")
        version = data.get("SignatureVersion")
        if version not in _HASHES:
            raise SignatureError("the SNS SignatureVersion is neither 1 nor 2")
        url = _sns_url(data.get("SigningCertURL"), "SigningCertURL")
        if data["Type"] != "Notification":
            _sns_url(data.get("SubscribeURL"), "SubscribeURL")
        if self._topics is not None and data["TopicArn"] not in self._topics:
            raise SignatureError("the SNS message comes from a topic that is not ours")
        now = self._clock()
        stamp = _timestamp(data["Timestamp"])
        if now - stamp > self._max_age_s or stamp - now > _FUTURE_S:
            raise SignatureExpiredError(
                f"the SNS message is {now - stamp:.0f} s old, outside {self._max_age_s:.0f} s: "
                "refused as stale or replayed"
            )
        try:
            signature = base64.b64decode(str(data.get("Signature") or ""), validate=True)
        except (binascii.Error, ValueError):
            raise SignatureError("the SNS Signature is not base64") from None
        key = self._certificate(url, now).public_key()
        if not isinstance(key, rsa.RSAPublicKey):
            raise SignatureError("the SNS signing certificate does not hold an RSA key")
        try:
            key.verify(signature, canonical.encode(), padding.PKCS1v15(), _HASHES[version]())
        except InvalidSignature:
            raise SignatureError("the SNS signature does not verify") from None
        return SnsMessage(
            type=data["Type"],
            message_id=data["MessageId"],
            topic_arn=data["TopicArn"],
            timestamp=stamp,
            message=data["Message"],
            subject=data.get("Subject"),
            subscribe_url=data.get("SubscribeURL"),
        )

    def _certificate(self, url: str, now: float) -> x509.Certificate:
        with self._lock:
            cached = self._cache.get(url)
            if cached is not None and cached.not_valid_after_utc.timestamp() >= now:
                self._cache.move_to_end(url)
                return cached
            self._cache.pop(url, None)
        leaf = self._verified(url, now)
        with self._lock:
            self._cache[url] = leaf
            while len(self._cache) > self._cache_size:
                self._cache.popitem(last=False)
        return leaf

    def _verified(self, url: str, now: float) -> x509.Certificate:
        certificates = self._load(self._fetch(url))
        leaf, extra = certificates[0], certificates[1:] + self._intermediates
        verifier = (
            PolicyBuilder()
            .store(self._store)
            .time(_utc(now))
            .build_server_verifier(x509.DNSName(self._name))
        )
        for _ in range(3):  # the chain, then up to two issuers fetched by their address
            try:
                verifier.verify(leaf, extra)
                return leaf
            except VerificationError:
                issuer = _issuer_url(extra[-1] if extra else leaf)
                if issuer is None or len(extra) > 4:
                    break
                extra = [*extra, *self._load(self._fetch(issuer))]
        raise SignatureError(
            "the SNS signing certificate does not chain to a trusted root as sns.amazonaws.com"
        )

    def _load(self, data: bytes) -> list[x509.Certificate]:
        self.fetches += 1
        if not isinstance(data, bytes) or len(data) > _MAX_CERT:
            raise SignatureError("the SNS signing certificate is missing or too large")
        try:
            if data.lstrip().startswith(b"-----BEGIN"):
                return x509.load_pem_x509_certificates(data)
            return [x509.load_der_x509_certificate(data)]
        except (ValueError, UnsupportedAlgorithm):
            raise SignatureError("the SNS signing certificate is not a certificate") from None

    def __repr__(self) -> str:
        return f"SnsVerifier(certificate_name={self._name!r}, max_age_s={self._max_age_s})"


def _issuer_url(certificate: x509.Certificate) -> str | None:
    try:
        access = certificate.extensions.get_extension_for_class(
            x509.AuthorityInformationAccess
        ).value
    except x509.ExtensionNotFound:
        return None
    for description in access:
        location = description.access_location
        if (
            description.access_method == AuthorityInformationAccessOID.CA_ISSUERS
            and isinstance(location, x509.UniformResourceIdentifier)
            and location.value.startswith(("http://", "https://"))
        ):
            return location.value
    return None


def _utc(now: float) -> datetime.datetime:
    return datetime.datetime.fromtimestamp(now, tz=datetime.UTC)
