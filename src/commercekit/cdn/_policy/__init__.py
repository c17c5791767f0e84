"""The RFC 9111 policy, pure.

Cache-Control, freshness, conditional requests, Vary, cache keys, store decisions.
"""
