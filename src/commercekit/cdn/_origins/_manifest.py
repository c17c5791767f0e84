"""Fingerprinted assets: a manifest from logical names to content-hashed URLs, and their origin.

``site.css`` becomes ``/assets/site.3f2a9b1c4d5e.css``; a new build changes
the hash, so the URL can be cached for a year (``immutable``) and a deploy
never needs a purge.
"""

from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Mapping
from pathlib import Path, PurePosixPath
from urllib.parse import urlsplit

import attrs

from commercekit._json import read_json_object
from commercekit.cdn._message._headers import Headers
from commercekit.cdn._message._messages import Request, Response
from commercekit.errors import ConfigurationError, InvalidInputError, NotFoundError

from ._directory import DirectoryOrigin

__all__ = ["IMMUTABLE", "AssetManifest", "AssetOrigin"]

IMMUTABLE = "public, max-age=31536000, immutable"
"""The Cache-Control of a fingerprinted asset."""


def _plain(assets: Mapping[str, str]) -> dict[str, str]:
    return dict(assets)


@attrs.frozen
class AssetManifest:
    """Logical asset names (``css/site.css``) and their fingerprinted URLs."""

    prefix: str
    assets: Mapping[str, str] = attrs.field(converter=_plain)

    @classmethod
    def build(
        cls, root: str | os.PathLike[str], *, prefix: str = "/assets/", hash_chars: int = 12
    ) -> AssetManifest:
        """Hash every file under *root* (BLAKE2b of its content) and name its URL after the hash."""
        base = Path(root)
        if not base.is_dir():
            raise ConfigurationError(f"asset folder {str(base)!r} does not exist")
        if not prefix.startswith("/") or not prefix.endswith("/"):
            raise ConfigurationError(f"prefix {prefix!r} must start and end with '/'")
        assets: dict[str, str] = {}
        for path in sorted(p for p in base.rglob("*") if p.is_file()):
            name = path.relative_to(base).as_posix()
            digest = hashlib.blake2b(path.read_bytes(), digest_size=16).hexdigest()[:hash_chars]
            pure = PurePosixPath(name)
            hashed = pure.with_name(f"{pure.stem}.{digest}{pure.suffix}")
            assets[name] = prefix + hashed.as_posix()
        return cls(prefix, assets)

    def url(self, name: str) -> str:
        """Return the fingerprinted URL of asset *name*."""
        try:
            return self.assets[name]
        except KeyError:
            raise NotFoundError(f"no asset {name!r} in the manifest; rebuild it?") from None

    def name_for(self, url_path: str) -> str | None:
        """Return the logical name a fingerprinted URL path stands for, or None."""
        return self._reverse().get(url_path)

    def _reverse(self) -> dict[str, str]:
        return {url: name for name, url in self.assets.items()}

    def to_json(self) -> str:
        """Serialize as JSON (``{"prefix": ..., "assets": {...}}``)."""
        return json.dumps(
            {"prefix": self.prefix, "assets": dict(self.assets)}, indent=2, sort_keys=True
        )

    @classmethod
    def from_json(cls, text: str) -> AssetManifest:
        """Load what :meth:`to_json` wrote (InvalidInputError for anything else)."""
        data = read_json_object(text, what="the asset manifest")
        prefix, assets = data.get("prefix"), data.get("assets")
        if not (
            isinstance(prefix, str)
            and isinstance(assets, dict)
            and all(isinstance(url, str) for url in assets.values())
        ):
            raise InvalidInputError(
                "the asset manifest is not a prefix string and an object of asset URLs"
            )
        return cls(prefix, assets)


class AssetOrigin:
    """An origin serving the files of *root* under their fingerprinted URLs, as ``immutable``.

    Unknown or stale hashes get a 404 that caches for a few seconds only.
    """

    def __init__(self, manifest: AssetManifest, root: str | os.PathLike[str]) -> None:
        self._manifest = manifest
        self._reverse = manifest._reverse()
        self._files = DirectoryOrigin(root, cache_control=IMMUTABLE)

    async def fetch(self, request: Request, /) -> Response:
        """Serve the asset behind a fingerprinted URL."""
        parts = urlsplit(request.url)
        name = self._reverse.get(parts.path)
        if name is None:
            return Response(404, Headers({"cache-control": "max-age=5", "content-length": "0"}))
        inner = f"{parts.scheme}://{parts.netloc}/{name}" if parts.netloc else f"/{name}"
        return await self._files.fetch(Request(request.method, inner, request.headers))

    async def aclose(self) -> None:
        """Nothing to release."""

    def __repr__(self) -> str:
        return f"AssetOrigin(assets={len(self._reverse)})"
