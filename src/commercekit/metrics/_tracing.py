"""Trace spans through ``opentelemetry-api`` (a no-op without it), and W3C ``traceparent``.

``span(name, ...)`` is a context manager every part wraps its outgoing calls
in (a unit of work, an origin fetch, a payment call). With opentelemetry-api
installed and a tracer provider set it starts a span on the ``commercekit``
tracer as the current span, records an exception that escapes it and sets an
error status; otherwise it costs one function call and returns a shared
no-op. Span names and attributes follow OpenTelemetry's semantic conventions (``db.system``,
``http.request.method``, ``server.address``) where they exist.

``traced(name, ...)`` is the decorator form, for a whole function whose span
attributes are known when it is decorated. Where opentelemetry-api cannot be
imported it returns the function itself, so a process without it pays nothing
per call; ``TRACING_AVAILABLE`` (decided once, when this module is imported)
lets a ``with span(...)`` site skip even the call in such a process.

``parse_traceparent`` / ``format_traceparent`` read and write the W3C Trace
Context header (version 00), and ``span(..., traceparent=header)`` continues a
trace that a front proxy started; ``current_traceparent()`` gives the header
to send on. ``routed_request_span`` is the front proxy's span around one
request it routes to a backend, yielding the header to forward.
"""

from __future__ import annotations

import functools
import importlib.util
import inspect
import re
from collections.abc import Awaitable, Callable, Iterator, Mapping
from contextlib import AbstractContextManager, contextmanager
from typing import Any, ParamSpec, Protocol, TypeVar, cast

import attrs

from commercekit.errors import InvalidInputError

__all__ = [
    "TRACING_AVAILABLE",
    "SpanHandle",
    "TraceContext",
    "current_span",
    "current_traceparent",
    "format_traceparent",
    "parse_traceparent",
    "refresh_tracing",
    "routed_request_span",
    "span",
    "traced",
]

P = ParamSpec("P")
R = TypeVar("R")

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


class _Noop:
    """The shared span when nothing records.

    ``__exit__`` is a builtin, which is not a descriptor, so the ``with`` statement
    calls it without a Python frame: ``"".format(exc_type, exc, tb)`` returns ``""``
    (false, so an exception leaving the block propagates), and ``ExitStack``'s
    ``__exit__(span, ...)`` gets the same answer. ``__enter__`` stays a method,
    since ``ExitStack`` calls it with the span as its argument. A span that records
    nothing then costs about what any no-op context manager costs.
    """

    __slots__ = ()
    __exit__ = "".format

    def __enter__(self) -> None:
        return None


_NOOP: AbstractContextManager[None] = cast("AbstractContextManager[None]", _Noop())

# Whether spans record is decided once and cached: without opentelemetry-api, never;
# with it, when a real tracer provider is set (the API's own provider records nothing).
# A provider set later is noticed at the next re-check: the first span call in a
# process, then every _RECHECK_EVERY span calls while none is set, or at once after
# refresh_tracing(). The check goes through the public trace.get_tracer_provider(),
# which costs microseconds (it reads the environment), so it stays off the per-call
# path; the countdown lives in a closure cell, the cheapest state CPython writes.
_RECHECK_EVERY = 256
_trace: Any = None  # the opentelemetry.trace module while a provider is set, else None
_tracer: Any = None  # the commercekit tracer while a provider is set, else None


def _api_importable() -> bool:
    """Whether ``opentelemetry.trace`` can be imported here, found without importing it.

    ``find_spec`` goes through ``sys.meta_path`` and ``sys.modules`` as an import
    would (a blocked or absent package is not found) and runs none of the API's
    code, which would load its context implementation through entry points.
    """
    try:
        return importlib.util.find_spec("opentelemetry.trace") is not None
    except (ImportError, ValueError):  # no parent package, or a None/odd sys.modules entry
        return False


TRACING_AVAILABLE: bool = _api_importable()
"""Whether opentelemetry-api can be imported in this process (decided at import).

False means no span ever records here: :func:`traced` returns functions
unchanged, and a ``with span(...)`` site may skip the span altogether with
``if TRACING_AVAILABLE:``. True means spans record once a tracer provider is
set; it says nothing about whether one is.
"""


