"""The shop is the reference for assembling commercekit: it imports public names only."""

from __future__ import annotations

import ast
import importlib
from pathlib import Path

SHOP = Path(__file__).resolve().parents[2] / "examples" / "shop"


def test_shop_imports_only_public_commercekit_names() -> None:
    seen = 0
    for path in sorted(SHOP.rglob("*.py")):
        for node in ast.walk(ast.parse(path.read_text(), str(path))):
            if isinstance(node, ast.ImportFrom) and (node.module or "").startswith("commercekit"):
                module = node.module or ""
                assert not any(p.startswith("_") for p in module.split(".")), (path, module)
                public = set(getattr(importlib.import_module(module), "__all__", ()))
                for alias in node.names:
                    assert alias.name in public, f"{path.name}: {module}.{alias.name} is not public"
                    seen += 1
            elif isinstance(node, ast.Import):
                for alias in node.names:
                    if alias.name.startswith("commercekit"):
                        assert not any(p.startswith("_") for p in alias.name.split(".")), path
            elif isinstance(node, ast.Attribute) and node.attr.startswith("_"):
                # No reaching into a part through a private attribute either.
                assert not node.attr.startswith("__") or node.attr.endswith("__"), (path, node.attr)
    assert seen > 20
