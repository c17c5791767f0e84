"""Signed URLs: CloudFront (byte for byte against botocore) and HMAC (imgproxy-style)."""

from __future__ import annotations

import base64
import datetime as dt
import hmac
from functools import cache

import pytest
from botocore.signers import CloudFrontSigner as BotoSigner
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec, padding, rsa
from hypothesis import given
from hypothesis import strategies as st

from commercekit.cdn import (
    CloudFrontSigner,
    HmacUrlSigner,
    ManualClock,
    SignatureError,
    SignatureExpiredError,
    cloudfront_policy,
)
from commercekit.errors import ConfigurationError, InvalidInputError

URL = "https://d111111abcdef8.cloudfront.net/images/cat.jpg?size=large"
EXPIRES = 1_700_003_600


@cache
def rsa_key() -> rsa.RSAPrivateKey:
    return rsa.generate_private_key(public_exponent=65537, key_size=2048)


def boto(hash_algorithm: hashes.HashAlgorithm) -> BotoSigner:
    key = rsa_key()
    return BotoSigner("K2JCJMDEHXQW5F", lambda m: key.sign(m, padding.PKCS1v15(), hash_algorithm))


def when(epoch: int) -> dt.datetime:
    return dt.datetime.fromtimestamp(epoch, tz=dt.UTC)


def test_canned_url_matches_botocore_byte_for_byte() -> None:
    ours = CloudFrontSigner("K2JCJMDEHXQW5F", rsa_key()).sign(URL, expires_at=EXPIRES)
    theirs = boto(hashes.SHA1()).generate_presigned_url(URL, date_less_than=when(EXPIRES))
    assert ours == theirs


def test_custom_policy_matches_botocore_byte_for_byte() -> None:
    signer = boto(hashes.SHA1())
    policy = signer.build_policy(
        URL, when(EXPIRES), date_greater_than=when(EXPIRES - 3600), ip_address="10.0.0.1"
    )
    assert policy == cloudfront_policy(
        URL, expires_at=EXPIRES, starts_at=EXPIRES - 3600, ip_range="10.0.0.1"
    )
    theirs = signer.generate_presigned_url(URL, policy=policy)
    ours = CloudFrontSigner("K2JCJMDEHXQW5F", rsa_key()).sign(
        URL, expires_at=EXPIRES, starts_at=EXPIRES - 3600, ip_range="10.0.0.1"
    )
    assert ours == theirs


def test_sha256_signature_matches_botocore_with_a_sha256_signer() -> None:
    ours = CloudFrontSigner("K2JCJMDEHXQW5F", rsa_key(), hash_algorithm="SHA256").sign(
        URL, expires_at=EXPIRES
    )
    theirs = boto(hashes.SHA256()).generate_presigned_url(URL, date_less_than=when(EXPIRES))
    # botocore has no Hash-Algorithm parameter; everything else is identical
    assert ours.replace("&Hash-Algorithm=SHA256", "") == theirs


def test_canned_cookies() -> None:
    signer = CloudFrontSigner("K2JCJMDEHXQW5F", rsa_key())
    cookies = signer.signed_cookies(URL, expires_at=EXPIRES)
    assert set(cookies) == {"CloudFront-Expires", "CloudFront-Signature", "CloudFront-Key-Pair-Id"}
    url = boto(hashes.SHA1()).generate_presigned_url(URL, date_less_than=when(EXPIRES))
    assert f"Signature={cookies['CloudFront-Signature']}&" in url
    signer_at = CloudFrontSigner("K2JCJMDEHXQW5F", rsa_key(), clock=ManualClock(EXPIRES - 10))
    signer_at.verify_cookies(URL, cookies)


def test_custom_cookies_with_wildcard_verify() -> None:
    clock = ManualClock(EXPIRES - 100)
    signer = CloudFrontSigner("K2JCJMDEHXQW5F", rsa_key(), clock=clock)
    cookies = signer.signed_cookies(
        "https://d111111abcdef8.cloudfront.net/video/*", expires_at=EXPIRES
    )
    assert "CloudFront-Policy" in cookies
    signer.verify_cookies("https://d111111abcdef8.cloudfront.net/video/a.mp4", cookies)
    with pytest.raises(SignatureError, match="cover"):
        signer.verify_cookies("https://d111111abcdef8.cloudfront.net/img/a.jpg", cookies)


@pytest.mark.parametrize("algorithm", ["SHA1", "SHA256"])
def test_rsa_round_trip_and_tampering(algorithm: str) -> None:
    clock = ManualClock(EXPIRES - 100)
    signer = CloudFrontSigner("K2JCJMDEHXQW5F", rsa_key(), hash_algorithm=algorithm, clock=clock)  # type: ignore[arg-type]
    signed = signer.sign(URL, expires_at=EXPIRES)
    signer.verify(signed)
    with pytest.raises(SignatureError):
        signer.verify(signed.replace("cat.jpg", "dog.jpg"))
    with pytest.raises(SignatureError):
        signer.verify(signed.replace(f"Expires={EXPIRES}", f"Expires={EXPIRES + 1}"))
    clock.advance(200)
    with pytest.raises(SignatureExpiredError):
        signer.verify(signed)


