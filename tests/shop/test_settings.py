"""The shop's settings and its docs name the same ``SHOP_*`` variables, and each one is read."""

from __future__ import annotations

import dataclasses
import re
from pathlib import Path

from shop.settings import Settings

from tests.shop._procs import ROOT

# A value unlike the default for each setting: a new field without one fails below.
SAMPLES = {
    "data_dir": "data-elsewhere",
    "database_url": "postgresql+psycopg://shop@db1/shop",
    "replica_urls": "postgresql+psycopg://shop@db2/shop, postgresql+psycopg://shop@db3/shop",
    "events_url": "redis://redis1:6379/0?stream=shop&group=analytics",
    "analytics_url": "postgresql+psycopg://analytics@db1/analytics",
    "asset_base": "https://img.example.com/",
    "front_url": "http://lb1:8000",
    "edge_admin_url": "http://img1:9090",
    "edge_redis_url": "redis://redis1:6379/1",
    "prometheus_url": "http://prom1:9090/",
    "secret_key": "a-secret-from-the-store",
    "admin_password": "an-admin-password",
    "server_name": "app7",
    "currency": "USD",
    "region": "US",
    "page_size": "30",
    "seed_products": "6",
    "secure_cookies": "1",
    "cart_store": "redis",
    "cart_redis_url": "redis://redis1:6379/2",
    "cart_redis_prefix": "shop2:cart:",
    "cart_ttl_s": "3600",
}
DOCS = [ROOT / "docs" / "tutorial.md", ROOT / "docs" / "deploy.md", ROOT / "README.md"]


def variables() -> dict[str, str]:
    """Each setting's environment variable: ``SHOP_`` and the field's name in capitals."""
    return {f"SHOP_{f.name.upper()}": f.name for f in dataclasses.fields(Settings)}


def test_every_setting_is_read_from_its_variable(tmp_path: Path) -> None:
    base = {"SHOP_DATA_DIR": str(tmp_path / "data")}
    default = Settings.from_env(base)
    assert set(SAMPLES) == {f.name for f in dataclasses.fields(Settings)}
    for variable, name in variables().items():
        value = SAMPLES[name]
        if name == "data_dir":
            value = str(tmp_path / value)
        read = Settings.from_env({**base, variable: value})
        assert getattr(read, name) != getattr(default, name), f"{variable} is not read"
    replicas = Settings.from_env({**base, "SHOP_REPLICA_URLS": SAMPLES["replica_urls"]})
    assert replicas.replica_urls == (
        "postgresql+psycopg://shop@db2/shop",
        "postgresql+psycopg://shop@db3/shop",
    )


def test_the_docs_name_only_settings_that_exist() -> None:
    known = set(variables())
    for doc in DOCS:
        named = set(re.findall(r"\bSHOP_[A-Z0-9_]*[A-Z0-9]", doc.read_text()))
        assert named <= known, f"{doc.name} names settings the shop lacks: {named - known}"


def test_the_deploy_table_lists_every_setting() -> None:
    rows = [
        line.split("|")[1]
        for line in (ROOT / "docs" / "deploy.md").read_text().splitlines()
        if line.startswith("| `SHOP_")
    ]
    listed = {name for row in rows for name in re.findall(r"`(SHOP_[A-Z0-9_]+)`", row)}
    assert listed == set(variables()), (
        f"missing from docs/deploy.md: {set(variables()) - listed}; "
        f"not settings: {listed - set(variables())}"
    )


def test_the_fleet_hands_the_edge_its_redis_tier(tmp_path: Path) -> None:
    """``SHOP_EDGE_REDIS_URL``: ``python -m shop up`` starts the image edge on that tier."""
    from shop.fleet import Fleet

    env = {"SHOP_DATA_DIR": str(tmp_path), "SHOP_EDGE_REDIS_URL": SAMPLES["edge_redis_url"]}
    fleet = Fleet(Settings.from_env(env), apps=2, env=env)
    fleet.plan()
    argv = fleet.procs["edge"].argv
    assert argv[argv.index("--redis") + 1] == SAMPLES["edge_redis_url"]
    bare = Fleet(Settings.from_env({"SHOP_DATA_DIR": str(tmp_path)}), apps=2)
    bare.plan()
    assert "--redis" not in bare.procs["edge"].argv
