"""Trace spans through ``opentelemetry-api`` (a no-op without it), and W3C ``traceparent``.

``span(name, ...)`` is a context manager every part wraps its outgoing calls
in (a unit of work, an origin fetch, a payment call). With opentelemetry-api
installed it starts a span on the ``commercekit`` tracer as the current span,
records an exception that escapes it and sets an error status; without the
package it costs one function call and a shared no-op object. Span names and
attributes follow OpenTelemetry's semantic conventions (``db.system``,
``http.request.method``, ``server.address``) where they exist.

``parse_traceparent`` / ``format_traceparent`` read and write the W3C Trace
Context header (version 00), and ``span(..., traceparent=header)`` continues a
trace that a front proxy started; ``current_traceparent()`` gives the header
to send on.
"""

from __future__ import annotations

import re
from collections.abc import Iterator, Mapping
from contextlib import AbstractContextManager, contextmanager
from types import TracebackType
from typing import Any

import attrs

from commercekit.errors import InvalidInputError

__all__ = ["TraceContext", "current_traceparent", "format_traceparent", "parse_traceparent", "span"]

_TRACEPARENT = re.compile(r"\A([0-9a-f]{2})-([0-9a-f]{32})-([0-9a-f]{16})-([0-9a-f]{2})\Z")
_KINDS = ("internal", "server", "client", "producer", "consumer")


@attrs.frozen
class TraceContext:
    """The fields of a ``traceparent`` header: trace id, parent span id, sampled flag."""

    trace_id: int
    span_id: int
    sampled: bool = True

    def __attrs_post_init__(self) -> None:
        if not 0 < self.trace_id < 1 << 128 or not 0 < self.span_id < 1 << 64:
            raise InvalidInputError("trace ids are 1 to 2**128-1, span ids 1 to 2**64-1")


def parse_traceparent(header: str | None) -> TraceContext | None:
    """Read a W3C ``traceparent`` header; None when it is missing or invalid (per the spec)."""
    if not header or not isinstance(header, str) or len(header) > 512:
        return None
    m = _TRACEPARENT.match(header.strip())
    if m is None or m.group(1) == "ff":
        return None
    if m.group(1) == "00" and len(header.strip()) != 55:
        return None
    trace_id, span_id = int(m.group(2), 16), int(m.group(3), 16)
    if trace_id == 0 or span_id == 0:
        return None
    return TraceContext(trace_id, span_id, bool(int(m.group(4), 16) & 1))


def format_traceparent(context: TraceContext) -> str:
    """Write *context* as a version-00 ``traceparent`` header."""
    flags = "01" if context.sampled else "00"
    return f"00-{context.trace_id:032x}-{context.span_id:016x}-{flags}"


class _Noop(AbstractContextManager[None]):
    __slots__ = ()

    def __enter__(self) -> None:
        return None

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        return None


_NOOP = _Noop()
_state: dict[str, Any] = {}


def _otel() -> Any:
    """The opentelemetry.trace module, or None (looked up once)."""
    try:
        return _state["trace"]
    except KeyError:
        module: Any
        try:
            from opentelemetry import trace as module
        except ImportError:
            module = None
        _state["trace"] = module
        return module


@contextmanager
def _otel_span(
    trace: Any, name: str, kind: str, attributes: Mapping[str, Any] | None, parent: Any
) -> Iterator[None]:
    tracer = _state.get("tracer")
    if tracer is None:
        tracer = _state["tracer"] = trace.get_tracer("commercekit")
    span_kind = getattr(trace.SpanKind, kind.upper())
    with tracer.start_as_current_span(
        name, context=parent, kind=span_kind, attributes=dict(attributes or {})
    ):
        yield


def span(
    name: str,
    *,
    kind: str = "internal",
    attributes: Mapping[str, Any] | None = None,
    traceparent: str | None = None,
) -> AbstractContextManager[None]:
    """A span named *name* around the block (no-op without opentelemetry-api).

    *kind* is ``internal``, ``server``, ``client``, ``producer`` or ``consumer``;
    *traceparent* makes the span a child of a remote parent (an incoming header).
    """
    trace = _state.get("trace", 0)
    if trace is None:
        return _NOOP
    if trace == 0:
        trace = _otel()
        if trace is None:
            return _NOOP
    # The API with no provider set records nothing: skip it (get_tracer_provider() reads
    # the environment on every call, so the module's global is looked at directly).
    if getattr(trace, "_TRACER_PROVIDER", 0) is None:
        return _NOOP
    if kind not in _KINDS:
        raise InvalidInputError(f"a span kind is one of {_KINDS}, got {kind!r}")
    parent = None
    if traceparent is not None:
        remote = parse_traceparent(traceparent)
        if remote is not None:
            parent = trace.set_span_in_context(
                trace.NonRecordingSpan(
                    trace.SpanContext(
                        remote.trace_id,
                        remote.span_id,
                        is_remote=True,
                        trace_flags=trace.TraceFlags(1 if remote.sampled else 0),
                    )
                )
            )
    return _otel_span(trace, name, kind, attributes, parent)


def current_traceparent() -> str | None:
    """The ``traceparent`` header of the current span, or None when there is none."""
    trace = _otel()
    if trace is None:
        return None
    ctx = trace.get_current_span().get_span_context()
    if not ctx.is_valid:
        return None
    return format_traceparent(TraceContext(ctx.trace_id, ctx.span_id, bool(ctx.trace_flags & 1)))
