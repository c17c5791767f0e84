"""Every Python code block in README.md and docs/*.md runs, so the docs cannot drift.

The blocks of one file run in order in one namespace (a later block may use
what an earlier one made), in a temporary working folder that holds the
``static/`` folder the CDN examples serve. A block whose info
string is ``python no-run`` is only compiled: it needs a server, a provider
account or a framework's request, or it is a fragment of a larger program.
"""

from __future__ import annotations

import ast
import os
import re
from pathlib import Path

import pytest

ROOT = Path(__file__).parent.parent
DOCS = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]

_FENCE = re.compile(r"^```([^\n`]*)\n(.*?)^```[ \t]*$", re.MULTILINE | re.DOTALL)


def python_blocks(text: str) -> list[tuple[int, str, bool]]:
    """The Python blocks of a markdown *text*: (line, source, runs), in order."""
    blocks = []
    for match in _FENCE.finditer(text):
        info = match.group(1).split()
        if not info or info[0] != "python":
            continue
        line = text.count("\n", 0, match.start(2)) + 1
        blocks.append((line, match.group(2), "no-run" not in info[1:]))
    return blocks


# Every block that is only compiled, by its file and first line, and why it cannot run
# here. A new ``python no-run`` block fails the test until it is listed with its reason,
# so no block is skipped silently; a listed block that runs now, or is gone, fails too.
NO_RUN: dict[tuple[str, str], str] = {
    ("docs/analytics.md", "from commercekit.analytics import ("): (
        "needs Redis and the shop's databases (shop_db, analytics_db, order, customer)"
    ),
    ("docs/cdn.md", 'async with EdgeCache(HttpOrigin("http://127.0.0.1:9000")) as edge:'): (
        "needs an origin server on 127.0.0.1:9000, and awaits at top level"
    ),
    ("docs/cdn.md", "@asynccontextmanager"): "a fragment of a Starlette app (edge, Starlette)",
    ("docs/frameworks.md", "class AsyncShop:"): (
        "an excerpt of examples/frameworks/shop.py, which tests/test_examples.py runs"
    ),
    ("docs/frameworks.md", '@app.post("/checkout")'): (
        "excerpts of examples/frameworks_fastapi.py and examples/frameworks/shop.py (run)"
    ),
    ("docs/frameworks.md", "@app.exception_handler(CommerceKitError)"): (
        "an excerpt of examples/frameworks_fastapi.py (run by tests/test_examples.py)"
    ),
    ("docs/frameworks.md", '@app.post("/webhooks/stripe")'): (
        "an excerpt of examples/frameworks_fastapi.py (run by tests/test_examples.py)"
    ),
    ("docs/frameworks.md", '@app.get("/metrics")'): (
        "an excerpt of examples/frameworks_fastapi.py (run by tests/test_examples.py)"
    ),
    ("docs/frameworks.md", "edge = shop.make_edge()"): (
        "an excerpt of examples/frameworks_fastapi.py (run by tests/test_examples.py)"
    ),
    (
        "docs/frameworks.md",
        "@csrf_exempt  # an API called with JSON; a browser form keeps Django's CSRF check",
    ): "an excerpt of examples/frameworks_django.py (run by tests/test_examples.py)",
    (
        "docs/repository.md",
        "from commercekit.repository import Database, ReplicatedTopology, RoutingPolicy, "
        "ReadSettings",
    ): "needs a PostgreSQL primary and two replicas (db1, db2, db3) and a web request",
    ("docs/repository.md", "for group in topology_groups:  # one for an unsharded topology"): (
        "a fragment of Alembic's env.py, which Alembic runs"
    ),
    ("docs/repository.md", "from commercekit.repository import Outbox"): (
        "continues the PostgreSQL example above (db, Order, order) with a relay's publish"
    ),
    (
        "docs/tutorial.md",
        "topology = ReplicatedTopology.from_urls(settings.database_url, "
        "list(settings.replica_urls))",
    ): "an excerpt of examples/shop/root.py, which the shop's tests run",
}


def _no_run_blocks() -> dict[tuple[str, str], str]:
    """Every ``python no-run`` block of the docs, by (file, first line): its source."""
    found = {}
    for doc in DOCS:
        for _, source, runs in python_blocks(doc.read_text()):
            if not runs:
                found[(str(doc.relative_to(ROOT)), source.splitlines()[0])] = source
    return found


def test_every_block_that_does_not_run_says_why() -> None:
    found = _no_run_blocks()
    unlisted = sorted(set(found) - set(NO_RUN))
    assert not unlisted, f"python no-run blocks not listed in NO_RUN with a reason: {unlisted}"
    stale = sorted(set(NO_RUN) - set(found))
    assert not stale, f"NO_RUN lists blocks that run now or are gone: {stale}"


def test_the_imports_of_blocks_that_do_not_run_resolve() -> None:
    # A block that cannot run still names real modules and names: its imports run.
    for (doc, _), source in _no_run_blocks().items():
        tree = ast.parse(source)  # parsed, not compiled: a top-level await is no error here
        imports = [n for n in tree.body if isinstance(n, ast.Import | ast.ImportFrom)]
        if imports:
            module = ast.Module(body=imports, type_ignores=[])
            exec(compile(module, doc, "exec", dont_inherit=True), {"__name__": "doc_imports"})


def test_the_block_finder_reads_fences_and_info_strings() -> None:
    text = "intro\n```python\nx = 1\n```\n```sh\nls\n```\n```python no-run\nserve()\n```\n"
    assert python_blocks(text) == [(3, "x = 1\n", True), (9, "serve()\n", False)]


@pytest.mark.parametrize("doc", DOCS, ids=lambda p: str(p.relative_to(ROOT)))
def test_every_python_block_runs(
    doc: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    blocks = python_blocks(doc.read_text())
    if not blocks:
        pytest.skip("no Python blocks")
    monkeypatch.chdir(tmp_path)
    # The folder the CDN examples serve, with the image they ask for.
    (tmp_path / "static").mkdir()
    (tmp_path / "static" / "shoe.jpg").write_bytes(b"\xff\xd8\xff\xe0" + bytes(2048))
    namespace: dict[str, object] = {"__name__": f"doc_{doc.stem}"}
    for line, source, runs in blocks:
        # A no-run block may await at top level, as it would inside a handler.
        flags = 0 if runs else ast.PyCF_ALLOW_TOP_LEVEL_AWAIT
        # dont_inherit: this test module's `from __future__ import annotations` must not
        # turn a block's annotations into strings (SQLAlchemy's Mapped[...] columns would
        # then be looked up in a module that does not exist).
        code = compile(
            source, f"{doc.relative_to(ROOT)}:{line}", "exec", flags=flags, dont_inherit=True
        )
        if runs:
            exec(code, namespace)
    assert os.getcwd() == str(tmp_path)
