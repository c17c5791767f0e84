"""Byte for byte against Amazon's own Node.js SDK: canonical requests, strings to sign, headers.

PSS signatures are randomized, so the signatures themselves cannot be
compared; instead, for every request shape the gateway sends, the canonical
request and the string to sign must be the very bytes the SDK builds for the
same inputs (captured from node's crypto as the SDK hashes and signs them),
the headers must match, and each side must verify the other's signature with
the merchant's public key. The SDK is installed from the npm registry into a
temp folder kept by version, so a rerun costs one node start.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import tempfile
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

from commercekit.payments import (
    AmazonPayConfig,
    AmazonPaySigner,
    HttpRequest,
    HttpResponse,
    MockTransport,
)
from commercekit.payments._amazonpay._signing import verify_signature
from commercekit.payments._amazonpay._wire import AmazonPayClient
from tests.conftest import missing_service

SDK = "@amazonpay/amazon-pay-api-sdk-nodejs"
SDK_VERSION = "2.3.4"
DATE = "2026-03-14T15:09:26Z"
NOW = 1773500966.0  # DATE in epoch seconds


def _install_sdk() -> Path:
    node, npm = shutil.which("node"), shutil.which("npm")
    if node is None or npm is None:
        missing_service("node and npm are needed to run Amazon's Node.js SDK")
    folder = Path(tempfile.gettempdir()) / f"commercekit-amazonpay-sdk-{SDK_VERSION}"
    if (folder / "node_modules" / SDK / "package.json").exists():
        return folder
    staging = Path(tempfile.mkdtemp(prefix="commercekit-amazonpay-sdk-"))
    (staging / "package.json").write_text('{"name": "ck-amazonpay-sdk", "private": true}')
    done = subprocess.run(
        [npm, "install", "--no-audit", "--no-fund", "--silent", f"{SDK}@{SDK_VERSION}"],
        cwd=staging,
        capture_output=True,
        text=True,
        timeout=240,
        check=False,
    )
    if done.returncode != 0:
        shutil.rmtree(staging, ignore_errors=True)
        missing_service(f"npm could not install {SDK}@{SDK_VERSION}: {done.stderr[-300:]}")
    if folder.exists() and not (folder / "node_modules" / SDK / "package.json").exists():
        shutil.rmtree(folder, ignore_errors=True)  # a broken earlier install
    try:
        staging.rename(folder)
    except OSError:  # another run installed it first
        shutil.rmtree(staging, ignore_errors=True)
    return folder


@pytest.fixture(scope="module")
def sdk_folder() -> Path:
    return _install_sdk()


@pytest.fixture(scope="module")
def merchant_key() -> rsa.RSAPrivateKey:
    return rsa.generate_private_key(public_exponent=65537, key_size=2048)


def _pem(key: rsa.RSAPrivateKey) -> tuple[str, str]:
    private = key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    ).decode()
    public = (
        key.public_key()
        .public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
        .decode()
    )
    return private, public


def _node_identity() -> str:
    node = shutil.which("node")
    assert node is not None
    out = subprocess.run(
        [node, "-p", "process.versions.node + ' ' + process.platform"],
        capture_output=True,
        text=True,
        check=True,
        timeout=60,
    ).stdout.split()
    return f"amazon-pay-api-sdk-nodejs/{SDK_VERSION} (JS/{out[0]}; {out[1]})"


SESSION = "bd504926-f659-4ad7-a1a9-9a747aaf5275"
CHARGE = "S01-5105180-3221187-C056351"
PERMISSION = "S01-5105180-3221187"
REFUND = "S01-5105180-3221187-R022311"
NON_ASCII = {
    "merchantMetadata": {
        "merchantStoreName": "Café Zoë — 東京店",
        "noteToBuyer": "Grüße 🎁 ñ ß ø",
        "customInformation": "\u00e9\u0301 combining, \u2028 line sep, tab\t",
    }
}

# (name, method, fragment, body, query, idempotency key, region, sandbox, key id, algorithm)
SHAPES: list[tuple[str, str, str, Any, Mapping[str, str] | None, str | None, str, bool, str, str]]
SHAPES = [
    ("create-session", "POST", "checkoutSessions",
     {"webCheckoutDetails": {"checkoutReviewReturnUrl": "https://shop.test/review"},
      "storeId": "amzn1.application-oa2-client.x"}, None, "order-1:auth", "us", True, "AK1", "V2"),
    ("get-session", "GET", f"checkoutSessions/{SESSION}", None, None, None, "us", True, "AK1",
     "V2"),
    ("update-session", "PATCH", f"checkoutSessions/{SESSION}",
     {"webCheckoutDetails": {"checkoutResultReturnUrl": "https://shop.test/r?x=1&y=2"},
      "paymentDetails": {"paymentIntent": "Authorize", "canHandlePendingAuthorization": False,
                         "chargeAmount": {"amount": "14.00", "currencyCode": "USD"}}},
     None, None, "us", True, "AK1", "V2"),
    ("complete-session", "POST", f"checkoutSessions/{SESSION}/complete",
     {"chargeAmount": {"amount": "14.00", "currencyCode": "USD"}}, None, None, "us", True, "AK1",
     "V2"),
    ("get-permission", "GET", f"chargePermissions/{PERMISSION}", None, None, None, "eu", False,
     "AK1", "V2"),
    ("create-charge", "POST", "charges",
     {"chargePermissionId": PERMISSION, "chargeAmount": {"amount": "9.99", "currencyCode": "EUR"},
      "captureNow": True, "canHandlePendingAuthorization": False}, None, "sub-7:month-3", "eu",
     True, "AK1", "V2"),
    ("get-charge", "GET", f"charges/{CHARGE}", None, None, None, "jp", True, "AK1", "V2"),
    ("capture", "POST", f"charges/{CHARGE}/capture",
     {"captureAmount": {"amount": "1200", "currencyCode": "JPY"}}, None, "pay-42:cap0", "jp",
     False, "AK1", "V2"),
    ("cancel-with-body", "DELETE", f"charges/{CHARGE}/cancel",
     {"cancellationReason": "Released by the merchant"}, None, None, "us", True, "AK1", "V2"),
    ("cancel-no-body", "DELETE", f"charges/{CHARGE}/cancel", None, None, None, "us", True, "AK1",
     "V2"),
    ("refund", "POST", "refunds",
     {"chargeId": CHARGE, "refundAmount": {"amount": "3.50", "currencyCode": "GBP"}}, None,
     "pay-42:ref1", "eu", True, "AK1", "V2"),
    ("get-refund", "GET", f"refunds/{REFUND}", None, None, None, "us", False, "AK1", "V2"),
    ("get-with-query", "GET", "reports", None,
     {"reportTypes": "_GET_FLAT_FILE_OFFAMAZONPAYMENTS_ORDER_REFERENCE_DATA_",
      "createdSince": "2026-03-01T00:00:00Z", "pageSize": "10"}, None, "us", True, "AK1", "V2"),
    ("query-needs-escaping", "GET", "reports", None,
     {"nextToken": "a b+c/d=e&f?g#h%", "z": "last", "a": "first", "mark": "!~*'()-_."},
     None, "eu", True, "AK1", "V2"),
    ("query-non-ascii", "GET", "reports", None, {"q": "Grüße 東京 🎁"}, None, "jp", True, "AK1",
     "V2"),
    ("post-with-query", "POST", "charges",
     {"chargePermissionId": PERMISSION, "chargeAmount": {"amount": "1.00", "currencyCode": "USD"},
      "captureNow": False, "canHandlePendingAuthorization": False},
     {"merchantRef": "o/1 2"}, "x" * 40, "us", True, "AK1", "V2"),
    ("non-ascii-patch", "PATCH", f"checkoutSessions/{SESSION}", NON_ASCII, None, None, "eu",
     True, "AK1", "V2"),
    ("non-ascii-post", "POST", "refunds",
     {"chargeId": CHARGE, "refundAmount": {"amount": "2.00", "currencyCode": "EUR"},
      "softDescriptor": "Rückerstattung Ω"}, None, "r-ü-1", "eu", True, "AK1", "V2"),
    ("empty-object-body", "POST", f"checkoutSessions/{SESSION}/complete", {}, None, None, "us",
     True, "AK1", "V2"),
    ("env-key-sandbox", "POST", f"charges/{CHARGE}/capture",
     {"captureAmount": {"amount": "5.00", "currencyCode": "USD"}}, None, "k1", "us", True,
     "SANDBOX-AFVX7ULWSGBZ5535PCUQOY7B", "V2"),
    ("env-key-live", "GET", f"charges/{CHARGE}", None, None, None, "jp", False,
     "LIVE-AFVX7ULWSGBZ5535PCUQOY7B", "V2"),
    ("v1-get", "GET", f"checkoutSessions/{SESSION}", None, None, None, "us", True, "AK1", "V1"),
    ("v1-post-non-ascii", "POST", "checkoutSessions",
     {"webCheckoutDetails": {"checkoutReviewReturnUrl": "https://shop.test/é"},
      "storeId": "amzn1.application-oa2-client.ü"}, None, "order-ü", "eu", True, "AK1", "V1"),
    ("v1-delete", "DELETE", f"charges/{CHARGE}/cancel", {"cancellationReason": "Nein, danke"},
     None, None, "eu", False, "AK1", "V1"),
]  # fmt: skip
ALGORITHM = {"V2": "AMZN-PAY-RSASSA-PSS-V2", "V1": "AMZN-PAY-RSASSA-PSS"}


def _ours(shape: tuple[Any, ...], key: rsa.RSAPrivateKey, user_agent: str) -> dict[str, Any]:
    _, method, fragment, body, query, idem, region, sandbox, key_id, alg = shape
    config = AmazonPayConfig(
        key_id, key, store_id="store", region=region, sandbox=sandbox, algorithm=ALGORITHM[alg]
    )
    client = AmazonPayClient(
        config, MockTransport(_never), clock=lambda: NOW, user_agent=user_agent
    )
    request, signed = client.prepare(method, fragment, body=body, query=query, idempotency_key=idem)
    return {"request": request, "signed": signed, "config": config}


def _never(request: HttpRequest) -> HttpResponse:
    raise AssertionError("nothing is sent")


@pytest.fixture(scope="module")
def sdk_results(sdk_folder: Path, merchant_key: rsa.RSAPrivateKey) -> dict[str, Any]:
    private, public = _pem(merchant_key)
    user_agent = _node_identity()
    ours = [_ours(shape, merchant_key, user_agent) for shape in SHAPES]
    cases = []
    for shape, mine in zip(SHAPES, ours, strict=True):
        _, method, fragment, body, query, _, region, sandbox, key_id, alg = shape
        request: HttpRequest = mine["request"]
        extra = {k: v for k, v in request.headers.items() if k == "x-amz-pay-idempotency-key"}
        cases.append(
            {
                "kind": "request",
                "method": method,
                "fragment": fragment,
                "payload": request.body.decode() if body is not None else None,
                "query": query,
                "headers": extra,
                "date": DATE,
                "publicKeyId": key_id,
                "region": region,
                "sandbox": sandbox,
                "algorithm": ALGORITHM[alg],
                "ourSignature": request.headers["authorization"].rsplit("Signature=", 1)[1],
            }
        )
    buttons = [
        '{"storeId":"amzn1.x","webCheckoutDetails":{"checkoutReviewReturnUrl":"https://s/é"}}'
    ]
    for alg in ("V2", "V1"):
        signer = AmazonPaySigner("AK1", merchant_key, algorithm=ALGORITHM[alg])
        cases.append(
            {
                "kind": "button",
                "payload": buttons[0],
                "date": DATE,
                "publicKeyId": "AK1",
                "region": "us",
                "sandbox": True,
                "algorithm": ALGORITHM[alg],
                "ourSignature": signer.button_signature(buttons[0]),
            }
        )
    node = shutil.which("node")
    assert node is not None
    done = subprocess.run(
        [node, "-e", HARNESS, str(sdk_folder)],
        input=json.dumps({"privateKey": private, "publicKey": public, "cases": cases}),
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
        env={**os.environ, "NODE_NO_WARNINGS": "1"},
    )
    assert done.returncode == 0, done.stderr[-2000:]
    results = json.loads(done.stdout)["results"]
    return {"ours": ours, "theirs": results, "buttons": buttons}


def test_at_least_twenty_request_shapes_cover_every_method() -> None:
    assert len(SHAPES) >= 20
    assert {s[1] for s in SHAPES} == {"GET", "POST", "PATCH", "DELETE"}
    assert len({s[0] for s in SHAPES}) == len(SHAPES)


@pytest.mark.parametrize("index", range(len(SHAPES)), ids=[s[0] for s in SHAPES])
def test_canonical_request_and_string_to_sign_match_the_sdk_byte_for_byte(
    sdk_results: dict[str, Any], merchant_key: rsa.RSAPrivateKey, index: int
) -> None:
    mine = sdk_results["ours"][index]
    theirs = sdk_results["theirs"][index]
    signed = mine["signed"]
    request: HttpRequest = mine["request"]
    assert signed.canonical_request.encode() == theirs["canonical"].encode()
    assert signed.string_to_sign.encode() == theirs["stringToSign"].encode()
    sdk_headers = dict(theirs["headers"])
    our_headers = dict(request.headers)
    their_auth, our_auth = sdk_headers.pop("authorization"), our_headers.pop("authorization")
    assert our_headers == sdk_headers
    assert our_auth.rsplit("Signature=", 1)[0] == their_auth.rsplit("Signature=", 1)[0]
    # each side verifies the other's signature with the public key
    assert theirs["oursVerifies"] is True
    algorithm = their_auth.split(" ", 1)[0]
    verify_signature(
        merchant_key.public_key(),
        algorithm,
        signed.string_to_sign,
        their_auth.rsplit("Signature=", 1)[1],
    )


def test_the_url_is_the_one_the_sdk_would_call(sdk_results: dict[str, Any]) -> None:
    for shape, mine in zip(SHAPES, sdk_results["ours"], strict=True):
        request: HttpRequest = mine["request"]
        path = request.url.split("://", 1)[1].split("/", 1)[1]
        canonical_path = mine["signed"].canonical_request.split("\n")[1]
        assert "/" + path.split("?")[0] == canonical_path, shape[0]
        query_line = mine["signed"].canonical_request.split("\n")[2]
        assert (path.split("?", 1)[1] if "?" in path else "") == query_line


def test_button_signatures_verify_both_ways(
    sdk_results: dict[str, Any], merchant_key: rsa.RSAPrivateKey
) -> None:
    buttons = sdk_results["theirs"][len(SHAPES) :]
    assert len(buttons) == 2
    for result, alg in zip(buttons, ("V2", "V1"), strict=True):
        assert result["oursVerifies"] is True
        verify_signature(
            merchant_key.public_key(), ALGORITHM[alg], result["stringToSign"], result["signature"]
        )
        assert result["stringToSign"].startswith(ALGORITHM[alg] + "\n")


HARNESS = r"""
// Signs each request shape of stdin with Amazon's Node.js SDK and reports what it built:
// the canonical request and string to sign it hashed and signed (captured from node's crypto),
// the headers it returned, and whether the other side's signature verifies over its string.
'use strict';
const crypto = require('crypto');
const path = require('path');

