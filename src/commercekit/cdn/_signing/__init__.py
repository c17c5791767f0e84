"""Signed URLs (CloudFront-style, HMAC) and AWS Signature Version 4 request signing."""