@contextmanager
def _otel_span(
    trace: Any,
    tracer: Any,
    name: str,
    kind: str,
    attributes: Mapping[str, Any] | None,
    traceparent: str | None,
) -> Iterator[None]:
    if kind not in _KINDS:
        raise InvalidInputError(f"a span kind is one of {_KINDS}, got {kind!r}")
    parent = None
    remote = parse_traceparent(traceparent) if traceparent is not None else None
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
    span_kind = getattr(trace.SpanKind, kind.upper())
    with tracer.start_as_current_span(
        name, context=parent, kind=span_kind, attributes=dict(attributes or {})
    ):
        yield


class _SpanFunction(Protocol):
    def __call__(
        self,
        name: str,
        *,
        kind: str = "internal",
        attributes: Mapping[str, Any] | None = None,
        traceparent: str | None = None,
    ) -> AbstractContextManager[None]: ...


def _span_functions() -> tuple[_SpanFunction, Callable[[], bool]]:
    tracer: Any = None  # the commercekit tracer while a provider is set
    until_check = 0  # span calls left before the next look for a provider

    def refresh_tracing() -> bool:
        """Look again for a configured OpenTelemetry tracer provider; True if spans now record.

        :func:`span` and each :func:`traced` function notice a provider set after
        they first ran within a few hundred calls; call this right after
        ``trace.set_tracer_provider(...)`` to have every following span recorded.
        """
        global _trace, _tracer
        nonlocal tracer, until_check
        until_check = _RECHECK_EVERY
        try:
            from opentelemetry import trace
        except ImportError:
            _trace = _tracer = tracer = None
            until_check = 1 << 62  # not installed in this process: no need to look again
            return False
        if isinstance(trace.get_tracer_provider(), trace.ProxyTracerProvider):
            _trace = _tracer = tracer = None  # the API's placeholder: nothing would record
            return False
        _trace, tracer = trace, trace.get_tracer("commercekit")
        _tracer = tracer
        return True

    def span(
        name: str,
        *,
        kind: str = "internal",
        attributes: Mapping[str, Any] | None = None,
        traceparent: str | None = None,
    ) -> AbstractContextManager[None]:
        """A span named *name* around the block (no-op without a configured tracer provider).

        *kind* is ``internal``, ``server``, ``client``, ``producer`` or ``consumer``;
        *traceparent* makes the span a child of a remote parent (an incoming header).
        Without opentelemetry-api, or with no tracer provider set, it returns one
        shared no-op object: a unit of work pays about one function call for it.
        """
        nonlocal until_check
        if tracer is None:
            until_check -= 1
            if until_check > 0 or not refresh_tracing():
                return _NOOP
        return _otel_span(_trace, tracer, name, kind, attributes, traceparent)

    return span, refresh_tracing


span, refresh_tracing = _span_functions()


def traced(
    name: str, *, kind: str = "internal", attributes: Mapping[str, Any] | None = None
) -> Callable[[Callable[P, R]], Callable[P, R]]:
    """Decorate a function (sync or ``async def``) so each call runs in a span named *name*.

    The decorator form of :func:`span`, for a function that is the whole unit
    traced and whose *attributes* are known when it is decorated (they are
    copied then; attributes taken from the arguments need ``with span(...)``
    inside the function). *kind* is ``internal``, ``server``, ``client``,
    ``producer`` or ``consumer``; an exception leaving the function is recorded
    on the span, which gets an error status, and propagates unchanged.

    Where opentelemetry-api cannot be imported (:data:`TRACING_AVAILABLE` is
    False) the function itself is returned: calling it costs nothing more. With
    the API, a thin wrapper (``functools.wraps``: same name, docstring and
    signature) starts a span only while a tracer provider is set, noticing one
    set after decoration within a few hundred calls, or at once after
    :func:`refresh_tracing`. Generator functions are refused: a span around
    one would end when the generator is made, before any of its work.
    """
    if kind not in _KINDS:
        raise InvalidInputError(f"a span kind is one of {_KINDS}, got {kind!r}")
    frozen = dict(attributes or {})

    def decorate(fn: Callable[P, R]) -> Callable[P, R]:
        if not callable(fn):
            raise InvalidInputError(f"traced({name!r}) decorates a function, got {fn!r:.100}")
        if inspect.isgeneratorfunction(fn) or inspect.isasyncgenfunction(fn):
            raise InvalidInputError(
                f"traced({name!r}) cannot wrap the generator function {fn!r:.100}: its span "
                "would end before the generator runs; use `with span(...)` inside it"
            )
        if not TRACING_AVAILABLE:
            return fn
        if inspect.iscoroutinefunction(fn):
            return cast("Callable[P, R]", _traced_async(fn, name, kind, frozen))
        return _traced_sync(fn, name, kind, frozen)

    return decorate


