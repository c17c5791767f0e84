"""The repository's instruments, created once when a :class:`Database` is built.

| name | kind | tags |
| --- | --- | --- |
| ``commercekit_repository_statements_total`` | counter | group, node, role |
| ``commercekit_repository_reads_total`` | counter | role |
| ``commercekit_repository_replica_lag_seconds`` | gauge | group, node |
| ``commercekit_repository_token_waits_total`` | counter | outcome (reached, timeout) |
| ``commercekit_repository_token_wait_seconds`` | histogram | |
| ``commercekit_repository_fallbacks_total`` | counter | reason |
| ``commercekit_repository_replica_ejections_total`` | counter | group, node |
| ``commercekit_repository_retries_total`` | counter | work (read, unit_of_work) |
| ``commercekit_repository_errors_total`` | counter | error |
| ``commercekit_repository_token_fallbacks_total`` | counter | group, reason |
"""

from __future__ import annotations

from commercekit.metrics import Counter, Gauge, Histogram, Metrics
from commercekit.repository._policy._routing import FallbackReason, Role

__all__ = ["ERROR_LABELS", "TOKEN_FALLBACK_REASONS", "RepositoryMetrics"]

P = "commercekit_repository_"

ERROR_LABELS = (
    "StaleVersionError",
    "DuplicateError",
    "ConflictError",
    "SerializationFailureError",
    "DatabaseUnavailableError",
    "CommitOutcomeUnknownError",
    "ReadOnlyError",
    "RepositoryError",
)

TOKEN_FALLBACK_REASONS = ("unavailable", "failed", "unreadable")
"""Why a commit's token fell back to a time window: the primary could not be reached
for its position, the position query failed, or its answer was not a position."""


class RepositoryMetrics:
    """Pre-bound instruments; the hot path is one method call on one of them."""

    def __init__(self, metrics: Metrics, nodes: list[tuple[str, str, Role]]) -> None:
        self.statements: dict[tuple[str, str], Counter] = {
            (group, node): metrics.counter(
                f"{P}statements_total",
                description="SQL statements sent, by node and its role",
                tags={"group": group, "node": node, "role": role.value},
            )
            for group, node, role in nodes
        }
        self.reads: dict[Role, Counter] = {
            role: metrics.counter(
                f"{P}reads_total",
                description="Reads outside a write unit of work, by the role of the serving node",
                tags={"role": role.value},
            )
            for role in Role
        }
        self.lag: dict[tuple[str, str], Gauge] = {
            (group, node): metrics.gauge(
                f"{P}replica_lag_seconds",
                description="Replay lag of a replica at its last probe",
                unit="seconds",
                tags={"group": group, "node": node},
            )
            for group, node, role in nodes
            if role is Role.REPLICA
        }
        self.ejections: dict[tuple[str, str], Counter] = {
            (group, node): metrics.counter(
                f"{P}replica_ejections_total",
                description="Replicas taken out of rotation after a failure",
                tags={"group": group, "node": node},
            )
            for group, node, role in nodes
            if role is Role.REPLICA
        }
        self.token_reached: Counter = metrics.counter(
            f"{P}token_waits_total",
            description="Waits for a replica to replay a consistency token, by outcome",
            tags={"outcome": "reached"},
        )
        self.token_timeout: Counter = metrics.counter(
            f"{P}token_waits_total",
            description="Waits for a replica to replay a consistency token, by outcome",
            tags={"outcome": "timeout"},
        )
        self.token_wait: Histogram = metrics.histogram(
            f"{P}token_wait_seconds",
            description="Time spent confirming a replica has replayed a consistency token",
        )
        self.fallbacks: dict[FallbackReason, Counter] = {
            reason: metrics.counter(
                f"{P}fallbacks_total",
                description="Reads that went to the primary instead of a replica, by reason",
                tags={"reason": reason.value},
            )
            for reason in FallbackReason
        }
        self.retries: dict[str, Counter] = {
            work: metrics.counter(
                f"{P}retries_total",
                description="Transient failures retried, by kind of work",
                tags={"work": work},
            )
            for work in ("read", "unit_of_work")
        }
        self.errors: dict[str, Counter] = {
            label: metrics.counter(
                f"{P}errors_total",
                description="Errors raised to callers, by commercekit error class",
                tags={"error": label},
            )
            for label in ERROR_LABELS
        }

        self.token_fallbacks: dict[tuple[str, str], Counter] = {
            (group, reason): metrics.counter(
                f"{P}token_fallbacks_total",
                description=(
                    "Commits whose consistency token fell back from a replication position "
                    "to a time window, by reason"
                ),
                tags={"group": group, "reason": reason},
            )
            for group in dict.fromkeys(group for group, _, _ in nodes)
            for reason in TOKEN_FALLBACK_REASONS
        }

    def error(self, exc: BaseException) -> None:
        """Count *exc* (a commercekit error on its way to the caller)."""
        counter = self.errors.get(type(exc).__name__)
        if counter is not None:
            counter.inc()
