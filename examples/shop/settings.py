"""The shop's settings, read from the environment (``SHOP_*``); every one has a default."""

from __future__ import annotations

import os
import secrets
from dataclasses import dataclass, field, fields
from pathlib import Path
from urllib.parse import parse_qsl, urlencode, urlsplit

from commercekit.errors import ConfigurationError

__all__ = ["Settings", "redact_url"]


def _env(environ: dict[str, str], name: str, default: str) -> str:
    value = environ.get(f"SHOP_{name}", "").strip()
    return value or default


def _secret(data_dir: Path, name: str = "secret.key") -> str:
    """A secret shared by every process of one shop (kept beside the database, mode 0600)."""
    path = data_dir / name
    if not path.exists():
        data_dir.mkdir(parents=True, exist_ok=True)
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "w") as f:
            f.write(secrets.token_urlsafe(32))
    return path.read_text().strip()


_SECRET_PARAMS = ("password", "passwd", "secret", "token", "key")


def redact_url(value: str) -> str:
    """*value* with a URL's password (and secret-looking query parameters) shown as ``***``."""
    if "://" not in value:
        return value
    try:
        parts = urlsplit(value)
        netloc = parts.netloc
        if parts.password is not None:
            user, _, host = netloc.rpartition("@")
            netloc = f"{user.partition(':')[0]}:***@{host}"
        query = parts.query
        if query:
            pairs = parse_qsl(query, keep_blank_values=True)
            if any(any(s in k.lower() for s in _SECRET_PARAMS) for k, _ in pairs):
                query = urlencode(
                    [
                        (k, "***" if any(s in k.lower() for s in _SECRET_PARAMS) else v)
                        for k, v in pairs
                    ],
                    safe="*/:",
                )
        if (netloc, query) == (parts.netloc, parts.query):
            return value  # nothing secret (and sqlite:////abs/path kept as written)
        # by hand: urlunsplit turns sqlite:////abs/path into sqlite://abs/path
        rebuilt = f"{parts.scheme}://{netloc}{parts.path}"
        rebuilt += f"?{query}" if query else ""
        return rebuilt + (f"#{parts.fragment}" if parts.fragment else "")
    except ValueError:
        return "<unparseable URL>"


@dataclass(frozen=True)
class Settings:
    """Which database, event log and image edge the shop uses, and how it runs.

    The defaults are one machine with no services: SQLite (one file, WAL) for
    the shop, an SQLite event log and an SQLite analytics database, all under
    *data_dir*, and images served by the app server itself. With
    *prometheus_url*, the admin's live operations charts are asked of that
    Prometheus (PromQL) instead of each process's ``/metrics``. *cart_store*
    ``"redis"`` keeps the carts in the Redis at *cart_redis_url* (each for
    *cart_ttl_s* after its last change) instead of the shop's database.
    """

    data_dir: Path
    database_url: str
    replica_urls: tuple[str, ...]
    events_url: str
    analytics_url: str
    asset_base: str
    front_url: str
    edge_admin_url: str
    edge_redis_url: str
    prometheus_url: str
    secret_key: str = field(repr=False)
    admin_password: str = field(repr=False)
    server_name: str = "app"
    currency: str = "EUR"
    region: str = "DE"
    page_size: int = 12
    seed_products: int = 48
    secure_cookies: bool = False
    cart_store: str = "sql"
    cart_redis_url: str = "redis://127.0.0.1:6379/0"
    cart_redis_prefix: str = "shop:cart:"
    cart_ttl_s: float = 10 * 86_400.0

    def __repr__(self) -> str:
        """Every shown field, each URL's password (and secret query parameters) as ``***``."""
        shown = []
        for f in fields(self):
            if not f.repr:
                continue
            value = getattr(self, f.name)
            if isinstance(value, str):
                value = redact_url(value)
            elif isinstance(value, tuple):
                value = tuple(redact_url(v) if isinstance(v, str) else v for v in value)
            shown.append(f"{f.name}={value!r}")
        return f"Settings({', '.join(shown)})"

    @classmethod
    def from_env(cls, environ: dict[str, str] | None = None) -> Settings:
        """Read ``SHOP_*`` variables (see docs/deploy.md for each)."""
        env = dict(os.environ if environ is None else environ)
        data_dir = Path(_env(env, "DATA_DIR", "shop-data")).resolve()
        data_dir.mkdir(parents=True, exist_ok=True)
        replicas = _env(env, "REPLICA_URLS", "")
        cart_store = _env(env, "CART_STORE", "sql").lower()
        if cart_store not in ("sql", "redis"):
            raise ConfigurationError(f"SHOP_CART_STORE is 'sql' or 'redis', not {cart_store!r}")
        return cls(
            data_dir=data_dir,
            database_url=_env(env, "DATABASE_URL", f"sqlite:///{data_dir / 'shop.db'}"),
            replica_urls=tuple(u.strip() for u in replicas.split(",") if u.strip()),
            events_url=_env(env, "EVENTS_URL", f"sqlite:///{data_dir / 'events.db'}?group=shop"),
            analytics_url=_env(env, "ANALYTICS_URL", f"sqlite:///{data_dir / 'analytics.db'}"),
            asset_base=_env(env, "ASSET_BASE", "").rstrip("/"),
            front_url=_env(env, "FRONT_URL", "").rstrip("/"),
            edge_admin_url=_env(env, "EDGE_ADMIN_URL", "").rstrip("/"),
            edge_redis_url=_env(env, "EDGE_REDIS_URL", ""),
            prometheus_url=_env(env, "PROMETHEUS_URL", "").rstrip("/"),
            secret_key=_env(env, "SECRET_KEY", "") or _secret(data_dir),
            admin_password=_env(env, "ADMIN_PASSWORD", "") or _secret(data_dir, "admin.password"),
            server_name=_env(env, "SERVER_NAME", "app"),
            currency=_env(env, "CURRENCY", "EUR"),
            region=_env(env, "REGION", "DE"),
            page_size=int(_env(env, "PAGE_SIZE", "12")),
            seed_products=int(_env(env, "SEED_PRODUCTS", "48")),
            secure_cookies=_env(env, "SECURE_COOKIES", "0") == "1",
            cart_store=cart_store,
            cart_redis_url=_env(env, "CART_REDIS_URL", "redis://127.0.0.1:6379/0"),
            cart_redis_prefix=_env(env, "CART_REDIS_PREFIX", "shop:cart:"),
            cart_ttl_s=float(_env(env, "CART_TTL_S", str(10 * 86_400))),
        )

    @property
    def image_dir(self) -> Path:
        """Where the seed writes product images (the image origin serves them)."""
        return self.data_dir / "images"
