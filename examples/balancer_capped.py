"""A cache fleet that grows: what moves with Maglev, and with the capped ring.

Every key that moves to another cache server is a miss on its next read. Here
a fleet of 60 cache servers gains one more. The ideal is that only the
newcomer's share of keys moves (1/61 of them), and that no server holds much
more than its share. Maglev is balanced but moves more than that share; the
capped ring is as balanced and moves about that share.

Run it as it is: ``python examples/balancer_capped.py``.
"""

from __future__ import annotations

from commercekit.balancer import CappedRingBalancer, MaglevBalancer

servers = [f"cache-{i:02d}:11211" for i in range(60)]
keys = [f"/img/product-{i}.jpg" for i in range(200_000)]
ideal = 1 / (len(servers) + 1)

# table_bits=17 keeps this example quick: about 2,000 slots a server. The default
# (2**21 slots) suits fleets up to about 1,000 servers.
for name, make in (
    ("MaglevBalancer", lambda: MaglevBalancer(servers)),
    ("CappedRingBalancer", lambda: CappedRingBalancer(servers, table_bits=17)),
):
    fleet = make()
    before = {key: fleet.pick(key) for key in keys}
    peak = max(fleet.shares().values()) * len(servers)  # exact, from the table
    fleet.add("cache-60:11211")
    after = {key: fleet.pick(key) for key in keys}
    moved = sum(before[key] != after[key] for key in keys) / len(keys)
    elsewhere = sum(before[key] != after[key] != "cache-60:11211" for key in keys)
    print(
        f"{name:19} largest share/mean {peak:.3f}  moved {moved:.2%} of keys "
        f"({moved / ideal:.2f}x the ideal {ideal:.2%}); between old servers: {elsewhere}"
    )
    assert peak <= 1.02
    if isinstance(fleet, CappedRingBalancer):
        assert moved / ideal < 1.15
