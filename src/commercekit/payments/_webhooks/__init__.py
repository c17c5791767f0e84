"""Webhooks: signature verification and exactly-once processing of provider events."""
