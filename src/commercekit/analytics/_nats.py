"""``JetStreamLog``: the event log on NATS JetStream with a durable pull consumer.

Publishing sets ``Nats-Msg-Id`` to the event id, so JetStream drops a second
publish of the same event inside the stream's duplicate window (a relay that
crashed between publishing and marking sent). Consuming fetches from a
durable pull consumer with explicit acknowledgement; a message not acked
within *ack_wait_s* is delivered again. nats-py is asyncio-only: the log runs
its own event loop on one background thread and offers a blocking API. Needs
the ``[nats]`` extra.
"""

from __future__ import annotations

import asyncio
import contextlib
import threading
from collections.abc import Coroutine, Sequence
from typing import Any, TypeVar

from commercekit._extras import require
from commercekit.errors import InvalidInputError, UnavailableError

from ._log import Delivery, LogRecord, _limits

__all__ = ["JetStreamLog"]

T = TypeVar("T")


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

    def _run(self, coro: Coroutine[Any, Any, T], timeout_s: float | None = None) -> T:
        future = asyncio.run_coroutine_threadsafe(coro, self._loop)
        try:
            return future.result(timeout=(timeout_s or self._timeout_s) + 5)
        except (OSError, TimeoutError) as exc:
            future.cancel()
            raise UnavailableError(f"NATS at {self.url} did not answer: {exc!r}") from exc
        except self._nats.errors.Error as exc:
            raise UnavailableError(f"NATS at {self.url} failed: {exc!r}") from exc

    async def _connect(self) -> Any:
        if self._nc is None:
            self._nc = await self._nats.connect(
                self.url,
                connect_timeout=3,
                max_reconnect_attempts=-1,
                reconnect_time_wait=0.2,
                allow_reconnect=True,
            )
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
            except self._nats.js.errors.BadRequestError:
                await self._js.update_stream(config)
            self._stream_ready = True
        return self._js

    def publish(self, records: Sequence[LogRecord]) -> None:
        """Publish *records* and wait for every JetStream acknowledgement."""
        if records:
            self._run(self._publish(records), self._timeout_s * 2)

    async def _publish(self, records: Sequence[LogRecord]) -> None:
        js = await self._connect()
        futures = [
            await js.publish_async(
                self.subject,
                r.body,
                headers={"Nats-Msg-Id": r.event_id},
                wait_stall=self._timeout_s,
            )
            for r in records
        ]
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
        try:
            msgs = await self._sub.fetch(max_messages, timeout=max(timeout_s, 0.05))
        except TimeoutError:
            return []
        out = []
        for msg in msgs:
            meta = msg.metadata
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

    def pending(self) -> int:
        """Messages the durable consumer has not had acknowledged (unread plus in flight)."""

        async def info() -> int:
            js = await self._connect()
            ci = await js.consumer_info(self.stream, self.durable)
            return int(ci.num_pending or 0) + int(ci.num_ack_pending or 0)

        return self._run(info())

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
        if self._loop.is_closed():
            return
        if self._nc is not None:
            with contextlib.suppress(Exception):  # closing a broken connection
                self._run(self._nc.close(), 5)
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(5)
        if not self._loop.is_running():
            self._loop.close()
