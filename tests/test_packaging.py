"""The wheel built from a checkout carries py.typed and the package's modules."""

from __future__ import annotations

import json
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

ROOT = Path(__file__).parent.parent


def _wheel(source: Path, out: Path) -> zipfile.ZipFile:
    subprocess.run(
        [
            *(sys.executable, "-m", "pip", "wheel", "--no-deps", "--quiet"),
            # The build backend is in the dev group: no isolated environment to create.
            "--no-build-isolation",
            *("-w", str(out), str(source)),
        ],
        check=True,
        timeout=300,
        capture_output=True,
    )
    [wheel] = out.glob("commercekit-*.whl")
    return zipfile.ZipFile(wheel)


def _version_of(wheel: zipfile.ZipFile) -> str:
    return Path(str(wheel.filename)).name.split("-")[1]


def test_wheel_carries_py_typed_and_the_version_from_git(tmp_path: Path) -> None:
    wheel = _wheel(ROOT, tmp_path)
    names = wheel.namelist()
    assert "commercekit/py.typed" in names
    assert "commercekit/metrics/__init__.py" in names
    assert not any(name.startswith(("tests/", "benchmarks/")) for name in names)
    # hatch-vcs: the version is the git tag's, or a .devN after the last one (or after none).
    version = _version_of(wheel)
    assert f"__version__ = version = '{version}'" in wheel.read("commercekit/_version.py").decode()


def test_a_source_archive_without_git_history_builds_with_the_fallback_version(
    tmp_path: Path,
) -> None:
    import tarfile
    import tomllib

    if not (ROOT / ".git").exists():
        pytest.skip("not a git checkout")
    archive = tmp_path / "source.tar"
    subprocess.run(
        ["git", "-C", str(ROOT), "archive", "--format=tar", "-o", str(archive), "HEAD"],
        check=True,
        timeout=60,
    )
    source = tmp_path / "source"
    with tarfile.open(archive) as tar:
        tar.extractall(source, filter="data")
    fallback = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["hatch"]["version"]
    wheel = _wheel(source, tmp_path / "out")
    assert _version_of(wheel) == fallback["fallback-version"]


def test_dev_tools_are_a_dependency_group_not_an_extra() -> None:
    import tomllib

    config = tomllib.loads((ROOT / "pyproject.toml").read_text())
    extras = config["project"]["optional-dependencies"]
    assert "dev" not in extras  # PEP 735: tools are not published with the package
    tools = {d.split(">")[0] for d in config["dependency-groups"]["dev"]}
    assert {"pytest", "hypothesis", "ruff", "mypy"} <= tools
    assert "--group dev" in (ROOT / "Makefile").read_text()


def _dependencies() -> list[str]:
    import tomllib

    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    return [d.split(">")[0].split("[")[0].strip().lower() for d in project["dependencies"]]


def test_every_runtime_dependency_is_imported_by_src() -> None:
    sources = "\n".join(p.read_text() for p in (ROOT / "src").rglob("*.py"))
    modules = {"attrs": "attrs", "sqlalchemy": "sqlalchemy", "xxhash": "xxhash"}
    for dependency in _dependencies():
        module = modules.get(dependency, dependency.replace("-", "_"))
        assert f"import {module}" in sources or f"from {module}" in sources, dependency
    assert "cachetools" not in _dependencies()


def test_importing_payments_does_not_import_sqlalchemy() -> None:
    probe = "import sys, commercekit.payments as p; print('sqlalchemy' in sys.modules)"
    out = subprocess.run(
        [sys.executable, "-c", probe], check=True, capture_output=True, text=True, timeout=120
    ).stdout
    assert out.strip() == "False"


