"""``JetStreamLog``: the event log on NATS JetStream with a durable pull consumer.

Publishing sets ``Nats-Msg-Id`` to the event id, so JetStream drops a second
publish of the same event inside the stream's duplicate window (a relay that
crashed between publishing and marking sent). Consuming fetches from a
durable pull consumer with explicit acknowledgement; a message not acked
within *ack_wait_s* is delivered again. nats-py is asyncio-only: the log runs
its own event loop on one background thread and offers a blocking API. Needs
the ``[nats]`` extra.

The connection belongs to that loop, never to the caller's: the blocking API
serves sync code and code inside consecutive ``asyncio.run()`` calls alike
(inside a running loop it blocks that loop for the round trip). ``close()``
closes the connection and ends the thread; so does the log being dropped (or
the interpreter exiting), which used to keep both for the life of the
process: the connection's error callback held the log.
"""

# Longer than 400 lines because the log's loop thread, the refusals nats-py reports only to a
# callback, and the consume path's bookkeeping (a lost durable consumer, the lag kept from
# the fetched messages) share one connection's state: split, each part would reach into it.

from __future__ import annotations

import asyncio
import concurrent.futures
import contextlib
import logging
import re
import threading
import time
import weakref
from collections.abc import Awaitable, Callable, Coroutine, Sequence
from typing import Any, TypeVar

from commercekit._extras import require
from commercekit.errors import ConfigurationError, InvalidInputError, UnavailableError

from ._log import Delivery, LogRecord, _limits

__all__ = ["JetStreamLog"]

T = TypeVar("T")

_logger = logging.getLogger("commercekit.analytics")
_POLL_S = 0.05  # how often a waiting call looks for a refusal the error callback saw
_LOOK_EVERY_S = 5.0  # how often an idle log looks its durable consumer up


def _nats() -> Any:
    require("nats.js.api", extra="nats", feature="JetStreamLog")
    import nats
    import nats.aio.msg

    return nats


