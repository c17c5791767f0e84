"""The shop's Settings never show a password in their repr (logs, tracebacks, the admin)."""

from __future__ import annotations

from pathlib import Path

from shop.settings import Settings, redact_url


def test_the_repr_hides_every_urls_password(tmp_path: Path) -> None:
    env = {
        "SHOP_DATA_DIR": str(tmp_path),
        "SHOP_DATABASE_URL": "postgresql+psycopg://shop:db-pw-1@db.internal:5432/shop",
        "SHOP_REPLICA_URLS": "postgresql://shop:replica-pw-2@r1/shop,postgresql://r2/shop",
        "SHOP_EVENTS_URL": "redis://:events-pw-3@cache:6379/0?stream=shop",
        "SHOP_ANALYTICS_URL": "postgresql://shop@db/analytics?password=query-pw-4",
        "SHOP_FRONT_URL": "https://front:front-pw-5@front.example",
        "SHOP_EDGE_ADMIN_URL": "http://admin:edge-pw-6@edge:8081",
        "SHOP_EDGE_REDIS_URL": "rediss://user:edge-redis-pw-7@edge-cache:6380/1",
        "SHOP_CART_REDIS_URL": "redis://default:cart-pw-8@carts:6379/2",
        "SHOP_ASSET_BASE": "https://cdn:asset-pw-9@cdn.example/assets",
        "SHOP_SECRET_KEY": "secret-key-10",
        "SHOP_ADMIN_PASSWORD": "admin-pw-11",
    }
    settings = Settings.from_env(env)
    shown = repr(settings)
    for n, secret in enumerate(
        [
            "db-pw-1",
            "replica-pw-2",
            "events-pw-3",
            "query-pw-4",
            "front-pw-5",
            "edge-pw-6",
            "edge-redis-pw-7",
            "cart-pw-8",
            "asset-pw-9",
            "secret-key-10",
            "admin-pw-11",
        ],
        start=1,
    ):
        assert secret not in shown, n
    # what is not secret stays readable, and the settings themselves are untouched
    assert "postgresql+psycopg://shop:***@db.internal:5432/shop" in shown
    assert "redis://default:***@carts:6379/2" in shown
    assert "postgresql://r2/shop" in shown
    assert "stream=shop" in shown
    assert "password=***" in shown
    assert settings.cart_redis_url == env["SHOP_CART_REDIS_URL"]
    assert repr(Settings.from_env({"SHOP_DATA_DIR": str(tmp_path)})).startswith(
        "Settings(data_dir="
    )


def test_redact_url_keeps_what_is_not_secret() -> None:
    assert redact_url("sqlite:////data/shop.db") == "sqlite:////data/shop.db"
    assert redact_url("redis://cache:6379/0") == "redis://cache:6379/0"
    assert redact_url("postgresql://u:p@h/db") == "postgresql://u:***@h/db"
    assert redact_url("not a url") == "not a url"
    assert redact_url("sqlite:////data/s.db?password=x") == "sqlite:////data/s.db?password=***"