EXTRA_USES = [
    ("httpx", "from commercekit.payments import HttpxTransport; HttpxTransport()", "http"),
    (
        "httpx",
        "from commercekit.payments import AsyncHttpxTransport; AsyncHttpxTransport()",
        "http",
    ),
    ("aiohttp", "from commercekit.payments import AiohttpTransport; AiohttpTransport()", "http"),
    ("prometheus_client", "from commercekit.metrics import PrometheusMetrics", "prometheus"),
    (
        "prometheus_client",
        "from commercekit.analytics.__main__ import _metrics_server; _metrics_server(0, '::1')",
        "prometheus",
    ),
    ("opentelemetry", "from commercekit.metrics import OpenTelemetryMetrics", "otel"),
    ("redis", "from commercekit.analytics._logs._redis import _redis; _redis()", "redis"),
    ("nats", "from commercekit.analytics._logs._nats import _nats; _nats()", "nats"),
    ("alembic", "from commercekit.commerce.migrations import upgrade; upgrade(None)", "migrations"),
    ("httpx", "from commercekit.cdn import HttpOrigin; HttpOrigin('http://127.0.0.1:1')", "cdn"),
    ("httpx", "from commercekit.cdn import CloudflarePurger; CloudflarePurger('z', 't')", "cdn"),
    ("redis", "from commercekit.cdn import RedisStore; RedisStore.from_url('redis://x')", "redis"),
    # The probe has imported commercekit.cdn with httptools blocked: only the server needs it.
    ("httptools", "from commercekit.cdn._servers._http1 import _httptools; _httptools()", "cdn"),
    (
        "httpx",
        "from commercekit.cdn._servers._admin import FanOutAdmin; FanOutAdmin([], token='')",
        "cdn",
    ),
    (
        "uvloop",
        "import asyncio; from commercekit.cdn.__main__ import _run; "
        "_run('uvloop', asyncio.sleep(0))",
        "cdn",
    ),
    (
        "redis",
        "from commercekit.commerce.cart import RedisCartStore; RedisCartStore.from_url('redis://x')",
        "redis",
    ),
    (
        "pymysql",
        "from commercekit.repository import engine_from_url; engine_from_url('mysql://x/db')",
        "mysql",
    ),
    (
        "psycopg",
        "from commercekit.repository import engine_from_url; engine_from_url('postgresql://x/db')",
        "postgres",
    ),
    (
        "psycopg",
        "from commercekit.repository import async_engine_from_url; async_engine_from_url('postgresql://x/db')",
        "postgres",
    ),
    (
        "aiosqlite",
        "from commercekit.repository import async_engine_from_url; async_engine_from_url('sqlite://')",
        "asyncio",
    ),
    (
        "asyncmy",
        "from commercekit.repository import async_engine_from_url; async_engine_from_url('mysql://x/db')",
        "mysql-asyncio",
    ),
]

PROBE = """
import json, sys
from commercekit.errors import ConfigurationError, MissingExtraError
for module in {modules!r}:
    sys.modules[module] = None  # as if its extra were not installed
said = []
for call in {calls!r}:
    try:
        exec(call.replace("; ", "\\n"))
    except MissingExtraError as exc:
        assert isinstance(exc, ImportError) and isinstance(exc, ConfigurationError)
        said.append(str(exc))
    else:
        said.append("no error")
print(json.dumps(said))
"""


def test_each_optional_dependency_says_which_extra_installs_it() -> None:
    # One process for every case (each blocks its modules first), to keep the run short.
    probe = PROBE.format(
        modules=sorted({module for module, _, _ in EXTRA_USES}),
        calls=[call for _, call, _ in EXTRA_USES],
    )
    result = subprocess.run(
        [sys.executable, "-c", probe], capture_output=True, text=True, timeout=120, check=False
    )
    assert result.returncode == 0, result.stderr
    said = json.loads(result.stdout)
    for (_, call, extra), message in zip(EXTRA_USES, said, strict=True):
        assert f"needs the [{extra}] extra" in message, (call, message)
        assert f"pip install 'commercekit[{extra}]'" in message, (call, message)


