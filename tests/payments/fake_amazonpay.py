"""A loopback imitation of Amazon Pay's Checkout v2 API, for the gateway tests and chaos run.

It listens on 127.0.0.1 and checks every request's wire format before it
answers: the path (``/{sandbox|live}/v2/...``), the ``x-amz-pay-*`` headers,
the idempotency key's format, a JSON body, and the signature, which it
verifies with the merchant's public key over a canonical request it builds
itself from ``SignedHeaders`` (written apart from the gateway's signer, as
Amazon's documentation describes it). A request that fails any check is
answered as Amazon answers it (400 or 401) and kept in :attr:`rejected`.

Objects follow the API reference: a Checkout Session is ``Open`` until
completed or canceled and gets ``amazonPayRedirectUrl`` once it has an amount
and a result URL; completing it makes a Charge Permission and a Charge
(``Authorized``, or ``Captured`` for ``AuthorizeWithCapture``); a Charge is
captured once (up to 15% over its amount), canceled while authorized; a
Refund is ``RefundInitiated`` and ``Refunded`` when read back. POSTs replay
the first answer to an idempotency key and refuse the key for another
request (``DuplicateIdempotencyKey``). What happens out of the API (the
buyer at Amazon) is :meth:`FakeAmazonPay.buyer_starts` and :meth:`buyer_pays`.
"""

from __future__ import annotations

import base64
import calendar
import datetime
import functools
import hashlib
import http.server
import itertools
import json
import re
import threading
import time
import urllib.parse
from collections import Counter
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from decimal import Decimal
from typing import Any

from cryptography import x509
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, padding, rsa
from cryptography.x509.oid import AuthorityInformationAccessOID, ExtendedKeyUsageOID, NameOID

from commercekit.errors import UnavailableError
from commercekit.payments import HttpRequest, UrllibTransport

SALT = {"AMZN-PAY-RSASSA-PSS-V2": 32, "AMZN-PAY-RSASSA-PSS": 20}
AUTH = re.compile(
    r"(AMZN-PAY-RSASSA-PSS(?:-V2)?) PublicKeyId=([^,\s]+), SignedHeaders=([a-z0-9;-]+), "
    r"Signature=([A-Za-z0-9+/=]+)"
)
KEY = re.compile(r"[A-Za-z0-9_-]{1,32}")
NEEDED = {"accept", "content-type", "x-amz-pay-date", "x-amz-pay-host", "x-amz-pay-region"}
REGIONS = {"us": "na", "eu": "eu", "jp": "jp"}
MAX_SKEW_S = 15 * 60

Answer = tuple[int, dict[str, str], bytes]


def _json(status: int, body: dict[str, Any], **headers: str) -> Answer:
    return status, {"Content-Type": "application/json", **headers}, json.dumps(body).encode()


def _error(status: int, code: str, message: str, **headers: str) -> Answer:
    return _json(status, {"reasonCode": code, "message": message}, **headers)


def _dec(price: dict[str, str]) -> Decimal:
    return Decimal(price["amount"])


def _minor(price: dict[str, str]) -> int:
    exponent = (
        0
        if price["currencyCode"] in ("JPY", "KRW")
        else 3
        if price["currencyCode"] in ("KWD", "BHD", "JOD", "OMR", "TND")
        else 2
    )
    return int(_dec(price).scaleb(exponent))


