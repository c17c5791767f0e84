"""Where responses are kept.

In process (W-TinyLFU admission), Redis, the two tiered; a breaker for shared stores.
"""
