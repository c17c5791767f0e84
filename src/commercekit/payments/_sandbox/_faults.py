"""Transport faults the sandbox injects per call, for chaos tests.

A *faults* hook is called with the operation (or ``"lookup"``) and the
idempotency key and names the :class:`SandboxFault` to strike, or None. A
fault either strikes *before* the provider acts (nothing happened: a reset
before sending, a timeout or a 500 before the change, 429, 409) or is armed
to strike *after* it acted (the change stands, the answer is lost).
"""

from __future__ import annotations

import enum
import threading
from collections.abc import Callable
from typing import Final

from commercekit.errors import (
    CommerceKitError,
    OperationInFlightError,
    OutcomeUnknownError,
    RateLimitedError,
    UnavailableError,
)

__all__ = ["FaultHook", "FaultInjector", "SandboxFault"]


class SandboxFault(enum.Enum):
    """A transport fault the sandbox injects into one call."""

    RESET_BEFORE_SEND = "reset_before_send"
    RESET_AFTER_COMMIT = "reset_after_commit"
    TIMEOUT_BEFORE_COMMIT = "timeout_before_commit"
    TIMEOUT_AFTER_COMMIT = "timeout_after_commit"
    SERVER_ERROR = "server_error"
    SERVER_ERROR_AFTER_COMMIT = "server_error_after_commit"
    RATE_LIMITED = "rate_limited"
    IN_FLIGHT = "in_flight"


FaultHook = Callable[[str, str], "SandboxFault | None"]
"""Called with (operation or ``"lookup"``, idempotency key); returns the fault to inject."""

_BEFORE: Final[dict[SandboxFault, Callable[[], CommerceKitError]]] = {
    SandboxFault.RESET_BEFORE_SEND: lambda: UnavailableError("sandbox: connection reset"),
    SandboxFault.TIMEOUT_BEFORE_COMMIT: lambda: OutcomeUnknownError("sandbox: read timed out"),
    SandboxFault.SERVER_ERROR: lambda: OutcomeUnknownError("sandbox: HTTP 500"),
    SandboxFault.RATE_LIMITED: lambda: RateLimitedError("sandbox: HTTP 429", retry_after_s=1.0),
    SandboxFault.IN_FLIGHT: lambda: OperationInFlightError("sandbox: HTTP 409, key in use"),
}
_AFTER: Final = {
    SandboxFault.RESET_AFTER_COMMIT: "sandbox: connection reset after the request was sent",
    SandboxFault.TIMEOUT_AFTER_COMMIT: "sandbox: read timed out after the request was sent",
    SandboxFault.SERVER_ERROR_AFTER_COMMIT: "sandbox: HTTP 500 after the change was made",
}


class FaultInjector:
    """Asks *hook* per call and raises its faults at the right moment (no hook: no faults)."""

    def __init__(self, hook: FaultHook | None) -> None:
        self._hook = hook
        self._lock = threading.Lock()
        self._pending_after: dict[str, SandboxFault] = {}

    def before(self, operation: str, key: str) -> None:
        """Raise a fault that strikes before the provider acts, or arm one for after."""
        if self._hook is None:
            return
        fault = self._hook(operation, key)
        if fault is None:
            return
        if fault in _BEFORE:
            raise _BEFORE[fault]()
        with self._lock:
            self._pending_after[key] = fault

    def after(self, key: str) -> None:
        """Raise the armed after-commit fault of *key*: the change stands, the answer is lost."""
        with self._lock:
            fault = self._pending_after.pop(key, None)
        if fault is not None:
            raise OutcomeUnknownError(_AFTER[fault])

    def lookup(self, key: str) -> None:
        """Fail a lookup when the hook names any fault for it (a lookup changes nothing)."""
        if self._hook is not None and self._hook("lookup", key) is not None:
            raise UnavailableError("sandbox: the lookup failed; nothing changed")

    def __repr__(self) -> str:
        return f"FaultInjector(hooked={self._hook is not None})"
