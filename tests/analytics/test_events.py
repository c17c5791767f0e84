"""The consumer's wire decoder keeps exactly the rules of ``AnalyticsEvent.from_bytes``."""

from __future__ import annotations

import json

import pytest

from commercekit.analytics import AnalyticsEvent
from commercekit.analytics._events import decode_wire
from commercekit.errors import InvalidInputError
from tests.analytics._history import generate, malformed_bodies


def test_decode_wire_reads_what_from_bytes_reads() -> None:
    for e in generate(300, seed=3):
        body = e.to_bytes()
        event = AnalyticsEvent.from_bytes(body)
        want = (event.event_id, event.name, event.who, event.timestamp_ms, dict(event.properties))
        assert decode_wire(body) == want


BAD = [
    *malformed_bodies(),
    b"\xff\xfe",
    b"[1, 2]",
    b'{"event_id":"e","event":"X","timestamp_ms":true,"customer_id":"c","properties":{}}',
    b'{"event_id":"e","event":"X","timestamp_ms":1,"customer_id":"c","properties":[]}',
    b'{"event_id":"e","event":"X","timestamp_ms":1,"customer_id":"c","properties":{"a":[NaN]}}',
    b'{"event_id":"e","event":"X","timestamp_ms":1,"customer_id":"c","properties":{"q":1e3}}',
    b'{"event_id":"","event":"X","timestamp_ms":1,"customer_id":"c","properties":{}}',
    json.dumps(
        {"event_id": "e", "event": "X", "timestamp_ms": 1, "anonymous_id": "a" * 201}
    ).encode(),
]


@pytest.mark.parametrize("body", BAD, ids=range(len(BAD)))
def test_decode_wire_refuses_what_from_bytes_refuses(body: bytes) -> None:
    with pytest.raises(InvalidInputError):
        AnalyticsEvent.from_bytes(body)
    with pytest.raises(InvalidInputError):
        decode_wire(body)
