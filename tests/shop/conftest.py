"""Fixtures: one app server (``python -m shop serve``) on a free loopback port."""

from __future__ import annotations

import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.shop._procs import EXAMPLES, free_port, shop_env, start, stop, wait_ready

if str(EXAMPLES) not in sys.path:  # the shop is an example package, not installed
    sys.path.insert(0, str(EXAMPLES))

from shop.fleet import Fleet
from shop.settings import Settings


@pytest.fixture(scope="module")
def app_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, Path]]:
    data = tmp_path_factory.mktemp("shop")
    port = free_port()
    proc = start(["serve", "--port", str(port)], shop_env(data), data / "app.log")
    base = f"http://127.0.0.1:{port}"
    try:
        wait_ready(base + "/healthz", proc)
        yield base, data
    finally:
        stop(proc)


@pytest.fixture(scope="package")
def fleet(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Fleet]:
    """``python -m shop up``'s fleet: 2 app servers, the front, the edge, origin, analytics."""
    data = tmp_path_factory.mktemp("fleet")
    env = shop_env(data)
    settings = Settings.from_env(env)
    fleet = Fleet(settings, apps=2, front_port=free_port(), env=env)
    try:
        fleet.start(timeout_s=90)
        yield fleet
    finally:
        fleet.stop()
