"""``RedisStreamsLog``: the event log on a Redis stream with a consumer group.

Publishing is ``XADD`` (pipelined); consuming is ``XREADGROUP``: first this
consumer's own pending entries (those it read but never acknowledged before a
crash), then entries of dead consumers idle longer than *claim_idle_s*
(``XAUTOCLAIM``), then new ones (``>``). ``XACK`` acknowledges. Needs the
``[redis]`` extra.
"""

from __future__ import annotations

import contextlib
import re
import socket
from collections.abc import Sequence
from typing import Any

from commercekit._extras import require
from commercekit.errors import ConfigurationError, InvalidInputError, UnavailableError

from ._log import Delivery, LogRecord, _limits

__all__ = ["RedisStreamsLog"]

_ENTRY_ID = re.compile(r"[0-9]+(-[0-9]+)?")


def _redis() -> Any:
    return require("redis", extra="redis", feature="RedisStreamsLog")


class RedisStreamsLog:
    """An event log on Redis Streams for consumer group *group*, as consumer *consumer*.

    *url* is a ``redis://`` URL (or pass *client*, a ``redis.Redis``). *maxlen*
    caps the stream approximately (``XADD MAXLEN ~``); None keeps everything.
    Connection failures raise :class:`~commercekit.errors.UnavailableError`,
    and so do Redis' refusals that pass (a replica after a fail-over, a
    server loading its data) and a stream or group that is gone (the next
    read makes the group again, from the stream's start: the store drops
    what it has applied already). What waiting cannot fix raises
    :class:`~commercekit.errors.ConfigurationError`, saying what to fix: a
    key that is not a stream, a wrong password or user, a user without
    the permission for a command or the key (``NOPERM``), and a Redis that
    does not know a command the log needs (``XAUTOCLAIM`` needs 6.2).
    """

    def __init__(
        self,
        url: str = "redis://127.0.0.1:6379/0",
        *,
        stream: str,
        group: str = "analytics",
        consumer: str | None = None,
        claim_idle_s: float = 30.0,
        maxlen: int | None = None,
        client: Any = None,
        client_name: str | None = None,
    ) -> None:
        if not stream or not group:
            raise InvalidInputError("a Redis stream and a group name are needed")
        redis = _redis()
        self.stream = stream
        self.group = group
        self.consumer = consumer or f"{socket.gethostname()}-{id(self):x}"
        self._claim_idle_ms = max(1, int(claim_idle_s * 1000))
        self._maxlen = maxlen
        self._client = client or redis.Redis.from_url(
            url, socket_timeout=10, socket_connect_timeout=3, client_name=client_name
        )
        errors = redis.exceptions
        # By type: redis-py strips the NOPERM / WRONGPASS / NOAUTH prefix from the text.
        self._denied = tuple(
            getattr(errors, name)
            for name in ("AuthenticationError", "AuthorizationError", "NoPermissionError")
            if hasattr(errors, name)
        )
        self._errors = (redis.ConnectionError, redis.TimeoutError)
        self._response_error = redis.ResponseError
        self._group_ready = False
        self._own_pending = True  # after a restart, re-read what this consumer never acked
        self._own_cursor: Any = "0"  # each of them once: after the last one handed out
        self._claim_cursor = "0-0"

    def _call(self, fn: Any, *args: Any, **kwargs: Any) -> Any:
        """Run one command; Redis' errors become commercekit's (the consumer loop knows those)."""
        try:
            return fn(*args, **kwargs)
        except self._denied as exc:  # before ConnectionError: two of them subclass it
            raise self._refused(exc) from exc
        except self._errors as exc:
            raise UnavailableError(
                f"Redis is unreachable for stream {self.stream!r}: {exc}"
            ) from exc
        except self._response_error as exc:
            # A pipeline's error names the command with its arguments (event bodies):
            # only Redis' own reply is kept.
            text = str(exc).rpartition("caused error: ")[2][:300]
            if text.startswith("BUSYGROUP"):
                raise  # the group exists already: _ensure_group takes it as done
            if text.startswith("NOGROUP"):
                # The stream or its group is gone (a Redis restarted without persistence,
                # a deleted key): made again, from the stream's start, by the next call.
                self._group_ready = False
                self._own_pending = True
                self._own_cursor = "0"
                self._claim_cursor = "0-0"
                raise UnavailableError(
                    f"Redis lost stream {self.stream!r} or its group {self.group!r} ({text}); "
                    "the next read makes the group again"
                ) from exc
            if "unknown command" in text.lower():
                raise ConfigurationError(
                    f"Redis does not know a command RedisStreamsLog needs on {self.stream!r} "
                    f"({text}): it needs Redis 6.2 or later (XAUTOCLAIM); upgrade Redis, or "
                    "enable the command if it was renamed or disabled (rename-command)"
                ) from exc
            if text.startswith("WRONGTYPE"):
                raise ConfigurationError(
                    f"Redis key {self.stream!r} holds a value that is not a stream; "
                    "give the log another stream name"
                ) from exc
            # READONLY (a replica after a fail-over), LOADING, MASTERDOWN, BUSY, ...
            raise UnavailableError(f"Redis refused a command on {self.stream!r}: {text}") from exc

    def _refused(self, exc: Exception) -> ConfigurationError:
        """A wrong password or a user without the permissions the log needs: fix the set-up."""
        text = str(exc).rpartition("caused error: ")[2][:300]
        if isinstance(exc, self._response_error):  # NoPermissionError: NOPERM
            return ConfigurationError(
                f"the Redis user has no permission for a command or key RedisStreamsLog needs "
                f"on stream {self.stream!r} ({text}); grant it, for example ACL SETUSER <user> "
                f"~{self.stream} +xadd +xreadgroup +xautoclaim +xack +xgroup|create "
                "+xinfo|groups"
            )
        return ConfigurationError(
            f"Redis refused the credentials for stream {self.stream!r} ({text}); check the user "
            "name and password in the URL (redis://user:password@host:port/db) or the "
            "client's settings, and that the user is enabled (ACL SETUSER <user> on)"
        )

    def _ensure_group(self) -> None:
        if self._group_ready:
            return
        # BUSYGROUP, the one refusal _call lets through: the group exists already.
        with contextlib.suppress(self._response_error):
            self._call(self._client.xgroup_create, self.stream, self.group, id="0", mkstream=True)
        self._group_ready = True

    def publish(self, records: Sequence[LogRecord]) -> None:
        """``XADD`` each record (one pipeline round trip)."""
        if not records:
            return
        pipe = self._client.pipeline(transaction=False)
        for r in records:
            fields = {"event_id": r.event_id, "body": r.body}
            if r.key is not None:
                fields["key"] = r.key
            if self._maxlen is None:
                pipe.xadd(self.stream, fields)
            else:
                pipe.xadd(self.stream, fields, maxlen=self._maxlen, approximate=True)
        self._call(pipe.execute)

    @staticmethod
    def _deliveries(entries: Any, deliveries: int) -> list[Delivery]:
        """Entries as deliveries; the entry id's bytes stay in ``native`` for ``XACK``."""
        out = []
        for entry_id, fields in entries:
            if fields is None:  # deleted from the stream while pending
                continue
            ident = entry_id.decode() if type(entry_id) is bytes else str(entry_id)
            body = fields.get(b"body", b"")
            event_id = fields.get(b"event_id")
            out.append(
                Delivery(
                    ident,
                    body if type(body) is bytes else str(body).encode(),
                    # Another publisher's id may be any bytes: never an error that stops
                    # the consumer (the store parks what is not an event).
                    event_id.decode(errors="replace") if type(event_id) is bytes else None,
                    deliveries,
                    entry_id,
                )
            )
        return out

    def consume(self, max_messages: int = 500, timeout_s: float = 1.0) -> list[Delivery]:
        """Own pending entries first, then claimed ones of dead consumers, then new ones."""
        _limits(max_messages, timeout_s)
        self._ensure_group()
        client = self._client
        if self._own_pending:
            got = self._call(
                client.xreadgroup,
                self.group,
                self.consumer,
                {self.stream: self._own_cursor},
                count=max_messages,
            )
            entries = got[0][1] if got else []
            if entries:
                # Handed out once: the caller holds them (one it drops comes again after
                # claim_idle_s, through XAUTOCLAIM), and the next read goes on to new ones.
                self._own_cursor = entries[-1][0]
                own = self._deliveries(entries, 2)
                if own:
                    return own
            else:
                self._own_pending = False
        claimed = self._call(
            client.xautoclaim,
            self.stream,
            self.group,
            self.consumer,
            self._claim_idle_ms,
            start_id=self._claim_cursor,
            count=max_messages,
        )
        self._claim_cursor = claimed[0].decode() if isinstance(claimed[0], bytes) else claimed[0]
        taken = self._deliveries(claimed[1], 2)
        if taken:
            return taken
        got = self._call(
            client.xreadgroup,
            self.group,
            self.consumer,
            {self.stream: ">"},
            count=max_messages,
            block=max(1, int(timeout_s * 1000)) if timeout_s > 0 else None,
        )
        return self._deliveries(got[0][1] if got else [], 1)

    def acknowledge(self, deliveries: Sequence[Delivery]) -> None:
        """``XACK`` the deliveries (one that is no stream entry id is ignored, as XACK ignores
        an id that is not pending)."""
        ids = [
            d.native if type(d.native) is bytes else d.handle
            for d in deliveries
            if type(d.native) is bytes or _ENTRY_ID.fullmatch(d.handle)
        ]
        if ids:
            self._call(self._client.xack, self.stream, self.group, *ids)

    def lag(self) -> int:
        """Entries of the stream not yet acknowledged by the group (pending plus unread)."""
        self._ensure_group()
        groups = self._call(self._client.xinfo_groups, self.stream)
        for g in groups:
            name = g.get("name")
            if (name.decode() if isinstance(name, bytes) else name) == self.group:
                pending = int(g.get("pending") or 0)
                lag = g.get("lag")
                return pending + int(lag or 0)
        return 0

    def close(self) -> None:
        """Close the connection pool."""
        self._client.close()
