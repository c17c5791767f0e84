"""An outbox relay as its own process, that SIGKILLs itself between publishing and marking sent.

    python tests/analytics/_relay_process.py SHOP_DB LOG_URL [--crash-after-publish N]

Relays the outbox of the SQLite database *SHOP_DB* to the event log *LOG_URL*
(``commercekit.analytics.open_log``) until nothing is left unsent, then exits
0. With ``--crash-after-publish N`` it kills itself with SIGKILL right after
its N-th publish, before marking that batch sent: a real crash at the worst
point, chosen deterministically. The batch's lease then runs out and the next
relay publishes it again, with the same event ids.
"""

from __future__ import annotations

import argparse
import os
import signal
import time

from commercekit.analytics import OutboxRelay, open_log
from commercekit.errors import TransientError
from commercekit.repository import Database, Node, Outbox, ReplicatedTopology, sqlite_engine


def main() -> None:
    """Relay until the outbox is drained (or the planned crash)."""
    parser = argparse.ArgumentParser()
    parser.add_argument("shop_db")
    parser.add_argument("log_url")
    parser.add_argument("--crash-after-publish", type=int, default=0)
    args = parser.parse_args()
    shop = Database(ReplicatedTopology(Node("primary", sqlite_engine(args.shop_db))))
    outbox = Outbox()
    log = open_log(args.log_url)
    relay = OutboxRelay(shop, outbox, log, batch_size=250, lease_s=1.0)
    published = 0
    while True:
        try:
            claim = relay.claim()
            if not claim.events:
                if not shop.run(outbox.pending, read_only=True).value:
                    break
                time.sleep(0.1)  # only leased (crashed) batches are left: wait them out
                continue
            relay.publish(claim)
            published += 1
            if published == args.crash_after_publish:
                os.kill(os.getpid(), signal.SIGKILL)
            relay.mark_sent(claim)
        except TransientError:
            time.sleep(0.1)  # the broker is down: the claim was released, try again
    log.close()


if __name__ == "__main__":
    main()
