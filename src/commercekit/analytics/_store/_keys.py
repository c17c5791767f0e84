"""How the store keys and writes what it is given, in values every engine stores.

A valid event is keyed by its id; a message that is no valid event by its log's
id, digested when no engine could store it as it is. Days and weeks are UTC;
reads and writes go in chunks of a bounded number of ids.
"""

from __future__ import annotations

import datetime as dt
import functools
import hashlib
from collections.abc import Iterator, Sequence
from typing import Any

from commercekit.analytics._logs._log import Delivery

_CHUNK = 1000
_ID = 64  # the processed table's key (a valid event's id is at most this long)


def _stored_key(text: str) -> str:
    """*text* as a key every engine stores: at most 64 characters, no NUL, valid UTF-8.

    A valid event's id is such a key already. A message that is no valid event is
    keyed by its log's id (any length, any text a publisher put there): a longer or
    unstorable one becomes a digest of itself, so it stays unique.
    """
    if len(text) <= _ID and "\x00" not in text:
        if text.isascii():  # a UUID: the consumer's path
            return text
        try:
            text.encode()
            return text
        except UnicodeEncodeError:  # a lone surrogate
            pass
    digest = hashlib.sha256(text.encode("utf-8", "surrogatepass")).hexdigest()
    return f"sha256:{digest[:57]}"


def _stored_text(text: str) -> str:
    """*text* as every engine stores it in a text column (NUL and lone surrogates escaped)."""
    return text.encode("utf-8", "backslashreplace").decode().replace("\x00", "\\x00")


def _message_key(d: Delivery) -> str:
    """The processed key of a message that is not a valid event."""
    return _stored_key(d.event_id or f"handle:{d.handle}")


def _dead_letter(d: Delivery, event_id: str | None, reason: str, at_ms: int) -> dict[str, Any]:
    """The ``dead_letters`` row of *d*, in values every engine stores (parking never fails)."""
    return {
        "handle": _stored_text(d.handle)[:200],
        "event_id": None if event_id is None else _stored_text(event_id)[:_ID],
        "reason": _stored_text(reason)[:1000],
        "body": _stored_text(d.body.decode("utf-8", errors="backslashreplace")),
        "at_ms": at_ms,
    }


@functools.lru_cache(maxsize=4096)
def _day_text(day_number: int) -> str:
    return (dt.date(1970, 1, 1) + dt.timedelta(days=day_number)).isoformat()


def day_of(ts_ms: int) -> str:
    """The UTC day of *ts_ms* as ``YYYY-MM-DD``."""
    return _day_text(ts_ms // 86_400_000)


def week_of(ts_ms: int) -> str:
    """The Monday (UTC) starting the ISO week of *ts_ms*."""
    days = ts_ms // 86_400_000
    return _day_text(days - (days + 3) % 7)  # 1970-01-01 was a Thursday


def _chunks(items: Sequence[Any]) -> Iterator[Sequence[Any]]:
    for i in range(0, len(items), _CHUNK):
        yield items[i : i + _CHUNK]
