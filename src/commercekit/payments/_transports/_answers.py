"""Reading a provider's HTTP answer the same way for every provider: Retry-After, a JSON object.

Each wire module (Stripe, Adyen, Amazon Pay) maps statuses and bodies in its
own terms; what the answers share is read here, once.
"""

from __future__ import annotations

import math
from typing import Any

from commercekit._json import read_json_object
from commercekit.errors import InvalidInputError
from commercekit.payments._transports._http import HttpResponse

__all__ = ["json_object", "retry_after_s"]


def retry_after_s(response: HttpResponse) -> float | None:
    """*response*'s ``Retry-After`` in seconds: finite and not negative, else None.

    Providers send delta-seconds. A value that is not a number, or one a
    wait cannot use (negative, NaN, infinite: ``time.sleep`` refuses or never
    returns), reads as no hint at all, and the retry policy's own backoff
    applies. An HTTP-date is no hint either: none of these providers sends one.
    """
    value = response.header("Retry-After")
    if value is None:
        return None
    try:
        seconds = float(value)
    except ValueError:
        return None
    return seconds if math.isfinite(seconds) and seconds >= 0 else None


def json_object(response: HttpResponse) -> dict[str, Any] | None:
    """*response*'s body as a JSON object, or None (not JSON, not an object, nested too deep)."""
    try:
        return read_json_object(response.body, what="the answer")
    except InvalidInputError:
        return None
