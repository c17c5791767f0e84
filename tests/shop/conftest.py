"""Fixtures: the fleet (``python -m shop up``) on free loopback ports, shared by the package."""

from __future__ import annotations

import os
import shutil
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.conftest import missing_service
from tests.shop._procs import EXAMPLES, free_port, shop_env

if str(EXAMPLES) not in sys.path:  # the shop is an example package, not installed
    sys.path.insert(0, str(EXAMPLES))

from shop.fleet import Fleet
from shop.settings import Settings


@pytest.fixture(scope="module")
def app_server(fleet: Fleet) -> tuple[str, Path]:
    """One app server of the fleet, straight (not through the front): its URL and data folder.

    The storefront tests share the fleet's processes rather than start their own
    (a process start and a seed cost more than all of those tests).
    """
    app = fleet.procs["app-1"]
    assert fleet.wait_healthy("app-1", 60), "app-1 is not serving"
    return f"http://127.0.0.1:{app.port}", fleet.settings.data_dir


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


CHROMIUM = "/usr/bin/chromium"
ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--disable-dev-shm-usage",
]
ARTIFACTS = Path(
    os.environ.get(
        "COMMERCEKIT_ARTIFACTS", Path(__file__).resolve().parents[2] / "tmp" / "artifacts"
    )
)


@pytest.fixture(scope="package")
def browser() -> Iterator[object]:
    """Debian's Chromium driven by Playwright (never ``playwright install``), one per run."""
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        missing_service("the playwright package is not installed (pip install -e '.[shop]')")
    if not (os.path.exists(CHROMIUM) or shutil.which("chromium")):
        missing_service("Debian's chromium is not installed (apt-get install chromium)")
    with sync_playwright() as p:
        b = p.chromium.launch(executable_path=CHROMIUM, args=ARGS)
        yield b
        b.close()


def browser_page(
    browser: object, base_url: str, name: str, *, javascript: bool = True
) -> Iterator[object]:
    """A page in a fresh context on *base_url*; its full-page screenshot is kept as *name*."""
    context = browser.new_context(  # type: ignore[attr-defined]
        base_url=base_url, java_script_enabled=javascript
    )
    context.set_default_timeout(30_000)
    pg = context.new_page()
    yield pg
    out = ARTIFACTS / "shop"
    out.mkdir(parents=True, exist_ok=True)
    pg.screenshot(path=str(out / f"{name}.png"), full_page=True)
    context.close()
