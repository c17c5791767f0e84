"""The commerce services' instruments, created once per backend and shared by the services.

Names and tags are listed in ``docs/metrics.md`` and ``docs/commerce.md``.
"""

from __future__ import annotations

import threading

from commercekit.metrics import Counter, Histogram, Metrics, NullMetrics

__all__ = ["CommerceInstruments"]

_PREFIX = "commercekit_commerce_"

_COUNTERS = {
    "reservations_total": ("stock reservations by outcome: made, replayed, refused", "outcome"),
    "reservation_releases_total": ("reservations ended: released, expired, committed", "reason"),
    "oversell_refusals_total": ("reservations refused because a SKU was sold out", None),
    "voucher_refusals_total": ("voucher uses refused: exhausted, invalid", "reason"),
    "order_transitions_total": ("order status changes by axis and target status", "axis,to"),
    "checkouts_total": (
        "checkout sagas by outcome: completed, replayed, declined, action_required, "
        "compensated, recovered, failed",
        "outcome",
    ),
    "cart_writes_total": ("cart writes by operation: add, set, remove, merge", "operation"),
    "cart_write_retries_total": ("cart writes retried after a version conflict", None),
    "cart_closes_deferred_total": (
        "carts of ended checkouts a store outside the database could not close (ordered) "
        "or open again (failed) at once; recover() or the checkout's next replay does it",
        None,
    ),
}


class CommerceInstruments:
    """Counters and histograms of the commerce services on one metrics backend."""

    def __init__(self, metrics: Metrics | None = None) -> None:
        self.backend = metrics if metrics is not None else NullMetrics()
        self._lock = threading.Lock()
        self._counters: dict[tuple[str, tuple[str, ...]], Counter] = {}
        self._histograms: dict[str, Histogram] = {}

    def count(self, name: str, *values: str, amount: int = 1) -> None:
        """Add *amount* to counter *name* (a key of the table above) with tag *values*."""
        key = (name, values)
        counter = self._counters.get(key)
        if counter is None:
            with self._lock:
                description, tag_names = _COUNTERS[name]
                tags = dict(zip((tag_names or "").split(","), values, strict=False))
                counter = self.backend.counter(
                    _PREFIX + name, description=description, tags=tags or None
                )
                self._counters[key] = counter
        counter.inc(amount)

    def checkout_seconds(self, outcome: str) -> Histogram:
        """The histogram of whole ``Checkout.place`` calls, by how each ended."""
        histogram = self._histograms.get("place:" + outcome)
        if histogram is None:
            with self._lock:
                histogram = self.backend.histogram(
                    _PREFIX + "checkout_seconds",
                    description="time of one Checkout.place call, from the cart to its outcome",
                    tags={"outcome": outcome},
                )
                self._histograms["place:" + outcome] = histogram
        return histogram

    def step_seconds(self, step: str) -> Histogram:
        """The latency histogram of one checkout step."""
        histogram = self._histograms.get(step)
        if histogram is None:
            with self._lock:
                histogram = self.backend.histogram(
                    _PREFIX + "checkout_step_seconds",
                    description="time of one checkout saga step",
                    tags={"step": step},
                )
                self._histograms[step] = histogram
        return histogram
