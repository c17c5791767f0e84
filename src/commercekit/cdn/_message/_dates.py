"""HTTP dates (RFC 9110 5.6.7): parse the three formats strictly, write IMF-fixdate.

Only what the grammar allows is a date: ``Sun, 06 Nov 1994 08:49:37 GMT``
(IMF-fixdate), ``Sunday, 06-Nov-94 08:49:37 GMT`` (obsolete RFC 850) and
``Sun Nov  6 08:49:37 1994`` (obsolete asctime); names are case-sensitive,
digits ASCII, the zone ``GMT``. Two-digit years, other zones, missing commas,
dashes where spaces go, extra spaces, several dates joined, or a day that does
not exist are not dates: for ``Expires``, the caller takes them as already
expired (RFC 9111 5.3). ``email.utils`` accepted all of these.
"""

from __future__ import annotations

import calendar
import email.utils
import re
import time

__all__ = ["format_http_date", "parse_http_date"]

_DAY = "(?:Mon|Tue|Wed|Thu|Fri|Sat|Sun)"
_DAY_L = "(?:Monday|Tuesday|Wednesday|Thursday|Friday|Saturday|Sunday)"
_MONTHS = ("Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec")
_MONTH = "(" + "|".join(_MONTHS) + ")"
_TIME = "([0-9]{2}):([0-9]{2}):([0-9]{2})"
_IMF = re.compile(rf"{_DAY}, ([0-9]{{2}}) {_MONTH} ([0-9]{{4}}) {_TIME} GMT")
_RFC850 = re.compile(rf"{_DAY_L}, ([0-9]{{2}})-{_MONTH}-([0-9]{{2}}) {_TIME} GMT")
_ASCTIME = re.compile(rf"{_DAY} {_MONTH} ([0-9]{{2}}| [0-9]) {_TIME} ([0-9]{{4}})")


def _epoch(year: int, month: str, day: int, hour: int, minute: int, second: int) -> float | None:
    if hour > 23 or minute > 59 or second > 60 or year < 1:
        return None
    number = _MONTHS.index(month) + 1
    if not 1 <= day <= calendar.monthrange(year, number)[1]:
        return None
    return float(calendar.timegm((year, number, day, hour, minute, min(second, 59), 0, 0, 0)))


def parse_http_date(value: str | None) -> float | None:
    """Return *value* as epoch seconds, or None when it is missing or not an HTTP date.

    A value that is not a date is treated as absent (or, for ``Expires``, as
    "already expired" by the caller), never as an error: origins send garbage.
    """
    if not value or len(value) > 64:
        return None
    value = value.strip(" \t")
    m = _IMF.fullmatch(value)
    if m is not None:
        day, month, year, hh, mm, ss = m.groups()
        return _epoch(int(year), month, int(day), int(hh), int(mm), int(ss))
    m = _RFC850.fullmatch(value)
    if m is not None:
        day, month, yy, hh, mm, ss = m.groups()
        # RFC 9110 5.6.7: a year more than 50 years ahead is the last such year in the past.
        this_year = time.gmtime().tm_year
        year = this_year - this_year % 100 + int(yy)
        if year > this_year + 50:
            year -= 100
        return _epoch(year, month, int(day), int(hh), int(mm), int(ss))
    m = _ASCTIME.fullmatch(value)
    if m is not None:
        month, day, hh, mm, ss, year = m.groups()
        return _epoch(int(year), month, int(day), int(hh), int(mm), int(ss))
    return None


def format_http_date(epoch_s: float) -> str:
    """Return *epoch_s* as an IMF-fixdate (``Sun, 06 Nov 1994 08:49:37 GMT``)."""
    return email.utils.formatdate(epoch_s, usegmt=True)