const hashed = [];
const signed = [];
const createHash = crypto.createHash;
crypto.createHash = function (algorithm) {
    const hash = createHash.call(crypto, algorithm);
    const update = hash.update.bind(hash);
    hash.update = (data, encoding) => { hashed.push(String(data)); return update(data, encoding); };
    return hash;
};
const createSign = crypto.createSign;
crypto.createSign = function (algorithm) {
    const sign = createSign.call(crypto, algorithm);
    const update = sign.update.bind(sign);
    sign.update = (data, encoding) => { signed.push(String(data)); return update(data, encoding); };
    return sign;
};

const folder = process.argv[process.argv.length - 1];
const sdk = require(path.join(folder, 'node_modules', '@amazonpay', 'amazon-pay-api-sdk-nodejs'));
const SALT = { 'AMZN-PAY-RSASSA-PSS-V2': 32, 'AMZN-PAY-RSASSA-PSS': 20 };
const RealDate = Date;

function verifies(publicKey, algorithm, message, signature) {
    return crypto.verify('sha256', Buffer.from(message, 'utf8'), {
        key: publicKey,
        padding: crypto.constants.RSA_PKCS1_PSS_PADDING,
        saltLength: SALT[algorithm],
    }, Buffer.from(signature, 'base64'));
}

let input = '';
process.stdin.on('data', (chunk) => { input += chunk; });
process.stdin.on('end', () => {
    const job = JSON.parse(input);
    const out = [];
    for (const c of job.cases) {
        const fixed = RealDate.parse(c.date);
        global.Date = class extends RealDate {
            constructor(...args) { if (args.length === 0) super(fixed); else super(...args); }
            static now() { return fixed; }
        };
        const client = new sdk.WebStoreClient({
            publicKeyId: c.publicKeyId, privateKey: job.privateKey, region: c.region,
            sandbox: c.sandbox, algorithm: c.algorithm,
        });
        hashed.length = 0; signed.length = 0;
        if (c.kind === 'button') {
            const signature = client.generateButtonSignature(c.payload);
            out.push({
                stringToSign: signed[0], signature,
                oursVerifies: verifies(job.publicKey, c.algorithm, signed[0], c.ourSignature),
            });
            continue;
        }
        const options = { method: c.method, urlFragment: c.fragment, headers: c.headers };
        if (c.payload !== null) options.payload = c.payload;
        if (c.query !== null) options.queryParams = c.query;
        const headers = client.getSignedHeaders(options);
        const canonical = hashed.find((text) => text.startsWith(c.method + '\n/'));
        out.push({
            headers, canonical, stringToSign: signed[0],
            oursVerifies: verifies(job.publicKey, c.algorithm, signed[0], c.ourSignature),
        });
    }
    global.Date = RealDate;
    process.stdout.write(JSON.stringify({ results: out }));
});
"""