class FakeAmazonPay:
    """The API's objects and rules, in memory; :func:`serve` puts it on loopback."""

    def __init__(
        self,
        public_key: rsa.RSAPublicKey,
        *,
        public_key_id: str = "AGPTYXGL5VH6PZ2IHGS4M4GN",
        region: str = "us",
        sandbox: bool = True,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.public_key = public_key
        self.public_key_id = public_key_id
        self.region = region
        self.sandbox = sandbox
        self.clock = clock
        self.host = ""  # set by serve()
        self.lock = threading.Lock()
        self.ids = itertools.count(1)
        self.sessions: dict[str, dict[str, Any]] = {}
        self.buyers: dict[str, dict[str, Any]] = {}
        self.permissions: dict[str, dict[str, Any]] = {}
        self.charges: dict[str, dict[str, Any]] = {}
        self.refunds: dict[str, dict[str, Any]] = {}
        self.refunds_of: dict[str, list[dict[str, Any]]] = {}
        self.keys: dict[str, tuple[str, Answer]] = {}
        self.effects: Counter[tuple[str, str]] = Counter()  # (what, key or object id)
        self.rejected: list[str] = []
        self.requests: list[tuple[str, str, dict[str, str], bytes]] = []
        self.scripted: list[Answer] = []

    # -- what happens at Amazon, out of the API ----------------------------------------------

    def buyer_starts(self, scenario: str = "ok", *, store_id: str = "amzn1.store") -> str:
        """The button made a session and the buyer reviewed it; return its id."""
        with self.lock:
            return self._new_session(scenario, store_id)

    def _new_session(self, scenario: str, store_id: str) -> str:
        sid = f"{next(self.ids):08d}-cafe-4bad-a1a9-9a747aaf5275"
        self.sessions[sid] = {
            "checkoutSessionId": sid,
            "webCheckoutDetails": {"checkoutReviewReturnUrl": "https://shop.test/review"},
            "paymentDetails": {},
            "storeId": store_id,
            "statusDetails": {"state": "Open", "reasonCode": None},
            "chargePermissionId": None,
            "chargeId": None,
            "buyer": {"name": "Zoë Tester", "email": "zoe@example.test"},
            "constraints": [],
        }
        self.buyers[sid] = {"scenario": scenario, "paid": False}
        return sid

    def buyer_pays(self, session_id: str, success: bool = True) -> None:
        """The buyer at amazonPayRedirectUrl: pays, cancels, or is declined."""
        with self.lock:
            session, buyer = self.sessions[session_id], self.buyers[session_id]
            if session["statusDetails"]["state"] != "Open":
                return
            if not success:
                session["statusDetails"] = {"state": "Canceled", "reasonCode": "BuyerCanceled"}
            elif buyer["scenario"] != "ok":
                session["statusDetails"] = {"state": "Canceled", "reasonCode": "Declined"}
            else:
                buyer["paid"] = True

    def fail_next(self, status: int, code: str, **headers: str) -> None:
        """Answer the next well-formed request with this error instead."""
        with self.lock:
            self.scripted.append(_error(status, code, "scripted", **headers))

    def books(self, charge_id: str) -> tuple[int, int, int]:
        """(authorized, captured, refunded) minor units of a charge."""
        with self.lock:
            charge = self.charges.get(charge_id)
            if charge is None:
                return 0, 0, 0
            refunded = sum(_minor(r["refundAmount"]) for r in self.refunds_of.get(charge_id, []))
            captured = _minor(charge["captureAmount"]) if charge.get("captureAmount") else 0
            return _minor(charge["chargeAmount"]), captured, refunded

    # -- the wire ------------------------------------------------------------------------

    def handle(self, method: str, target: str, headers: dict[str, str], body: bytes) -> Answer:
        """Check one request and answer it."""
        with self.lock:
            self.requests.append((method, target, headers, body))
            problem = self._check(method, target, headers, body)
            if problem is not None:
                self.rejected.append(problem[1])
                return _error(problem[0], problem[2], problem[1])
            if self.scripted:
                return self.scripted.pop(0)
            parts = urllib.parse.urlsplit(target)
            path = parts.path.split("/v2/", 1)[1].split("/")
            data = json.loads(body) if body else {}
            key = headers.get("x-amz-pay-idempotency-key")
            if method == "POST" and key is not None:
                digest = hashlib.sha256(f"{method} {parts.path}".encode() + body).hexdigest()
                if key in self.keys:
                    seen, answer = self.keys[key]
                    if seen != digest:
                        return _error(
                            400, "DuplicateIdempotencyKey", "key used for another request"
                        )
                    return answer
                answer = self._route(method, path, data, key)
                if answer[0] < 500:
                    self.keys[key] = (digest, answer)
                return answer
            return self._route(method, path, data, key)

    def _check(
        self, method: str, target: str, headers: dict[str, str], body: bytes
    ) -> tuple[int, str, str] | None:
        prefix = (
            "/v2/"
            if self.public_key_id.upper().startswith(("LIVE", "SANDBOX"))
            else ("/sandbox/v2/" if self.sandbox else "/live/v2/")
        )
        path, _, query = target.partition("?")
        if not path.startswith(prefix):
            return 400, f"path {path} outside {prefix}", "InvalidRequest"
        match = AUTH.fullmatch(headers.get("authorization", ""))
        if match is None:
            return 400, "authorization header malformed", "InvalidHeaderValue"
        algorithm, key_id, signed_list, signature = match.groups()
        if key_id != self.public_key_id:
            return 401, "unknown public key id", "UnauthorizedAccess"
        signed = signed_list.split(";")
        if signed != sorted(signed) or not set(signed) >= NEEDED or "authorization" in signed:
            return 400, f"signed headers {signed_list}", "InvalidHeaderValue"
        sent = {name for name in headers if name.startswith("x-amz-pay-")}
        if not sent <= set(signed) or any(name not in headers for name in signed):
            return 400, "an x-amz-pay header is not signed", "InvalidHeaderValue"
        if headers["x-amz-pay-host"] != self.host:
            return 400, f"x-amz-pay-host {headers['x-amz-pay-host']}", "InvalidHeaderValue"
        if headers["x-amz-pay-region"] != REGIONS[self.region]:
            return 400, "x-amz-pay-region", "InvalidHeaderValue"
        if headers["content-type"] != "application/json" or headers["accept"] != "application/json":
            return 400, "content-type and accept are application/json", "InvalidHeaderValue"
        try:
            stamp = calendar.timegm(time.strptime(headers["x-amz-pay-date"], "%Y-%m-%dT%H:%M:%SZ"))
        except ValueError:
            return 400, "x-amz-pay-date format", "InvalidHeaderValue"
        if abs(stamp - self.clock()) > MAX_SKEW_S:
            return 401, "x-amz-pay-date too far from now", "InvalidRequestSignature"
        key = headers.get("x-amz-pay-idempotency-key")
        if key is not None and not KEY.fullmatch(key):
            return 400, "idempotency key format", "InvalidHeaderValue"
        creates = method == "POST" and not path.endswith(("/complete", "/finalize"))
        if creates and key is None:
            return 400, "x-amz-pay-idempotency-key missing", "MissingHeaderValue"
        if body:
            try:
                json.loads(body.decode("utf-8"))
            except ValueError:
                return 400, "body is not JSON", "InvalidRequestFormat"
        canonical = "\n".join(
            [
                method,
                path,
                query,
                *[f"{name}:{headers[name]}" for name in signed],
                "",
                signed_list,
                hashlib.sha256(body).hexdigest(),
            ]
        )
        to_sign = algorithm + "\n" + hashlib.sha256(canonical.encode()).hexdigest()
        try:
            self.public_key.verify(
                base64.b64decode(signature),
                to_sign.encode(),
                padding.PSS(mgf=padding.MGF1(hashes.SHA256()), salt_length=SALT[algorithm]),
                hashes.SHA256(),
            )
        except (InvalidSignature, ValueError):
            return 401, "signature does not verify", "InvalidRequestSignature"
        return None

    def _route(self, method: str, path: list[str], data: dict[str, Any], key: str | None) -> Answer:
        problem = _body_problem(method, path, data)
        if problem is not None:
            return _error(400, problem[0], problem[1])
        match method, path:
            case "POST", ["checkoutSessions"]:
                return self._create_session(data)
            case "GET", ["checkoutSessions", sid]:
                return self._found(self.sessions, sid)
            case "PATCH", ["checkoutSessions", sid]:
                return self._update(sid, data)
            case "POST", ["checkoutSessions", sid, "complete"]:
                return self._complete(sid, data)
            case "GET", ["chargePermissions", pid]:
                return self._found(self.permissions, pid)
            case "POST", ["charges"]:
                return self._create_charge(data, key)
            case "GET", ["charges", cid]:
                return self._found(self.charges, cid)
            case "POST", ["charges", cid, "capture"]:
                return self._capture(cid, data, key)
            case "DELETE", ["charges", cid, "cancel"]:
                return self._cancel(cid)
            case "POST", ["refunds"]:
                return self._refund(data, key)
            case "GET", ["refunds", rid]:
                refund = self.refunds.get(rid)
                if refund is not None and refund["statusDetails"]["state"] == "RefundInitiated":
                    refund["statusDetails"] = {"state": "Refunded", "reasonCode": None}
                return self._found(self.refunds, rid)
        return _error(404, "ResourceNotFound", "no such operation")

    def _create_session(self, data: dict[str, Any]) -> Answer:
        sid = self._new_session("ok", str(data.get("storeId") or ""))
        self.sessions[sid]["webCheckoutDetails"] = dict(data.get("webCheckoutDetails") or {})
        self.effects[("session", sid)] += 1
        return _json(201, self.sessions[sid])

    def _found(self, table: dict[str, dict[str, Any]], oid: str) -> Answer:
        if oid not in table:
            return _error(404, "ResourceNotFound", "no such object")
        return _json(200, table[oid])

    def _update(self, sid: str, data: dict[str, Any]) -> Answer:
        session = self.sessions.get(sid)
        if session is None:
            return _error(404, "ResourceNotFound", "no such session")
        if session["statusDetails"]["state"] != "Open":
            return _error(422, "InvalidCheckoutSessionStatus", "session is not open")
        session["webCheckoutDetails"].update(data.get("webCheckoutDetails") or {})
        session["paymentDetails"].update(data.get("paymentDetails") or {})
        if "merchantMetadata" in data:
            session["merchantMetadata"] = data["merchantMetadata"]
        web, details = session["webCheckoutDetails"], session["paymentDetails"]
        if web.get("checkoutResultReturnUrl") and details.get("chargeAmount"):
            web["amazonPayRedirectUrl"] = (
                f"https://apay-us.amazon.test/checkout/processing?amazonCheckoutSessionId={sid}"
            )
        return _json(200, session)

    def _complete(self, sid: str, data: dict[str, Any]) -> Answer:
        session = self.sessions.get(sid)
        if session is None:
            return _error(404, "ResourceNotFound", "no such session")
        state = session["statusDetails"]["state"]
        if state == "Completed":
            return _json(200, session)
        if state == "Canceled":
            return _error(422, "CheckoutSessionCanceled", "the buyer canceled or was declined")
        if not self.buyers[sid]["paid"]:
            return _error(422, "InvalidCheckoutSessionStatus", "the buyer has not paid yet")
        amount = session["paymentDetails"]["chargeAmount"]
        if data.get("chargeAmount") != amount:
            return _error(400, "InvalidParameterValue", "chargeAmount differs from the session's")
        permission_id = f"S01-{next(self.ids):07d}-{next(self.ids):07d}"
        self.permissions[permission_id] = {
            "chargePermissionId": permission_id,
            "limits": {"amountLimit": amount, "amountBalance": amount},
            "statusDetails": {"state": "Chargeable", "reasonCode": None},
            "chargePermissionType": "OneTime",
        }
        capture = session["paymentDetails"].get("paymentIntent") == "AuthorizeWithCapture"
        charge_id = self._new_charge(permission_id, amount, capture)
        session["statusDetails"] = {"state": "Completed", "reasonCode": None}
        session["chargePermissionId"], session["chargeId"] = permission_id, charge_id
        self.effects[("charge-of-session", sid)] += 1
        return _json(200, session)

    def _new_charge(self, permission_id: str, amount: dict[str, str], capture: bool) -> str:
        charge_id = f"{permission_id}-C{next(self.ids):06d}"
        self.charges[charge_id] = {
            "chargeId": charge_id,
            "chargePermissionId": permission_id,
            "chargeAmount": dict(amount),
            "captureAmount": dict(amount) if capture else None,
            "refundedAmount": {"amount": "0", "currencyCode": amount["currencyCode"]},
            "statusDetails": {"state": "Captured" if capture else "Authorized", "reasonCode": None},
            "releaseEnvironment": "Sandbox" if self.sandbox else "Live",
        }
        return charge_id

    def _create_charge(self, data: dict[str, Any], key: str | None) -> Answer:
        permission = self.permissions.get(data.get("chargePermissionId", ""))
        if permission is None:
            return _error(404, "ResourceNotFound", "no such charge permission")
        if permission["statusDetails"]["state"] != "Chargeable":
            return _error(422, "InvalidChargePermissionStatus", "not chargeable")
        charge_id = self._new_charge(
            permission["chargePermissionId"], data["chargeAmount"], bool(data.get("captureNow"))
        )
        self.effects[("charge", key or "")] += 1
        return _json(201, self.charges[charge_id])

    def _capture(self, cid: str, data: dict[str, Any], key: str | None) -> Answer:
        charge = self.charges.get(cid)
        if charge is None:
            return _error(404, "ResourceNotFound", "no such charge")
        if charge["statusDetails"]["state"] != "Authorized":
            return _error(422, "InvalidChargeStatus", "the charge is not authorized")
        wanted = data["captureAmount"]
        limit = _dec(charge["chargeAmount"]) * Decimal("1.15")
        if wanted["currencyCode"] != charge["chargeAmount"]["currencyCode"]:
            return _error(400, "CurrencyMismatch", "another currency")
        if _dec(wanted) > limit:
            return _error(422, "TransactionAmountExceeded", "more than the charge allows")
        charge["captureAmount"] = dict(wanted)
        charge["statusDetails"] = {"state": "Captured", "reasonCode": None}
        self.effects[("capture", key or "")] += 1
        return _json(200, charge)

    def _cancel(self, cid: str) -> Answer:
        charge = self.charges.get(cid)
        if charge is None:
            return _error(404, "ResourceNotFound", "no such charge")
        if charge["statusDetails"]["state"] != "Authorized":
            return _error(422, "InvalidChargeStatus", "only an authorized charge cancels")
        charge["statusDetails"] = {"state": "Canceled", "reasonCode": "MerchantCanceled"}
        self.effects[("cancel", cid)] += 1
        return _json(200, charge)

    def _refund(self, data: dict[str, Any], key: str | None) -> Answer:
        charge = self.charges.get(data.get("chargeId", ""))
        if charge is None:
            return _error(404, "ResourceNotFound", "no such charge")
        if charge["statusDetails"]["state"] != "Captured":
            return _error(422, "InvalidChargeStatus", "the charge is not captured")
        wanted = data["refundAmount"]
        done = sum(
            (_dec(r["refundAmount"]) for r in self.refunds_of.get(charge["chargeId"], [])),
            Decimal(0),
        )
        if done + _dec(wanted) > _dec(charge["captureAmount"]):
            return _error(422, "TransactionAmountExceeded", "more than was captured")
        rid = f"{charge['chargeId']}-R{next(self.ids):06d}"
        self.refunds[rid] = {
            "refundId": rid,
            "chargeId": charge["chargeId"],
            "refundAmount": dict(wanted),
            "statusDetails": {"state": "RefundInitiated", "reasonCode": None},
        }
        self.refunds_of.setdefault(charge["chargeId"], []).append(self.refunds[rid])
        charge["refundedAmount"] = {
            "amount": str(done + _dec(wanted)),
            "currencyCode": wanted["currencyCode"],
        }
        self.effects[("refund", key or "")] += 1
        return _json(201, self.refunds[rid])


PRICE = re.compile(r"(0|[1-9][0-9]{0,8})(\.[0-9]{1,3})?")  # 3 decimals: the chaos run pays KWD
# (method, path shape) -> (required fields, allowed fields); prices are checked wherever they are
BODIES: dict[tuple[str, str], tuple[set[str], set[str]]] = {
    ("POST", "checkoutSessions"): (
        {"webCheckoutDetails", "storeId"},
        {"webCheckoutDetails", "storeId", "scopes", "chargePermissionType", "merchantMetadata"},
    ),
    ("PATCH", "checkoutSessions/*"): (
        set(),
        {"webCheckoutDetails", "paymentDetails", "merchantMetadata", "recurringMetadata"},
    ),
    ("POST", "checkoutSessions/*/complete"): (
        {"chargeAmount"},
        {"chargeAmount", "totalOrderAmount"},
    ),
    ("POST", "charges"): (
        {"chargePermissionId", "chargeAmount"},
        {
            "chargePermissionId",
            "chargeAmount",
            "captureNow",
            "softDescriptor",
            "canHandlePendingAuthorization",
            "merchantMetadata",
        },
    ),
    ("POST", "charges/*/capture"): ({"captureAmount"}, {"captureAmount", "softDescriptor"}),
    ("DELETE", "charges/*/cancel"): (set(), {"cancellationReason"}),
    ("POST", "refunds"): (
        {"chargeId", "refundAmount"},
        {"chargeId", "refundAmount", "softDescriptor"},
    ),
}
INTENTS = {"Authorize", "AuthorizeWithCapture", "Confirm"}


def _body_problem(method: str, path: list[str], data: Any) -> tuple[str, str] | None:
    """What the API reference refuses in this body: (reasonCode, message), or None."""
    shape = "/".join(part if i % 2 == 0 else "*" for i, part in enumerate(path))
    if method == "GET":
        return ("InvalidRequest", "a GET has no body") if data else None
    rule = BODIES.get((method, shape))
    if rule is None:
        return None
    if not isinstance(data, dict):
        return "InvalidRequestFormat", "the body is not a JSON object"
    required, allowed = rule
    if not required <= set(data):
        return "MissingParameterValue", f"missing {sorted(required - set(data))}"
    if not set(data) <= allowed:
        return "UnrecognizedField", f"unknown {sorted(set(data) - allowed)}"
    details = data.get("paymentDetails") or {}
    if details.get("paymentIntent") not in (None, *INTENTS):
        return "InvalidParameterValue", "paymentIntent"
    prices = [data.get(n) for n in ("chargeAmount", "captureAmount", "refundAmount")]
    prices.append(details.get("chargeAmount"))
    for price in prices:
        if price is None:
            continue
        if (
            not isinstance(price, dict)
            or set(price) != {"amount", "currencyCode"}
            or not isinstance(price["amount"], str)
            or not PRICE.fullmatch(price["amount"])
            or not re.fullmatch(r"[A-Z]{3}", str(price["currencyCode"]))
        ):
            return "InvalidParameterValue", "a price is {amount: decimal string, currencyCode}"
    return None


class _Handler(http.server.BaseHTTPRequestHandler):
    fake: FakeAmazonPay
    protocol_version = "HTTP/1.1"

    def _serve(self) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length) if length else b""
        headers = {name.lower(): value for name, value in self.headers.items()}
        status, out_headers, out = self.fake.handle(self.command, self.path, headers, body)
        self.send_response(status)
        for name, value in out_headers.items():
            self.send_header(name, value)
        self.send_header("Content-Length", str(len(out)))
        self.send_header("Connection", "close")
        self.end_headers()
        self.wfile.write(out)
        self.close_connection = True

    do_GET = do_POST = do_PATCH = do_DELETE = _serve

    def log_message(self, format: str, *args: object) -> None:
        pass


