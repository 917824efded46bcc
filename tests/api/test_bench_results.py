"""The bench's JSON record and its summary: figures kept per section, goals judged by number."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "bench"))

import results  # noqa: E402
import summary  # noqa: E402


def test_sections_accumulate_in_one_run_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    run = tmp_path / "run.json"
    monkeypatch.setenv("BENCH_RESULTS", str(run))
    results.record("lookup", {"ratio": 0.31}, goals={"ratio": ">= 0.30"})
    results.record("import", {"rows_per_s": 70000}, goals={"rows_per_s": "> 65000"})
    results.record("lookup", {"ratio": 0.35}, goals={"ratio": ">= 0.30"})  # replaced, not added
    data = json.loads(run.read_text(encoding="utf-8"))
    assert set(data["sections"]) == {"lookup", "import"}
    assert data["sections"]["lookup"]["figures"] == {"ratio": 0.35}
    assert data["machine"]["cpus"]


def test_a_bench_on_its_own_writes_its_own_file(tmp_path: Path, monkeypatch):
    monkeypatch.delenv("BENCH_RESULTS", raising=False)
    monkeypatch.setattr(results, "RESULTS_DIR", tmp_path)
    path = results.record("bot", {"p95_ms": 120.0})
    assert path.parent == tmp_path and path.name.startswith("bot-")


def test_summary_judges_goals_and_exits_1_on_a_miss(tmp_path: Path, monkeypatch, capsys):
    run = tmp_path / "run.json"
    monkeypatch.setenv("BENCH_RESULTS", str(run))
    results.record(
        "staff",
        {"list": {"p95_ms": 120.0}, "dashboard": {"p95_ms": 480.0}},
        goals={"p95_ms": "< 500 per page"},
    )
    assert summary.main([str(run)]) == 0
    out = capsys.readouterr().out
    assert "list.p95_ms" in out and "dashboard.p95_ms" in out and "every goal met" in out
    results.record("staff", {"dashboard": {"p95_ms": 700.0}}, goals={"p95_ms": "< 500"})
    results.record("lookup", {"ratio": 0.2}, goals={"ratio": ">= 0.30", "p95_ms": "< 20"})
    assert summary.main([str(run)]) == 1
    out = capsys.readouterr().out
    assert "MISSED" in out and "MISSING" in out and "3 goal(s) missed" in out
