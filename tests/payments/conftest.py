"""Every payments test runs under a log collector that fails the test if a card number leaks."""

from __future__ import annotations

import logging
from collections.abc import Iterator

import pytest

from commercekit.payments import SANDBOX_CARDS

TEST_PANS = frozenset(SANDBOX_CARDS) | {"4111111111111111", "4000002500003155"}


class Collector(logging.Handler):
    def __init__(self) -> None:
        super().__init__(level=logging.DEBUG)
        self.texts: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        text = record.getMessage()
        if record.exc_info and record.exc_info[1] is not None:
            text += f" {record.exc_info[1]!s} {record.exc_info[1]!r}"
        self.texts.append(text)


@pytest.fixture(autouse=True)
def no_card_numbers_in_logs() -> Iterator[Collector]:
    collector = Collector()
    root = logging.getLogger()
    old_level = root.level
    root.addHandler(collector)
    root.setLevel(logging.DEBUG)
    try:
        yield collector
    finally:
        root.removeHandler(collector)
        root.setLevel(old_level)
    leaked = [text for text in collector.texts for pan in TEST_PANS if pan in text]
    assert not leaked, "a card number reached a log record"
