"""``open_log`` URLs: an absolute SQLite path keeps its leading slash, relative stays relative."""

from __future__ import annotations

from pathlib import Path

import pytest

from commercekit.analytics import JsonLinesLog, LogRecord, SqlEventLog, open_log


def _round_trip(log: object) -> None:
    assert isinstance(log, SqlEventLog | JsonLinesLog)
    log.publish([LogRecord("e1", b"{}")])
    assert [d.event_id for d in log.consume(10, 0)] == ["e1"]
    log.close()


def test_an_absolute_sqlite_path_keeps_its_leading_slash(tmp_path: Path) -> None:
    path = tmp_path / "deep" / "log.db"
    path.parent.mkdir()
    _round_trip(open_log(f"sqlite:///{path}?group=g"))  # sqlite:////tmp/...
    assert path.exists()


def test_relative_paths_stay_relative(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    _round_trip(open_log("sqlite:///rel.db?group=g"))
    _round_trip(open_log("sql+sqlite:///rel2.db"))
    _round_trip(open_log("jsonl://events/e.jsonl"))
    assert {p.name for p in tmp_path.rglob("*") if p.is_file()} >= {"rel.db", "rel2.db", "e.jsonl"}
