"""The instruments the payment service reports through, created once when it is built.

Names follow ``commercekit_payments_<name>_<unit>``; counters end in ``_total``.
The per-operation instruments are made up front; the per-code ones (declines,
reconciliations) on first use and kept, so every later call is one dictionary
read and one method call.
"""

from __future__ import annotations

from commercekit.metrics import Counter, Histogram, Metrics
from commercekit.payments._core._results import DeclineCode, Operation

__all__ = ["PaymentInstruments"]


class PaymentInstruments:
    """The payment service's counters and histograms for one provider."""

    def __init__(self, metrics: Metrics, provider: str) -> None:
        self.attempts: dict[Operation, Counter] = {}
        self.latency: dict[Operation, Histogram] = {}
        self.retries: dict[Operation, Counter] = {}
        self.replays: dict[Operation, Counter] = {}
        self.unknown: dict[Operation, Counter] = {}
        self._metrics = metrics
        self._provider = provider
        self._declines: dict[tuple[Operation, DeclineCode], Counter] = {}
        self._reconciliations: dict[tuple[Operation, str], Counter] = {}
        for op in Operation:
            tags = {"operation": op.value, "provider": provider}
            self.attempts[op] = metrics.counter(
                "commercekit_payments_attempts_total",
                description="Calls made to the payment provider, retries included.",
                tags=tags,
            )
            self.latency[op] = metrics.histogram(
                "commercekit_payments_latency_seconds",
                description="Time of one call to the payment provider.",
                tags=tags,
            )
            self.retries[op] = metrics.counter(
                "commercekit_payments_retries_total",
                description="Provider calls retried after an error that is safe to retry.",
                tags=tags,
            )
            self.replays[op] = metrics.counter(
                "commercekit_payments_replays_total",
                description="Operations answered from the idempotency store, not the provider.",
                tags=tags,
            )
            self.unknown[op] = metrics.counter(
                "commercekit_payments_outcome_unknown_total",
                description="Provider calls whose answer was lost after sending.",
                tags=tags,
            )

    def decline(self, operation: Operation, code: DeclineCode) -> Counter:
        """The declines counter of *operation* and *code*."""
        counter = self._declines.get((operation, code))
        if counter is None:
            counter = self._declines[operation, code] = self._metrics.counter(
                "commercekit_payments_declines_total",
                description="Operations the provider declined, by standard decline code.",
                tags={"operation": operation.value, "provider": self._provider, "code": code.value},
            )
        return counter

    def reconciliation(self, operation: Operation, outcome: str) -> Counter:
        """The reconciliations counter of *operation* and *outcome* (found, absent, failed)."""
        counter = self._reconciliations.get((operation, outcome))
        if counter is None:
            counter = self._reconciliations[operation, outcome] = self._metrics.counter(
                "commercekit_payments_reconciliations_total",
                description="Unknown outcomes looked up at the provider, by what was found.",
                tags={"operation": operation.value, "provider": self._provider, "outcome": outcome},
            )
        return counter
