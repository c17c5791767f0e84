"""The shop is the reference for assembling commercekit: it imports public names only."""

from __future__ import annotations

import ast
import importlib
from pathlib import Path

SHOP = Path(__file__).resolve().parents[2] / "examples" / "shop"
NAMEDTUPLE_API = frozenset({"_asdict", "_field_defaults", "_fields", "_make", "_replace"})


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
    assert seen > 20


def test_shop_reads_no_private_attribute_but_its_own() -> None:
    """``x._name`` only on ``self`` or ``cls``: no reaching into a part's objects either.

    The shop's classes keep private state of their own (``self._manifest``);
    any other object's ``_name`` (a commercekit object's above all) is an
    internal that may change without notice, and so are dunders other than the
    language's own protocol (``__dict__`` reads another object's state).
    A named tuple's methods (``_replace``, ``_asdict``, ...) are public API
    with an underscore only to stay clear of field names.
    """
    found = []
    for path in sorted(SHOP.rglob("*.py")):
        for node in ast.walk(ast.parse(path.read_text(), str(path))):
            if not isinstance(node, ast.Attribute) or not node.attr.startswith("_"):
                continue
            owner = node.value.id if isinstance(node.value, ast.Name) else None
            if node.attr.startswith("__") and node.attr.endswith("__"):
                if node.attr in {"__dict__", "__slots__", "__wrapped__"}:
                    found.append(f"{path.name}:{node.lineno} .{node.attr}")
            elif owner not in ("self", "cls") and node.attr not in NAMEDTUPLE_API:
                found.append(f"{path.name}:{node.lineno} {owner or '...'}.{node.attr}")
    assert found == []