def _traced_sync(
    fn: Callable[P, R], name: str, kind: str, attributes: dict[str, Any]
) -> Callable[P, R]:
    until_check = 0  # calls left before this function looks for a provider again

    @functools.wraps(fn)
    def call(*args: P.args, **kwargs: P.kwargs) -> R:
        nonlocal until_check
        tracer = _tracer
        if tracer is None:
            until_check -= 1
            if until_check > 0:
                return fn(*args, **kwargs)
            until_check = _RECHECK_EVERY
            if not refresh_tracing():
                return fn(*args, **kwargs)
            tracer = _tracer
        with tracer.start_as_current_span(
            name, kind=getattr(_trace.SpanKind, kind.upper()), attributes=dict(attributes)
        ):
            return fn(*args, **kwargs)

    return call


def _traced_async(
    fn: Callable[P, Awaitable[Any]], name: str, kind: str, attributes: dict[str, Any]
) -> Callable[P, Awaitable[Any]]:
    until_check = 0  # calls left before this function looks for a provider again

    @functools.wraps(fn)
    async def call(*args: P.args, **kwargs: P.kwargs) -> Any:
        nonlocal until_check
        tracer = _tracer
        if tracer is None:
            until_check -= 1
            if until_check > 0:
                return await fn(*args, **kwargs)
            until_check = _RECHECK_EVERY
            if not refresh_tracing():
                return await fn(*args, **kwargs)
            tracer = _tracer
        with tracer.start_as_current_span(
            name, kind=getattr(_trace.SpanKind, kind.upper()), attributes=dict(attributes)
        ):
            return await fn(*args, **kwargs)

    return call


@contextmanager
def routed_request_span(
    method: str,
    path: str,
    *,
    node: str,
    address: str | None = None,
    port: int | None = None,
    traceparent: str | None = None,
) -> Iterator[str | None]:
    """A ``balancer_route`` client span for one request a front proxy sends to *node*.

    Yields the ``traceparent`` header to send to the backend: the new span's
    when spans record (the backend's spans become its children), else the
    incoming *traceparent* unchanged when it is valid (a proxy that does not
    trace passes the trace on, as W3C Trace Context asks), else None. *path*
    goes into ``url.path``; pass it without the query, which may carry secrets.
    """
    attributes: dict[str, Any] = {
        "http.request.method": method,
        "url.path": path,
        "commercekit.balancer.node": node,
    }
    if address is not None:
        attributes["server.address"] = address
    if port is not None:
        attributes["server.port"] = port
    with span("balancer_route", kind="client", attributes=attributes, traceparent=traceparent):
        if _trace is not None:
            yield current_traceparent()
        else:
            valid = traceparent is not None and parse_traceparent(traceparent) is not None
            yield traceparent.strip() if valid and traceparent is not None else None


class SpanHandle(Protocol):
    """What :func:`current_span` gives: a recording span that takes more attributes."""

    def set_attributes(self, attributes: Mapping[str, Any]) -> None:
        """Add or replace attributes (OpenTelemetry's ``Span.set_attributes``)."""
        ...


def current_span() -> SpanHandle | None:
    """The current span when it records, else None (spans off, none current, not sampled).

    Taken right after a ``with span(...)`` block is entered, it is that block's span:
    keep it to set the attributes known only later (the node a unit of work was
    given), also from inside nested spans. Costs one global read when nothing records.
    """
    trace = _trace
    if trace is None:
        return None
    current = trace.get_current_span()
    return cast("SpanHandle", current) if current.is_recording() else None


def current_traceparent() -> str | None:
    """The ``traceparent`` header of the current span, or None when there is none."""
    trace = _trace
    if trace is None:  # no provider set (as far as span() has seen): no span is current
        return None
    ctx = trace.get_current_span().get_span_context()
    if not ctx.is_valid:
        return None
    return format_traceparent(TraceContext(ctx.trace_id, ctx.span_id, bool(ctx.trace_flags & 1)))
