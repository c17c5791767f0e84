"""Fixtures that start real servers for the integration tests, and stop them after."""

from __future__ import annotations

import fcntl
import os
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.conftest import missing_service


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@pytest.fixture(scope="session")
def localstripe() -> Iterator[str]:
    """A localstripe server started from scratch on a free port; yields its base URL.

    localstripe keeps its state in one fixed pickle file in the system temp
    folder, so a lock file makes sure only one runs on this machine at a time.
    It listens on every interface; the tests talk to it on 127.0.0.1 only.
    """
    try:
        import localstripe as _  # noqa: F401
    except ImportError:
        missing_service("localstripe is not installed (pip install localstripe)")
    lock_path = Path(tempfile.gettempdir()) / "commercekit-localstripe.lock"
    with open(lock_path, "w") as lock:
        deadline = time.monotonic() + 120
        while True:
            try:
                fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except BlockingIOError:
                if time.monotonic() > deadline:
                    missing_service("another localstripe has run here for over 120 s")
                time.sleep(0.2)
        port = free_port()
        proc = subprocess.Popen(
            [sys.executable, "-m", "localstripe", "--port", str(port), "--from-scratch"],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            env={**os.environ, "PYTHONUNBUFFERED": "1"},
        )
        url = f"http://127.0.0.1:{port}"
        try:
            deadline = time.monotonic() + 20
            while True:
                if proc.poll() is not None:
                    missing_service(f"localstripe exited at start with code {proc.returncode}")
                try:
                    urllib.request.urlopen(f"{url}/js.stripe.com/v3/", timeout=1).close()
                    break
                except OSError:
                    if time.monotonic() > deadline:
                        missing_service("localstripe did not answer within 20 s")
                    time.sleep(0.05)
            yield url
        finally:
            proc.terminate()
            try:
                proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()


# -- PostgreSQL and MariaDB (commercekit.repository) ---------------------------


# pg_cluster (a primary with two standbys) is in tests/conftest.py: the shop shares it.


@pytest.fixture(scope="session")
def mariadb_pair() -> Iterator[object]:
    """A MariaDB primary with one GTID replica and a ``shop`` database (stopped at the end)."""
    from tests.integration._servers import MariaDbPair, mariadb_missing

    reason = mariadb_missing()
    if reason is not None:
        missing_service(reason)
    try:
        import pymysql  # noqa: F401
    except ImportError:
        missing_service("the MariaDB tests need PyMySQL (the [mysql] extra)")
    with MariaDbPair() as pair:
        yield pair