def test_require_returns_the_module_or_says_how_to_install_it() -> None:
    from commercekit._extras import require
    from commercekit.errors import MissingExtraError

    assert require("json", extra="none", feature="JSON") is json
    with pytest.raises(MissingExtraError) as caught:
        require("commercekit_no_such_module", extra="thing", feature="The thing")
    assert str(caught.value) == (
        "The thing needs the [thing] extra (commercekit_no_such_module is not installed): "
        "pip install 'commercekit[thing]'"
    )


# Imports of optional packages that need no require() of their own, and why. Every other
# import in src/ of a package that is not a runtime dependency must sit in a module that
# calls require() for it, under ``if TYPE_CHECKING:``, or in a ``try`` that catches
# ImportError (a probe with a fallback).
OPTIONAL_IMPORTS_ALLOWED: dict[str, str] = {
    "commerce/_alembic/": "migration scripts that Alembic runs, after upgrade() required it",
    "metrics/_otel.py": "loaded only by commercekit.metrics.__getattr__, through missing_extra",
    "metrics/_prometheus.py": "loaded only by commercekit.metrics.__getattr__ (missing_extra)",
    "payments/_transports/_aiohttp.py:yarl": "aiohttp's own dependency, after require(aiohttp)",
    "repository/_engines/_deadlines.py:psycopg": "a psycopg engine's, whose driver was required",
}


def _optional_imports() -> list[tuple[str, str]]:
    """(path under src/commercekit/, top-level package) of each optional import not required."""
    import ast
    import re
    import tomllib

    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    runtime = {
        re.split(r"[<>=\[; ]", d)[0].lower().replace("-", "_") for d in project["dependencies"]
    }
    known = set(sys.stdlib_module_names) | runtime | {"commercekit", "__future__"}

    def type_checking(test: ast.expr) -> bool:
        return "TYPE_CHECKING" in ast.unparse(test)

    found: list[tuple[str, str]] = []
    package = ROOT / "src" / "commercekit"
    for path in sorted(package.rglob("*.py")):
        text = path.read_text()
        required = set(re.findall(r'require\(\s*"([A-Za-z_]+)', text))
        todo: list[ast.AST] = [ast.parse(text)]
        while todo:
            node = todo.pop()
            for child in ast.iter_child_nodes(node):
                if isinstance(child, ast.If) and type_checking(child.test):
                    todo.extend(child.orelse)
                    continue
                if isinstance(child, ast.Try) and any(
                    h.type is not None and "ImportError" in ast.unparse(h.type)
                    for h in child.handlers
                ):
                    todo.extend([*child.handlers, *child.orelse, *child.finalbody])
                    continue
                names: list[str] = []
                if isinstance(child, ast.Import):
                    names = [alias.name for alias in child.names]
                elif isinstance(child, ast.ImportFrom) and child.level == 0 and child.module:
                    names = [child.module]
                for name in names:
                    top = name.split(".")[0]
                    if top not in known and top not in required:
                        found.append((path.relative_to(package).as_posix(), top))
                todo.append(child)
    return sorted(set(found))


def test_every_optional_import_goes_through_require() -> None:
    def allowed(where: str, top: str) -> bool:
        return any(
            f"{where}:{top}" == key or where == key or (key.endswith("/") and where.startswith(key))
            for key in OPTIONAL_IMPORTS_ALLOWED
        )

    found = _optional_imports()
    loose = [f"{where}: {top}" for where, top in found if not allowed(where, top)]
    assert not loose, (
        f"optional packages imported without require() (commercekit._extras): {loose}; a "
        "missing one must raise MissingExtraError naming its extra"
    )
    stale = [
        key
        for key in OPTIONAL_IMPORTS_ALLOWED
        if not any(
            f"{where}:{top}" == key or where == key or (key.endswith("/") and where.startswith(key))
            for where, top in found
        )
    ]
    assert not stale, f"remove these fixed entries from OPTIONAL_IMPORTS_ALLOWED: {stale}"
