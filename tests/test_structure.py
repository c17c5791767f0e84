"""The house rules of the source tree (DESIGN.md, STYLE.md), checked rather than hoped for.

- No module is over 400 lines unless a comment near its top says why
  (``# Longer than 400 lines because ...``).
- No folder holds more than 15 modules side by side: a part that grows groups
  its modules into sub-packages that show its architecture.
- No two modules import each other at run time, directly or around a loop:
  every module is imported, then the graph of their module-level imports
  (not those under ``if TYPE_CHECKING:`` nor inside functions) must have no
  cycle.
- Every package's ``__init__.py`` (each part's and each sub-package's) only
  re-exports: it defines no function or class of its own (a module
  ``__getattr__`` for lazy or deprecated names aside).

The allow-lists name today's offenders in folders being regrouped; each entry
goes when its folder is done, and a fixed offender must leave the list (the
test fails on a stale entry).
"""

from __future__ import annotations

import ast
import importlib
import re
from collections.abc import Iterator
from pathlib import Path

import pytest

SRC = Path(__file__).parent.parent / "src"
PACKAGE = SRC / "commercekit"

MAX_LINES = 400
MAX_MODULES = 15
MARKER = re.compile(r"^#.*longer than 400 lines because", re.IGNORECASE | re.MULTILINE)
MARKER_WITHIN_LINES = 40

# Modules over 400 lines that do not say why yet, in folders others are reworking.
LONG_ALLOWED: dict[str, str] = {}

# Folders of more than 15 modules, being grouped into sub-packages by others.
WIDE_ALLOWED: dict[str, str] = {}

# Import cycles (as sorted module sets) being untangled by others.
CYCLES_ALLOWED: dict[frozenset[str], str] = {}


def _modules() -> Iterator[Path]:
    yield from sorted(p for p in PACKAGE.rglob("*.py") if "__pycache__" not in p.parts)


