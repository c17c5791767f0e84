"""Fingerprinted assets: manifest building and the immutable origin."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from commercekit.cdn import IMMUTABLE, AssetManifest, AssetOrigin, EdgeCache
from commercekit.errors import InvalidInputError, NotFoundError


def test_manifest_and_origin(tmp_path: Path) -> None:
    (tmp_path / "css").mkdir()
    (tmp_path / "css" / "site.css").write_text("body{}")
    (tmp_path / "app.js").write_text("1")
    manifest = AssetManifest.build(tmp_path)
    url = manifest.url("css/site.css")
    assert url.startswith("/assets/css/site.")
    assert url.endswith(".css")
    assert AssetManifest.from_json(manifest.to_json()) == manifest
    with pytest.raises(NotFoundError):
        manifest.url("nope.css")
    (tmp_path / "app.js").write_text("2")
    assert AssetManifest.build(tmp_path).url("app.js") != manifest.url("app.js")

    async def main() -> None:
        edge = EdgeCache(AssetOrigin(manifest, tmp_path))
        response = await edge.get("http://shop.test" + url)
        assert response.body == b"body{}"
        assert response.headers.get("cache-control") == IMMUTABLE
        assert (await edge.get("http://shop.test/assets/css/site.000.css")).status == 404
        await edge.aclose()

    asyncio.run(main())


@pytest.mark.parametrize(
    "text",
    ["[" * 100_000, "{}", "[]", '{"prefix": 1, "assets": {}}', '{"prefix": "/a/", "assets": [1]}',
     '{"prefix": "/a/", "assets": {"a.css": 7}}', "not json"],
)  # fmt: skip
def test_a_manifest_that_is_not_one_is_a_typed_error(text: str) -> None:
    with pytest.raises(InvalidInputError, match="asset manifest"):
        AssetManifest.from_json(text)
