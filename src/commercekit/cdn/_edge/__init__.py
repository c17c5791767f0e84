"""``EdgeCache`` and its machinery.

Coalesced flights, streamed fills, generations, the origin call, the network.
"""
