"""The pure decisions, shared by both twins: routing, positions and tokens, shard
placement, keyset pages. No I/O and no clock reads: the caller passes what is known.
"""
