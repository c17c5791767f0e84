"""What an idempotency store keeps per key, and what claiming a key can return.

A record is created *before* the provider is called (``PENDING``, with a lease
held by one attempt), becomes ``COMPLETE`` with the provider's answer, or
``UNKNOWN`` when the answer was lost (anyone may then reconcile it). While a
record is pending or unknown it also holds its *scope* (the payment), so two
operations on one payment never run at once and the ledger checks hold.
"""

from __future__ import annotations

import enum
import hashlib
import json
from collections.abc import Mapping

import attrs

__all__ = ["Claim", "ClaimKind", "IdempotencyRecord", "RecordStatus", "fingerprint"]


class RecordStatus(enum.Enum):
    """Where an idempotency record stands."""

    PENDING = "pending"
    UNKNOWN = "unknown"
    COMPLETE = "complete"


class ClaimKind(enum.Enum):
    """What :meth:`IdempotencyStore.begin` found.

    ``NEW``: the key was free and is now ours; call the provider. ``RECOVER``:
    an earlier attempt's outcome is unknown (or its lease ran out) and is now
    ours; look it up at the provider before any new attempt. ``REPLAY``: the
    key is complete; return its result. ``BLOCKED``: another key holds the
    scope and its outcome is unknown; reconcile that one first.
    """

    NEW = "new"
    RECOVER = "recover"
    REPLAY = "replay"
    BLOCKED = "blocked"


@attrs.frozen
class IdempotencyRecord:
    """One key: the request it stands for, who holds it, and the result once known."""

    key: str
    scope: str
    operation: str
    fingerprint: str
    request: str
    status: RecordStatus
    owner: str | None
    lease_expires_at: float
    created_at: float
    result: str | None = None
    completed_at: float | None = None


@attrs.frozen
class Claim:
    """The answer of :meth:`IdempotencyStore.begin`: what was found, and the record."""

    kind: ClaimKind
    record: IdempotencyRecord


def fingerprint(request: Mapping[str, object]) -> str:
    """A stable SHA-256 over a request's canonical JSON: same request, same fingerprint."""
    text = json.dumps(request, sort_keys=True, separators=(",", ":"), default=str)
    return hashlib.sha256(text.encode()).hexdigest()
