"""InMemoryIdempotencyStore: the idempotency store for tests and single-process demos.

It keeps the same promises as the SQL store (the contract suite in
``tests/contract/test_idempotency_contract.py`` runs both) with a lock
instead of transactions.
"""

from __future__ import annotations

import threading

import attrs

from commercekit.errors import ConflictError, NotFoundError, OperationInFlightError
from commercekit.payments._core._records import Claim, ClaimKind, IdempotencyRecord, RecordStatus

__all__ = ["InMemoryIdempotencyStore", "decide_claim"]


def decide_claim(
    record: IdempotencyRecord, *, fingerprint: str, owner: str, now: float
) -> ClaimKind | None:
    """What ``begin`` does with an existing *record* of the same key.

    Returns REPLAY for a complete record, RECOVER when the record may be taken
    over (unknown, or its lease ran out), or None when the caller must take it
    over atomically. Shared by every store, so they cannot drift apart.

    Raises:
        ConflictError: *fingerprint* differs from the recorded one.
        OperationInFlightError: another owner holds the key with a live lease.
    """
    if record.fingerprint != fingerprint:
        raise ConflictError(
            f"idempotency key {record.key!r} was first used for another request "
            f"({record.operation} on {record.scope!r}); use a new key for a new request"
        )
    if record.status is RecordStatus.COMPLETE:
        return ClaimKind.REPLAY
    if record.status is RecordStatus.PENDING and record.lease_expires_at > now:
        raise OperationInFlightError(
            f"idempotency key {record.key!r} is in flight on another worker; retry with "
            "the same key shortly to get its result",
            retry_after_s=record.lease_expires_at - now,
        )
    return ClaimKind.RECOVER


def scope_in_flight(holder: IdempotencyRecord, now: float) -> OperationInFlightError:
    """The error for a scope held, with a live lease, by another key."""
    return OperationInFlightError(
        f"payment {holder.scope!r} has another operation in flight ({holder.operation}, "
        f"key {holder.key!r}); retry shortly",
        retry_after_s=max(holder.lease_expires_at - now, 0.0),
    )


class InMemoryIdempotencyStore:
    """An :class:`IdempotencyStore` in a dict, safe across threads of one process."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._records: dict[str, IdempotencyRecord] = {}
        self._scopes: dict[str, str] = {}
        self._order: dict[str, list[str]] = {}
        self._open: set[str] = set()  # keys not complete, for unresolved()

    def begin(
        self,
        key: str,
        *,
        scope: str,
        operation: str,
        fingerprint: str,
        request: str,
        owner: str,
        now: float,
        lease_s: float,
    ) -> Claim:
        """Claim *key*; see :meth:`IdempotencyStore.begin`."""
        with self._lock:
            record = self._records.get(key)
            if record is not None:
                kind = decide_claim(record, fingerprint=fingerprint, owner=owner, now=now)
                if kind is ClaimKind.REPLAY:
                    return Claim(kind, record)
                record = attrs.evolve(
                    record, status=RecordStatus.PENDING, owner=owner, lease_expires_at=now + lease_s
                )
                self._records[key] = record
                return Claim(ClaimKind.RECOVER, record)
            holder_key = self._scopes.get(scope)
            if holder_key is not None:
                holder = self._records[holder_key]
                if holder.status is RecordStatus.PENDING and holder.lease_expires_at > now:
                    raise scope_in_flight(holder, now)
                return Claim(ClaimKind.BLOCKED, holder)
            record = IdempotencyRecord(
                key=key,
                scope=scope,
                operation=operation,
                fingerprint=fingerprint,
                request=request,
                status=RecordStatus.PENDING,
                owner=owner,
                lease_expires_at=now + lease_s,
                created_at=now,
            )
            self._records[key] = record
            self._scopes[scope] = key
            self._open.add(key)
            return Claim(ClaimKind.NEW, record)

    def _held(self, key: str, owner: str) -> IdempotencyRecord:
        record = self._records.get(key)
        if record is None:
            raise NotFoundError(f"no idempotency record for key {key!r}")
        if record.owner != owner or record.status is RecordStatus.COMPLETE:
            raise ConflictError(
                f"idempotency key {key!r} is no longer held by this attempt "
                "(its lease ran out and another attempt took it over)"
            )
        return record

    def complete(self, key: str, *, owner: str, result: str, now: float) -> None:
        """Record *result*; see :meth:`IdempotencyStore.complete`."""
        with self._lock:
            record = self._held(key, owner)
            self._records[key] = attrs.evolve(
                record, status=RecordStatus.COMPLETE, result=result, completed_at=now, owner=None
            )
            self._order.setdefault(record.scope, []).append(key)
            self._open.discard(key)
            if self._scopes.get(record.scope) == key:
                del self._scopes[record.scope]

    def release(self, key: str, *, owner: str, unknown: bool) -> None:
        """Forget *key* or mark it unknown; see :meth:`IdempotencyStore.release`."""
        with self._lock:
            record = self._held(key, owner)
            if unknown:
                self._records[key] = attrs.evolve(
                    record, status=RecordStatus.UNKNOWN, owner=None, lease_expires_at=0.0
                )
                return
            del self._records[key]
            self._open.discard(key)
            if self._scopes.get(record.scope) == key:
                del self._scopes[record.scope]

    def get(self, key: str) -> IdempotencyRecord | None:
        """The record of *key*, or None."""
        with self._lock:
            return self._records.get(key)

    def history(self, scope: str) -> list[IdempotencyRecord]:
        """The completed records of *scope*, oldest first."""
        with self._lock:
            return [self._records[key] for key in self._order.get(scope, [])]

    def unresolved(self, now: float) -> list[IdempotencyRecord]:
        """Unknown records, and pending ones whose lease ran out, oldest first."""
        with self._lock:
            return sorted(
                (
                    r
                    for r in (self._records[key] for key in self._open)
                    if r.status is RecordStatus.UNKNOWN
                    or (r.status is RecordStatus.PENDING and r.lease_expires_at <= now)
                ),
                key=lambda r: r.created_at,
            )

    def __repr__(self) -> str:
        return f"InMemoryIdempotencyStore(records={len(self._records)})"
