"""``open_log``: an :class:`EventLog` from a URL (for the command line and configuration).

* ``redis://host:port/db?stream=S&group=G&consumer=C&claim_idle_s=30``
* ``nats://host:port?stream=S&subject=X&durable=D&ack_wait_s=30``
* ``jsonl:///path/to/events.jsonl?group=G``
* ``sqlite:///path.db?group=G`` (or any SQLAlchemy URL prefixed with ``sql+``)
"""

from __future__ import annotations

from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

from commercekit.errors import InvalidInputError

from ._jsonl import JsonLinesLog
from ._log import EventLog
from ._sql_table import SqlEventLog

__all__ = ["open_log"]


def open_log(url: str, *, consumer: str | None = None) -> EventLog:
    """Open the event log *url* names; *consumer* names this process in its group."""
    parts = urlsplit(url)
    query = dict(parse_qsl(parts.query))
    base = urlunsplit((parts.scheme, parts.netloc, parts.path, "", ""))
    scheme = parts.scheme
    try:
        if scheme in ("redis", "rediss"):
            from ._redis import RedisStreamsLog

            return RedisStreamsLog(
                base,
                stream=query["stream"],
                group=query.get("group", "analytics"),
                consumer=consumer or query.get("consumer"),
                claim_idle_s=float(query.get("claim_idle_s", 30)),
                client_name=query.get("client_name"),
            )
        if scheme in ("nats", "tls"):
            from ._nats import JetStreamLog

            return JetStreamLog(
                base,
                stream=query["stream"],
                subject=query.get("subject"),
                durable=query.get("durable", "analytics"),
                ack_wait_s=float(query.get("ack_wait_s", 30)),
            )
        if scheme == "jsonl":  # jsonl:///abs/path or jsonl://relative/path
            return JsonLinesLog(parts.netloc + parts.path, group=query.get("group", "analytics"))
        if scheme == "sqlite" or scheme.startswith("sql+"):
            from commercekit.repository import engine_from_url

            # The URL as written, less ``group`` (urlunsplit would fold the empty host of
            # sqlite:////abs/path into sqlite://abs/path); the driver's own options stay.
            target = url.split("?", 1)[0].removeprefix("sql+")
            driver = [(k, v) for k, v in parse_qsl(parts.query) if k != "group"]
            if driver:
                target += "?" + urlencode(driver)
            log = SqlEventLog(engine_from_url(target), group=query.get("group", "analytics"))
            log.create()
            return log
    except KeyError as exc:
        raise InvalidInputError(f"the event log URL {url!r} needs ?{exc.args[0]}=...") from exc
    except ValueError as exc:
        raise InvalidInputError(f"the event log URL {url!r} has a bad setting: {exc}") from exc
    raise InvalidInputError(
        f"unknown event log URL scheme {scheme!r}: use redis://, nats://, jsonl:// or sqlite://"
    )
