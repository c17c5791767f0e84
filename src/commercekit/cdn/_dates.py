"""HTTP dates (RFC 9110 5.6.7): parse any of the three formats, write IMF-fixdate."""

from __future__ import annotations

import email.utils
from datetime import UTC

__all__ = ["format_http_date", "parse_http_date"]


def parse_http_date(value: str | None) -> float | None:
    """Return *value* as epoch seconds, or None when it is missing or not a date.

    A date that cannot be parsed is treated as absent (or, for ``Expires``, as
    "already expired" by the caller), never as an error: origins send garbage.
    """
    if not value or len(value) > 64:
        return None
    try:
        parsed = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError, IndexError, OverflowError):
        return None
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=UTC)
    try:
        return parsed.timestamp()
    except (OverflowError, OSError, ValueError):
        return None


def format_http_date(epoch_s: float) -> str:
    """Return *epoch_s* as an IMF-fixdate (``Sun, 06 Nov 1994 08:49:37 GMT``)."""
    return email.utils.formatdate(epoch_s, usegmt=True)
