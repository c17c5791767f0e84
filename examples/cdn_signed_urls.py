"""Signed URLs: an HMAC-signed image URL and a CloudFront signed URL, checked and tampered with.

Run: python examples/cdn_signed_urls.py
"""

from __future__ import annotations

import secrets
import time

from cryptography.hazmat.primitives.asymmetric import rsa

from commercekit.cdn import CloudFrontSigner, HmacUrlSigner, SignatureError


def main() -> None:
    hmac_signer = HmacUrlSigner(secrets.token_bytes(32))
    url = hmac_signer.sign(
        "https://img.shop.example/rs:fit:300/shoe.jpg", expires_at=time.time() + 600
    )
    hmac_signer.verify(url)
    print("hmac:", url)
    try:
        hmac_signer.verify(url.replace("300", "3000"))
    except SignatureError as exc:
        print("tampered:", exc)

    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    cloudfront = CloudFrontSigner("K2JCJMDEHXQW5F", key)
    signed = cloudfront.sign_for(
        "https://d111111abcdef8.cloudfront.net/video/intro.mp4", ttl_s=3600
    )
    cloudfront.verify(signed)
    print("cloudfront:", signed[:100], "...")
    cookies = cloudfront.signed_cookies(
        "https://d111111abcdef8.cloudfront.net/video/*", expires_at=time.time() + 3600
    )
    print("cookies:", sorted(cookies))


if __name__ == "__main__":
    main()
