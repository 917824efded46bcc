"""The ledger command line (`make import-ledger`, `make run`) on a fresh SQLite file."""

from __future__ import annotations

import csv
import os
import sqlite3
import subprocess
import sys
from pathlib import Path

import pytest
from ledger_files import UNIT_HEADER, unit, write_pair

API_DIR = Path(__file__).resolve().parents[3] / "api"

pytestmark = pytest.mark.slow


def _cli(db_path: Path, *args: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "DATABASE_URL": f"sqlite:///{db_path}", "PYTHONDONTWRITEBYTECODE": "1"}
    return subprocess.run(
        [sys.executable, "-m", "app.ledger.cli", *args],
        cwd=API_DIR,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )


def _count(db_path: Path, table: str) -> int:
    with sqlite3.connect(db_path) as conn:
        return int(conn.execute(f"SELECT count(*) FROM {table}").fetchone()[0])


def test_import_exits_1_and_imports_nothing_on_a_bad_file(tmp_path: Path) -> None:
    db_path = tmp_path / "cli.db"
    projects, units = write_pair(tmp_path)
    bad = tmp_path / "bad.csv"
    rows = [unit(), unit(**{"转移登记": "不知道"})]
    with bad.open("w", newline="", encoding="utf-8") as fh:
        writer = csv.writer(fh)
        writer.writerow(UNIT_HEADER)
        writer.writerows([[r[h] for h in UNIT_HEADER] for r in rows])

    ok = _cli(db_path, "import", str(projects))
    assert ok.returncode == 0, ok.stderr
    assert "项目：新增 2" in ok.stdout

    failed = _cli(db_path, "import", str(bad))
    assert failed.returncode == 1
    assert "工作表" in failed.stderr and "原因" in failed.stderr
    assert "bad.csv  3" in failed.stderr and "转移登记只能填" in failed.stderr
    assert _count(db_path, "unit") == 0  # row 2 was fine, but nothing is half-imported

    again = _cli(db_path, "import", str(units))
    assert again.returncode == 0, again.stderr
    assert _count(db_path, "unit") == 3
    same = _cli(db_path, "import", str(units))
    assert same.returncode == 0 and "没有任何改动" in same.stdout

    missing = _cli(db_path, "import", str(tmp_path / "nope.csv"))
    assert missing.returncode != 0 and "文件不存在" in missing.stderr


def test_load_demo_fills_an_empty_database_only_and_prints_nothing_personal(
    tmp_path: Path,
) -> None:
    demo_units = API_DIR / "app" / "ledger" / "demo_data" / "units.csv"
    db_path = tmp_path / "demo.db"

    first = _cli(db_path, "load-demo")
    assert first.returncode == 0, first.stderr
    projects = _count(db_path, "project")
    assert projects > 0 and _count(db_path, "unit") > 0
    assert f"{projects} 个项目" in first.stdout
    with demo_units.open(encoding="utf-8-sig") as fh:
        personal = {
            v for row in csv.DictReader(fh) for v in (row["业主姓名"], row["身份证号"]) if v
        }
    output = first.stdout + first.stderr
    assert not [v for v in personal if v in output]

    audits = _count(db_path, "audit_log")
    second = _cli(db_path, "load-demo")
    assert second.returncode == 0 and "跳过" in second.stdout
    assert _count(db_path, "project") == projects
    assert _count(db_path, "audit_log") == audits
