"""Fixtures: one app server (``python -m shop serve``) on a free loopback port."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.shop._procs import free_port, shop_env, start, stop, wait_ready


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
