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
        code = compile(source, f"{doc.relative_to(ROOT)}:{line}", "exec", flags=flags)
        if runs:
            exec(code, namespace)
    assert os.getcwd() == str(tmp_path)