def _name(path: Path) -> str:
    parts = list(path.relative_to(SRC).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def _is_package(path: Path) -> bool:
    return path.name == "__init__.py"


def test_no_module_over_400_lines_without_saying_why() -> None:
    long: list[str] = []
    for path in _modules():
        text = path.read_text()
        if text.count("\n") <= MAX_LINES:
            continue
        head = "\n".join(text.splitlines()[:MARKER_WITHIN_LINES])
        key = path.relative_to(SRC).as_posix()
        if MARKER.search(head) is None and key not in LONG_ALLOWED:
            long.append(f"{key} ({text.count(chr(10))} lines)")
    assert not long, (
        "modules over 400 lines with no '# Longer than 400 lines because ...' comment near "
        f"the top: {long}; split them, or say why they are one piece"
    )


def test_the_long_module_allow_list_has_no_stale_entries() -> None:
    stale = [
        key
        for key in LONG_ALLOWED
        if not (SRC / key).exists()
        or (SRC / key).read_text().count("\n") <= MAX_LINES
        or MARKER.search("\n".join((SRC / key).read_text().splitlines()[:MARKER_WITHIN_LINES]))
    ]
    assert not stale, f"remove these fixed entries from LONG_ALLOWED: {stale}"


def _folders() -> dict[str, int]:
    folders: dict[str, int] = {}
    for path in _modules():
        if path.name in {"__init__.py", "__main__.py"}:
            continue
        key = path.parent.relative_to(SRC).as_posix()
        folders[key] = folders.get(key, 0) + 1
    return folders


def test_no_folder_of_more_than_15_modules() -> None:
    wide = {
        key: count
        for key, count in _folders().items()
        if count > MAX_MODULES and key not in WIDE_ALLOWED
    }
    assert not wide, (
        f"folders of more than {MAX_MODULES} modules side by side: {wide}; group them into "
        "sub-packages that show the part's architecture"
    )


def test_the_wide_folder_allow_list_has_no_stale_entries() -> None:
    folders = _folders()
    stale = [key for key in WIDE_ALLOWED if folders.get(key, 0) <= MAX_MODULES]
    assert not stale, f"remove these fixed entries from WIDE_ALLOWED: {stale}"


def _type_checking(test: ast.expr) -> bool:
    return (isinstance(test, ast.Name) and test.id == "TYPE_CHECKING") or (
        isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING"
    )


def _run_time_imports(tree: ast.Module) -> Iterator[ast.Import | ast.ImportFrom]:
    """The imports a module runs when it is imported: its top level, ifs and trys included."""
    todo: list[ast.stmt] = list(tree.body)
    while todo:
        node = todo.pop()
        if isinstance(node, ast.Import | ast.ImportFrom):
            yield node
        elif isinstance(node, ast.If):
            if not _type_checking(node.test):
                todo.extend(node.body)
            todo.extend(node.orelse)
        elif isinstance(node, ast.Try):
            todo.extend([*node.body, *node.orelse, *node.finalbody])
            for handler in node.handlers:
                todo.extend(handler.body)
        elif isinstance(node, ast.With):
            todo.extend(node.body)


def _graph(known: set[str]) -> dict[str, set[str]]:
    graph: dict[str, set[str]] = {}
    for path in _modules():
        name = _name(path)
        package = name if _is_package(path) else name.rpartition(".")[0]
        edges: set[str] = set()
        for node in _run_time_imports(ast.parse(path.read_text(), str(path))):
            if isinstance(node, ast.Import):
                edges.update(alias.name for alias in node.names if alias.name in known)
                continue
            if node.level:
                anchor = package.split(".")
                anchor = anchor[: len(anchor) - (node.level - 1)]
                base = ".".join([*anchor, node.module] if node.module else anchor)
            else:
                base = node.module or ""
            for alias in node.names:
                submodule = f"{base}.{alias.name}"
                if submodule in known:
                    edges.add(submodule)  # "from package import module"
                elif base in known:
                    edges.add(base)
        edges.discard(name)
        graph[name] = edges
    return graph


def _cycles(graph: dict[str, set[str]]) -> list[frozenset[str]]:
    """The strongly connected components of more than one module (Tarjan, iteratively)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[frozenset[str]] = []
    counter = 0
    for root in sorted(graph):
        if root in index:
            continue
        work: list[tuple[str, Iterator[str]]] = [(root, iter(sorted(graph[root])))]
        index[root] = low[root] = counter
        counter += 1
        stack.append(root)
        on_stack.add(root)
        while work:
            node, children = work[-1]
            child = next(children, None)
            if child is not None:
                if child not in graph:
                    continue
                if child not in index:
                    index[child] = low[child] = counter
                    counter += 1
                    stack.append(child)
                    on_stack.add(child)
                    work.append((child, iter(sorted(graph[child]))))
                elif child in on_stack:
                    low[node] = min(low[node], index[child])
                continue
            work.pop()
            if work:
                parent = work[-1][0]
                low[parent] = min(low[parent], low[node])
            if low[node] == index[node]:
                component: set[str] = set()
                while True:
                    member = stack.pop()
                    on_stack.discard(member)
                    component.add(member)
                    if member == node:
                        break
                if len(component) > 1:
                    found.append(frozenset(component))
    return found


def test_cycle_finder_finds_a_loop() -> None:
    graph = {"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}, "e": set()}
    assert _cycles(graph) == [frozenset({"a", "b", "c"})]


@pytest.fixture(scope="module")
def imported() -> set[str]:
    names: set[str] = set()
    for path in _modules():
        name = _name(path)
        names.add(name)
        if path.name == "__main__.py" or "_alembic" in path.parts:
            continue  # a program, or migration scripts alembic runs in its own context
        importlib.import_module(name)
    return names


def test_no_import_cycle_between_modules(imported: set[str]) -> None:
    cycles = [c for c in _cycles(_graph(imported)) if c not in CYCLES_ALLOWED]
    assert not cycles, f"modules that import each other at run time: {[sorted(c) for c in cycles]}"


def test_every_part_init_only_re_exports() -> None:
    # Every package: the parts and the sub-packages they are grouped into.
    parts = [p for p in PACKAGE.rglob("__init__.py") if "_alembic" not in p.parts]
    assert len(parts) >= 8
    for init in parts:
        for node in ast.parse(init.read_text()).body:
            if isinstance(node, ast.FunctionDef) and node.name == "__getattr__":
                continue  # deprecated names, imported from where they went
            assert not isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef), (
                f"{init.relative_to(SRC)} defines {node.name}: move it into a module and "
                "re-export it"
            )


def _drawn() -> set[str]:
    """The folders and modules drawn in docs/architecture.md's tree, as paths under src/."""
    text = (SRC.parent / "docs" / "architecture.md").read_text()
    block = text.split("## The tree", 1)[1].split("```", 2)[1]
    drawn: set[str] = set()
    stack: list[str] = []
    for line in block.splitlines():
        if not line.strip():
            continue
        depth = (len(line) - len(line.lstrip())) // 4
        name = line.split()[0]
        del stack[depth:]
        stack.append(name.rstrip("/"))
        drawn.add("/".join(stack) + ("/" if name.endswith("/") else ""))
    return drawn


def test_the_architecture_drawing_matches_the_tree() -> None:
    drawn = _drawn()
    assert "commercekit/cdn/_policy/" in drawn
    missing = sorted(path for path in drawn if not (SRC / path).exists())
    assert not missing, f"docs/architecture.md draws what does not exist: {missing}"
    for part in ("cdn", "balancer", "analytics"):
        packages = {
            f"{p.parent.relative_to(SRC).as_posix()}/"
            for p in (PACKAGE / part).glob("*/__init__.py")
        }
        assert packages <= drawn, f"draw these in docs/architecture.md: {packages - drawn}"
