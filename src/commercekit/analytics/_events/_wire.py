"""The consumer's reading of one wire message: the rules of an event, without the object.

``decode_wire`` checks what :meth:`AnalyticsEvent.from_bytes` checks (one
place for the identity rules: ``_check_identity``) and returns plain values,
so the consumer builds no event object per message.
"""

from __future__ import annotations

import json
from typing import Any

from commercekit.errors import InvalidInputError, UnsupportedTypeError

from ._event import _check_identity, linked_id

__all__ = ["decode_wire"]


def _no_float(text: str) -> Any:
    raise UnsupportedTypeError(
        f"a property is a float ({text}); money and counts travel as decimal strings or ints"
    )


# Floats (and NaN/Infinity) are refused while parsing, so decoded JSON needs no second walk:
# what is left is dicts with str keys, lists, str, int, bool and None.
_DECODER = json.JSONDecoder(parse_float=_no_float, parse_constant=_no_float)


def decode_wire(body: bytes) -> tuple[str, str, str, int, dict[str, Any]]:
    """One wire message as ``(event_id, name, who, timestamp_ms, properties)``, validated.

    The consumer's path: the same rules as :meth:`AnalyticsEvent.from_bytes`
    without building the event object. Malformed input raises InvalidInputError.
    An identity event (``Identify``, ``Alias``) comes back with the customer id
    as *who* and the id it links in ``properties["previous_id"]``.
    """
    try:
        data = _DECODER.decode(body.decode())
    except (ValueError, UnicodeDecodeError) as exc:
        raise InvalidInputError(f"the message is not JSON: {exc}") from exc
    except RecursionError:  # the decoder recurses once a level: a few thousand '['
        raise InvalidInputError("the message is not JSON: nested too deep") from None
    except UnsupportedTypeError as exc:
        raise InvalidInputError(str(exc)) from exc
    if type(data) is not dict:
        raise InvalidInputError(f"an event is a JSON object, got {type(data).__name__}")
    try:
        event_id, name, ts = data["event_id"], data["event"], data["timestamp_ms"]
    except KeyError as exc:
        raise InvalidInputError(f"the event has no {exc.args[0]!r}") from None
    customer_id, anonymous_id = data.get("customer_id"), data.get("anonymous_id")
    _check_identity(name, event_id, customer_id, anonymous_id, ts)
    props = data.get("properties", {})
    if type(props) is not dict:
        raise InvalidInputError(f"event properties are a mapping, got {type(props).__name__}")
    who: str = customer_id if customer_id is not None else anonymous_id  # type: ignore[assignment]  # _check_identity ensured one
    if name == "Identify" or name == "Alias":
        props = {"previous_id": linked_id(name, customer_id, anonymous_id, props)}
    return event_id, name, who, ts, props
