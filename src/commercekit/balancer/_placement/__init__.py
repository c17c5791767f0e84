"""Placement tables, pure: the Maglev table, the ketama ring, the capped ring, the hashes.

Nodes and weights in, a lookup table out; no locks, no health, no I/O.
"""