class JetStreamLog:
    """An event log on JetStream stream *stream* (subject *subject*), durable consumer *durable*.

    The stream is created if missing (file storage, *duplicate_window_s* for
    de-duplication by event id). Failures to reach the server raise
    :class:`~commercekit.errors.UnavailableError`; the client reconnects by itself.
    What waiting cannot fix raises :class:`~commercekit.errors.ConfigurationError`,
    saying what to fix: a wrong user, password or token (an authorization
    violation), a user not allowed the JetStream API or the subject (a
    permissions violation), a stream the server refuses (its subject taken by
    another stream). Messages name the URL without its password or token.
    """

    def __init__(
        self,
        url: str = "nats://127.0.0.1:4222",
        *,
        stream: str,
        subject: str | None = None,
        durable: str = "analytics",
        ack_wait_s: float = 30.0,
        duplicate_window_s: float = 600.0,
        timeout_s: float = 10.0,
    ) -> None:
        if not stream or not durable:
            raise InvalidInputError("a JetStream stream and a durable consumer name are needed")
        self._nats = _nats()
        self.url = url
        self.stream = stream
        self.subject = subject or f"{stream}.events"
        self.durable = durable
        self._ack_wait_s = ack_wait_s
        self._dup_window_s = duplicate_window_s
        self._timeout_s = timeout_s
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(
            target=self._loop.run_forever, name=f"commercekit-nats-{stream}", daemon=True
        )
        self._thread.start()
        self._nc: Any = None
        self._js: Any = None
        self._sub: Any = None
        self._stream_ready = False
        self._seen_at: float | None = None  # when the durable consumer was last found there
        self._unread: int | None = None  # after the last fetch (None: ask the server)
        self._unacked: set[int] = set()  # stream sequences handed out, not acknowledged
        self._spare: list[Any] = []  # fetched past what a read asked for: the next read's first
        self._refusal: Exception | None = None  # what the error callback saw in this call
        self._held: list[Any] = []  # the connection, for the finalizer (which must not hold self)
        self._ender = weakref.finalize(self, _shut_down, self._loop, self._thread, self._held)

    def _run(self, coro: Coroutine[Any, Any, T], timeout_s: float | None = None) -> T:
        """Run *coro* on the loop thread; its errors, or a refusal seen meanwhile, as ours.

        nats-py hands an authorization or permissions violation to the error
        callback (and retries, or lets the request time out): the call is
        polled so that it ends with a ConfigurationError as soon as one is seen.
        """
        self._refusal = None
        future = asyncio.run_coroutine_threadsafe(coro, self._loop)
        deadline = time.monotonic() + (timeout_s or self._timeout_s) + 5
        while not future.done():
            concurrent.futures.wait([future], timeout=_POLL_S)
            refusal = self._seen_refusal()  # set by the error callback on the loop thread
            if refusal is not None and not future.done():
                future.cancel()
                raise self._refused(refusal) from refusal
            if time.monotonic() >= deadline and not future.done():
                future.cancel()
                raise UnavailableError(f"NATS at {self._where} did not answer in time")
        try:
            return future.result()
        except (OSError, TimeoutError) as exc:
            refusal = self._seen_refusal()
            if refusal is not None:
                raise self._refused(refusal) from exc
            raise UnavailableError(f"NATS at {self._where} did not answer: {exc!r}") from exc
        except self._nats.js.errors.BadRequestError as exc:
            raise ConfigurationError(
                f"JetStream at {self._where} refused stream {self.stream!r} or its consumer "
                f"{self.durable!r} ({exc}); another stream may hold subject {self.subject!r}, "
                "or the durable consumer exists with other settings: fix the names or settings"
            ) from exc
        except self._nats.errors.Error as exc:
            if _refusal_kind(exc):
                raise self._refused(exc) from exc
            raise UnavailableError(f"NATS at {self._where} failed: {exc!r}") from exc

    def _seen_refusal(self) -> Exception | None:
        return self._refusal

    @property
    def _where(self) -> str:
        return _redacted(self.url)

    def _refused(self, exc: BaseException) -> ConfigurationError:
        if _refusal_kind(exc) == "permissions":
            return ConfigurationError(
                f"the NATS user at {self._where} is not allowed a subject JetStreamLog needs "
                f"({exc}); allow it to publish to $JS.API.> and {self.subject!r}, to "
                "subscribe to _INBOX.>, and to publish acks to $JS.ACK.>"
            )
        return ConfigurationError(
            f"NATS at {self._where} refused the credentials ({exc}); check the user and "
            "password (or token) in the URL (nats://user:password@host:port)"
        )

    async def _on_error(self, exc: Exception) -> None:
        """nats-py's error callback: keep a refusal for the waiting call, log the rest."""
        if _refusal_kind(exc):
            self._refusal = exc
        _logger.debug("NATS at %s: %r", self._where, exc)

    async def _connect(self) -> Any:
        if self._nc is None:
            self._nc = await self._nats.connect(
                self.url,
                connect_timeout=3,
                max_reconnect_attempts=-1,
                reconnect_time_wait=0.2,
                allow_reconnect=True,
                error_cb=_weak_error_cb(weakref.ref(self)),  # the loop must not keep the log
            )
            self._held[:] = [self._nc]
            self._js = self._nc.jetstream(timeout=self._timeout_s)
        if not self._stream_ready:
            api = self._nats.js.api
            config = api.StreamConfig(
                name=self.stream,
                subjects=[self.subject],
                storage=api.StorageType.FILE,
                duplicate_window=self._dup_window_s,
            )
            try:
                await self._js.add_stream(config)
            except self._nats.js.errors.BadRequestError as refused:
                try:
                    await self._js.update_stream(config)
                except self._nats.js.errors.NotFoundError:
                    raise refused from None  # not there to update: the stream was refused
            self._stream_ready = True
        return self._js

    def publish(self, records: Sequence[LogRecord]) -> None:
        """Publish *records* and wait for every JetStream acknowledgement."""
        if records:
            self._run(self._publish(records), self._timeout_s * 2)

    async def _publish(self, records: Sequence[LogRecord]) -> None:
        js = await self._connect()
        try:
            await self._publish_to(js, records)
        except self._nats.js.errors.NoStreamResponseError as exc:
            await self._lost()
            raise UnavailableError(
                f"JetStream at {self._where} has no stream for {self.subject!r} (stream "
                f"{self.stream!r} deleted, or a server that lost its store); the next call "
                "makes it again"
            ) from exc

    async def _publish_to(self, js: Any, records: Sequence[LogRecord]) -> None:
        futures = []
        for r in records:
            try:
                futures.append(
                    await js.publish_async(
                        self.subject,
                        r.body,
                        headers={"Nats-Msg-Id": r.event_id},
                        wait_stall=self._timeout_s,
                    )
                )
            except self._nats.errors.MaxPayloadError as exc:
                # Never taken, however often it is sent: not an outage to wait out.
                raise InvalidInputError(
                    f"event {r.event_id!r} is {len(r.body)} bytes, more than NATS at "
                    f"{self._where} takes in one message (max_payload "
                    f"{getattr(self._nc, 'max_payload', '?')}); make the event smaller or "
                    "raise the server's max_payload"
                ) from exc
        await asyncio.wait_for(asyncio.gather(*futures), self._timeout_s)

    def consume(self, max_messages: int = 500, timeout_s: float = 1.0) -> list[Delivery]:
        """Fetch up to *max_messages* from the durable consumer (empty after *timeout_s*)."""
        _limits(max_messages, timeout_s)
        return self._run(self._consume(max_messages, timeout_s), timeout_s)

    async def _consume(self, max_messages: int, timeout_s: float) -> list[Delivery]:
        js = await self._connect()
        if self._sub is None:
            api = self._nats.js.api
            self._sub = await js.pull_subscribe(
                self.subject,
                durable=self.durable,
                stream=self.stream,
                config=api.ConsumerConfig(
                    ack_policy=api.AckPolicy.EXPLICIT,
                    ack_wait=self._ack_wait_s,
                    max_ack_pending=-1,
                ),
            )
        if self._spare:
            msgs, self._spare = self._spare[:max_messages], self._spare[max_messages:]
            return self._handed(msgs)
        try:
            msgs = await self._sub.fetch(max_messages, timeout=max(timeout_s, 0.05))
        except TimeoutError:
            msgs = []  # nats-py also answers an empty fetch with an empty list
        if not msgs:
            self._unread = None
            # A durable consumer (or its stream) that is gone fetches nothing, for ever: a
            # look-up tells it from an empty log, at the first empty fetch after messages
            # and then every _LOOK_EVERY_S while the log stays empty (not every fetch).
            seen = self._seen_at
            if seen is None or time.monotonic() - seen >= _LOOK_EVERY_S:
                try:
                    ci = await js.consumer_info(self.stream, self.durable)
                except self._nats.js.errors.NotFoundError as exc:
                    await self._lost()
                    raise UnavailableError(
                        f"JetStream at {self._where} lost stream {self.stream!r} or its durable "
                        f"consumer {self.durable!r}; the next read makes them again"
                    ) from exc
                self._seen(ci)
            return []
        self._seen_at = None  # the next empty fetch looks the consumer up again
        self._unread = int(msgs[-1].metadata.num_pending or 0)
        # nats-py's fetch hands out every message its queue holds, answers to earlier
        # pulls that timed out included: past max_messages they wait for the next read.
        msgs, self._spare = msgs[:max_messages], msgs[max_messages:]
        return self._handed(msgs)

    def _handed(self, msgs: Sequence[Any]) -> list[Delivery]:
        """*msgs* as deliveries, noted as handed out and not acknowledged."""
        out = []
        for msg in msgs:
            meta = msg.metadata
            self._unacked.add(int(meta.sequence.stream))
            headers = msg.headers or {}
            out.append(
                Delivery(
                    str(meta.sequence.stream),
                    bytes(msg.data),
                    headers.get("Nats-Msg-Id"),
                    int(meta.num_delivered or 1),
                    msg,
                )
            )
        return out

    def _seen(self, ci: Any) -> int:
        """The durable consumer was found (*ci*, its info): keep when, and what it had left.

        Returns its pending count (unread plus in flight, this log's and others').
        """
        self._seen_at = time.monotonic()
        left = int(ci.num_pending or 0) + int(ci.num_ack_pending or 0)
        self._unread = max(0, left - len(self._unacked) - len(self._spare))  # but what it holds
        return left

    async def _lost(self) -> None:
        """The stream or the durable consumer is gone: the next call makes them again."""
        self._stream_ready = False
        self._seen_at, self._unread = None, None
        self._unacked.clear()
        self._spare.clear()  # the lost consumer's: the server delivers them again
        sub, self._sub = self._sub, None
        if sub is not None:
            with contextlib.suppress(Exception):  # its consumer is gone already
                await sub.unsubscribe()

    def acknowledge(self, deliveries: Sequence[Delivery]) -> None:
        """Acknowledge each delivery and flush, so the server has the acks on return.

        A delivery this log did not hand out, or one acknowledged already, is ignored.
        """
        mine = [d.native for d in deliveries if isinstance(d.native, self._nats.aio.msg.Msg)]
        if mine:
            self._run(self._ack(mine))

    async def _ack(self, msgs: Sequence[Any]) -> None:
        for msg in msgs:
            with contextlib.suppress(self._nats.errors.MsgAlreadyAckdError):
                await msg.ack()
        await self._nc.flush(timeout=self._timeout_s)
        for msg in msgs:
            self._unacked.discard(int(msg.metadata.sequence.stream))

    def pending(self) -> int:
        """Messages the durable consumer has not had acknowledged (unread plus in flight)."""

        async def info() -> int:
            js = await self._connect()
            return self._seen(await js.consumer_info(self.stream, self.durable))

        return self._run(info())

    def lag(self) -> int:
        """:meth:`pending` as this log last saw it, without a round trip where it can.

        After a fetch that returned messages: those the durable consumer had
        left after the last of them (their metadata says so), plus those this
        log handed out and has not had acknowledged; messages another
        consumer of the same durable holds in flight then are not counted
        (the consumer's lag gauge after a batch). After an empty fetch (or
        none yet): :meth:`pending`, asked of the server.
        """
        if self._unread is None:
            return self.pending()
        return self._unread + len(self._spare) + len(self._unacked)

    def stream_messages(self) -> int:
        """Messages stored in the stream (a republished event id counts once)."""

        async def info() -> int:
            js = await self._connect()
            si = await js.stream_info(self.stream)
            return int(si.state.messages)

        return self._run(info())

    def delete_stream(self) -> None:
        """Delete the stream (and its consumers): for tests and teardown."""

        async def delete() -> None:
            js = await self._connect()
            await js.delete_stream(self.stream)

        self._run(delete())

    def close(self) -> None:
        """Close the connection and stop the loop thread (a second call does nothing)."""
        self._ender()