def test_ecdsa_round_trip() -> None:
    clock = ManualClock(EXPIRES - 100)
    key = ec.generate_private_key(ec.SECP256R1())
    signer = CloudFrontSigner("KEC", key, clock=clock)
    signed = signer.sign(URL, expires_at=EXPIRES, starts_at=EXPIRES - 50)
    assert "Hash-Algorithm=SHA256" in signed
    assert "Policy=" in signed
    with pytest.raises(SignatureExpiredError, match="before"):
        signer.verify(signed)
    clock.advance(60)
    signer.verify(signed)


def test_memoized_per_window() -> None:
    clock = ManualClock(1_700_000_000)
    signer = CloudFrontSigner("K", rsa_key(), clock=clock, window_s=300)
    first = signer.sign_for(URL, ttl_s=3600)
    clock.advance(100)
    assert signer.sign_for(URL, ttl_s=3600) is first
    clock.advance(300)
    assert signer.sign_for(URL, ttl_s=3600) != first


def test_garbage_is_a_signature_error() -> None:
    signer = CloudFrontSigner("K", rsa_key())
    for bad in [
        URL,
        URL + "&Signature=%%%&Key-Pair-Id=K&Expires=1",
        URL + "&Key-Pair-Id=K&Signature=AAAA&Policy=!!!",
    ]:
        with pytest.raises(SignatureError):
            signer.verify(bad)
    with pytest.raises(ConfigurationError):
        CloudFrontSigner("bad&id", rsa_key())


KEY = bytes.fromhex("943b421c9eb07c830af81030552c86009268de4e532ba2ee2eab8247c6da0881")
SALT = bytes.fromhex("520f986b998545b4785e0defbc4f3c1203f22de2374a3d53cb7a7fe9fea309c5")


def test_hmac_follows_imgproxys_definition() -> None:
    # imgproxy: urlsafe_b64(HMAC-SHA256(key, salt + path after the signature)), no padding
    path = "/rs:fill:300:400:0/g:sm/aHR0cDovL2V4YW1w/bGUuY29tL2ltYWdl/cy9jdXJpb3NpdHku/anBn.png"
    signed = HmacUrlSigner(KEY, SALT).sign(path)
    expected = base64.urlsafe_b64encode(hmac.digest(KEY, SALT + path.encode(), "sha256")).rstrip(
        b"="
    )
    assert signed == "/" + expected.decode() + path
    HmacUrlSigner(KEY, SALT).verify(signed)


def test_hmac_expiry_start_and_skew() -> None:
    clock = ManualClock(1000)
    signer = HmacUrlSigner(KEY, clock=clock, clock_skew_s=5)
    url = signer.sign("https://img.shop.test/a.jpg?w=100", expires_at=1100, starts_at=1010)
    clock.now = 1006  # 4 s early: within the skew
    signer.verify(url)
    clock.now = 1003
    with pytest.raises(SignatureExpiredError):
        signer.verify(url)
    clock.now = 1104
    signer.verify(url)
    clock.now = 1106
    with pytest.raises(SignatureExpiredError):
        signer.verify(url)


@given(st.text(max_size=80))
def test_hmac_verify_never_crashes_on_garbage(text: str) -> None:
    signer = HmacUrlSigner(KEY)
    with pytest.raises(InvalidInputError):
        signer.verify(text)


def test_hmac_tampering_is_refused() -> None:
    signer = HmacUrlSigner(KEY)
    url = signer.sign("https://img.shop.test/a.jpg?w=100", expires_at=2**40)
    signer.verify(url)
    for bad in (
        url.replace("w=100", "w=101"),
        url.replace("a.jpg", "b.jpg"),
        url.replace("exp=", "exp=9"),
        url + "&x=1",
    ):
        with pytest.raises(SignatureError):
            signer.verify(bad)


@pytest.mark.parametrize("respell", ["+{}", "0{}", "%20{}", "fullwidth"])
def test_cloudfront_expires_spelt_otherwise_is_refused(respell: str) -> None:
    signer = CloudFrontSigner("K2JCJMDEHXQW5F", rsa_key(), clock=ManualClock(EXPIRES - 10))
    url = signer.sign(URL, expires_at=EXPIRES)
    signer.verify(url)
    if respell == "fullwidth":
        other = "".join(chr(0xFF10 + int(d)) for d in str(EXPIRES))
    else:
        other = respell.format(EXPIRES)
    with pytest.raises(SignatureError):
        signer.verify(url.replace(f"Expires={EXPIRES}", f"Expires={other}"))