@contextmanager
def serve(fake: FakeAmazonPay) -> Iterator[str]:
    """Run *fake* on 127.0.0.1 for the block; yield its base URL (``http://127.0.0.1:port``)."""
    handler = type("Handler", (_Handler,), {"fake": fake})
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    server.daemon_threads = True
    fake.host = f"127.0.0.1:{server.server_address[1]}"
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05})
    thread.start()
    try:
        yield f"http://{fake.host}"
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=5)


@functools.cache
def sns_key() -> rsa.RSAPrivateKey:
    """The key of the test SNS signing certificate."""
    return rsa.generate_private_key(public_exponent=65537, key_size=2048)


@functools.cache
def merchant_key() -> rsa.RSAPrivateKey:
    """One RSA-2048 merchant key per test process (its public half is the fake's)."""
    return rsa.generate_private_key(public_exponent=65537, key_size=2048)


# -- Amazon SNS, as it signs and serves its certificates ------------------------------------


class FakeSns:
    """A test CA, an SNS signing certificate under it, and SNS's way of signing messages.

    The certificates are served by :func:`serve_files` on loopback; :meth:`fetch`
    is the verifier's seam, mapping SNS's https addresses onto that server.
    """

    def __init__(
        self,
        *,
        name: str = "sns.amazonaws.com",
        now: float | None = None,
        key: rsa.RSAPrivateKey | None = None,
    ) -> None:

        from cryptography import x509

        self.x509 = x509
        moment = datetime.datetime.fromtimestamp(now or time.time(), tz=datetime.UTC)
        start, end = moment - datetime.timedelta(days=1), moment + datetime.timedelta(days=365)
        root_key = ec.generate_private_key(ec.SECP256R1())
        mid_key = ec.generate_private_key(ec.SECP256R1())
        self.key = key if key is not None else sns_key()

        def subject(cn: str) -> x509.Name:
            return x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, cn)])

        def ski(key: Any) -> x509.SubjectKeyIdentifier:
            return x509.SubjectKeyIdentifier.from_public_key(key.public_key())

        def aki(key: Any) -> x509.AuthorityKeyIdentifier:
            return x509.AuthorityKeyIdentifier.from_issuer_public_key(key.public_key())

        ca_usage = x509.KeyUsage(
            digital_signature=False, content_commitment=False, key_encipherment=False,
            data_encipherment=False, key_agreement=False, key_cert_sign=True, crl_sign=True,
            encipher_only=False, decipher_only=False,
        )  # fmt: skip
        self.root = (
            x509.CertificateBuilder()
            .subject_name(subject("commercekit test root CA"))
            .issuer_name(subject("commercekit test root CA"))
            .public_key(root_key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(start)
            .not_valid_after(end)
            .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
            .add_extension(ca_usage, critical=True)
            .add_extension(ski(root_key), critical=False)
            .sign(root_key, hashes.SHA256())
        )
        self.intermediate = (
            x509.CertificateBuilder()
            .subject_name(subject("commercekit test SNS issuing CA"))
            .issuer_name(self.root.subject)
            .public_key(mid_key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(start)
            .not_valid_after(end)
            .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
            .add_extension(ca_usage, critical=True)
            .add_extension(ski(mid_key), critical=False)
            .add_extension(aki(root_key), critical=False)
            .sign(root_key, hashes.SHA256())
        )
        self.issuer_url = "http://crt.sns-test.example/issuing-ca.cer"
        leaf_usage = x509.KeyUsage(
            digital_signature=True, content_commitment=False, key_encipherment=True,
            data_encipherment=False, key_agreement=False, key_cert_sign=False, crl_sign=False,
            encipher_only=False, decipher_only=False,
        )  # fmt: skip
        self.leaf = (
            x509.CertificateBuilder()
            .subject_name(subject(name))
            .issuer_name(self.intermediate.subject)
            .public_key(self.key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(start)
            .not_valid_after(end)
            .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
            .add_extension(leaf_usage, critical=True)
            .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), False)
            .add_extension(x509.SubjectAlternativeName([x509.DNSName(name)]), critical=False)
            .add_extension(ski(self.key), critical=False)
            .add_extension(aki(mid_key), critical=False)
            .add_extension(
                x509.AuthorityInformationAccess(
                    [
                        x509.AccessDescription(
                            AuthorityInformationAccessOID.CA_ISSUERS,
                            x509.UniformResourceIdentifier(self.issuer_url),
                        )
                    ]
                ),
                critical=False,
            )
            .sign(mid_key, hashes.SHA256())
        )
        pem = serialization.Encoding.PEM
        self.files: dict[str, bytes] = {
            "/SimpleNotificationService-chain.pem": self.leaf.public_bytes(pem)
            + self.intermediate.public_bytes(pem),
            "/SimpleNotificationService-leaf.pem": self.leaf.public_bytes(pem),
            "/issuing-ca.cer": self.intermediate.public_bytes(serialization.Encoding.DER),
        }
        self.base_url = ""  # set when served
        self.fetched: list[str] = []
        self.extra_roots: list[x509.Certificate] = []

    def fetch(self, url: str) -> bytes:
        """The verifier's seam: SNS's and the issuer's addresses, answered on loopback."""
        self.fetched.append(url)
        path = urllib.parse.urlsplit(url).path
        response = UrllibTransport().handle(HttpRequest("GET", self.base_url + path))
        if response.status != 200:
            raise UnavailableError(f"{response.status}")
        return response.body

    def message(
        self,
        notification: dict[str, Any],
        *,
        message_id: str,
        timestamp: float | None = None,
        version: str = "2",
        cert: str = "chain",
        region: str = "us-east-1",
        topic: str = "arn:aws:sns:us-east-1:291180941288:A01234567ABCDE",
        subject: str | None = None,
        kind: str = "Notification",
        key: rsa.RSAPrivateKey | None = None,
    ) -> dict[str, Any]:
        """An SNS message carrying *notification*, signed as SNS signs it."""
        stamp = time.gmtime(timestamp if timestamp is not None else time.time())
        fields: dict[str, Any] = {
            "Type": kind,
            "MessageId": message_id,
            "TopicArn": topic,
            "Message": json.dumps(notification),
            "Timestamp": time.strftime("%Y-%m-%dT%H:%M:%S.123Z", stamp),
            "SignatureVersion": version,
            "SigningCertURL": f"https://sns.{region}.amazonaws.com/SimpleNotificationService-{cert}.pem",
        }
        if subject is not None:
            fields["Subject"] = subject
        if kind != "Notification":
            fields["Token"] = "2336412f37fb687f5d51e6e2425c464de12884b"
            fields["SubscribeURL"] = (
                f"https://sns.{region}.amazonaws.com/?Action=ConfirmSubscription&TopicArn={topic}"
            )
        return self.sign(fields, key=key)

    def sign(
        self, fields: dict[str, Any], *, key: rsa.RSAPrivateKey | None = None
    ) -> dict[str, Any]:
        """Sign *fields* in place over SNS's canonical string (Key\\nValue\\n per signed field)."""
        order = (
            ("Message", "MessageId", "Subject", "Timestamp", "TopicArn", "Type")
            if fields["Type"] == "Notification"
            else ("Message", "MessageId", "SubscribeURL", "Timestamp", "Token", "TopicArn", "Type")
        )
        text = "".join(f"{name}\n{fields[name]}\n" for name in order if name in fields)
        digest = hashes.SHA1() if fields["SignatureVersion"] == "1" else hashes.SHA256()
        signature = (key or self.key).sign(text.encode(), padding.PKCS1v15(), digest)
        fields["Signature"] = base64.b64encode(signature).decode()
        return fields


@contextmanager
def serve_files(files: dict[str, bytes]) -> Iterator[str]:
    """Serve *files* (path -> bytes) over HTTP on 127.0.0.1; yield the base URL."""

    class Files(http.server.BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            body = files.get(urllib.parse.urlsplit(self.path).path)
            self.send_response(200 if body is not None else 404)
            self.send_header("Content-Length", str(len(body or b"")))
            self.end_headers()
            self.wfile.write(body or b"")

        def log_message(self, format: str, *args: object) -> None:
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Files)
    server.daemon_threads = True
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05})
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=5)