def _weak_error_cb(log: weakref.ref[JetStreamLog]) -> Callable[[Exception], Awaitable[None]]:
    """The connection's error callback, holding the log weakly (a dropped log is collected)."""

    async def on_error(exc: Exception) -> None:
        held = log()
        if held is not None:
            await held._on_error(exc)

    return on_error


def _shut_down(loop: asyncio.AbstractEventLoop, thread: threading.Thread, held: list[Any]) -> None:
    """Close the connection in *held* on *loop*, stop the loop and end *thread* (once).

    Run by ``close()``, or when the log is collected or the interpreter exits.
    """
    if loop.is_closed():
        return
    if threading.current_thread() is thread:  # collected on the loop thread itself: no waiting
        loop.create_task(_close_then_stop(held, loop))
        return
    if held:
        closing = asyncio.run_coroutine_threadsafe(held[0].close(), loop)
        with contextlib.suppress(Exception):  # closing a broken connection
            closing.result(5)
    loop.call_soon_threadsafe(loop.stop)
    thread.join(5)
    if not loop.is_running():
        loop.close()


async def _close_then_stop(held: list[Any], loop: asyncio.AbstractEventLoop) -> None:
    try:
        if held:
            with contextlib.suppress(Exception):
                await held[0].close()
    finally:
        loop.stop()


def _refusal_kind(exc: BaseException) -> str | None:
    """ "credentials" or "permissions" for a NATS refusal no retry fixes, else None."""
    text = str(exc).lower()
    if "permissions violation" in text:
        return "permissions"
    if "authorization violation" in text or "authentication" in text:
        return "credentials"
    if type(exc).__name__ == "AuthorizationError":
        return "credentials"
    return None


def _redacted(url: str) -> str:
    """*url* without its password or token (``nats://user:***@host``)."""

    def hide(m: re.Match[str]) -> str:
        user, colon, _secret = m.group(1).partition(":")
        return f"//{user}:***@" if colon else "//***@"

    return re.sub(r"//([^/@]*)@", hide, url)
