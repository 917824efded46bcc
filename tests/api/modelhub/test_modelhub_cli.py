"""`python -m app.modelhub.cli register-live PATH` as `make run` calls it: a fresh SQLite file is
migrated, the model registered live, a second run changes nothing, another model while one is
live becomes a candidate; a real model of bot/models/ is read the same way when there is one."""

from __future__ import annotations

import json
import os
import sqlite3
import subprocess
import sys
from pathlib import Path

import pytest
from modelhub.hubkit import make_archive

API_DIR = Path(__file__).resolve().parents[3] / "api"
BOT_MODELS = API_DIR.parent / "bot" / "models"


def _cli(tmp_path: Path, *args: str) -> subprocess.CompletedProcess[str]:
    env = {
        **os.environ,
        "DATABASE_URL": f"sqlite:///{tmp_path / 'cli.db'}",
        "MODEL_CANDIDATES_DIR": str(tmp_path / "registry"),
        "PYTHONDONTWRITEBYTECODE": "1",
    }
    return subprocess.run(
        [sys.executable, "-m", "app.modelhub.cli", *args],
        cwd=API_DIR,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )


def _rows(tmp_path: Path) -> list[tuple[int, str, str]]:
    with sqlite3.connect(tmp_path / "cli.db") as conn:
        return conn.execute("SELECT id, status, fingerprint FROM nlu_model ORDER BY id").fetchall()


def test_register_live_on_a_fresh_database_is_idempotent(tmp_path):
    """Folder → its newest model, registered live; again: nothing; another: a candidate."""
    models = tmp_path / "bot-models"
    first = make_archive(models, model_id="f" * 32)
    done = _cli(tmp_path, "register-live", str(models))
    assert done.returncode == 0, done.stderr
    assert "已登记现网模型 #1" in done.stdout and "f" * 32 in done.stdout
    assert _rows(tmp_path) == [(1, "live", "f" * 32)]
    assert (tmp_path / "registry" / "model-1.tar.gz").read_bytes() == first.read_bytes()
    again = _cli(tmp_path, "register-live", str(first))
    assert again.returncode == 0 and "无需改动" in again.stdout
    assert len(_rows(tmp_path)) == 1
    other = make_archive(tmp_path / "other")
    third = _cli(tmp_path, "register-live", str(other))
    assert third.returncode == 0 and "候选模型 #2" in third.stdout
    assert [r[1] for r in _rows(tmp_path)] == ["live", "candidate"]
    listed = _cli(tmp_path, "list")
    assert "现网" in listed.stdout and "候选" in listed.stdout


def test_metrics_file_is_recorded(tmp_path):
    """--metrics FILE: its figures are the live model's."""
    summary = tmp_path / "summary.json"
    summary.write_text(json.dumps({"intent_macro_f1": 0.9, "per_intent": {}}), encoding="utf-8")
    done = _cli(
        tmp_path, "register-live", str(make_archive(tmp_path / "m")), "--metrics", str(summary)
    )
    assert done.returncode == 0, done.stderr
    with sqlite3.connect(tmp_path / "cli.db") as conn:
        (raw,) = conn.execute("SELECT metrics FROM nlu_model").fetchone()
    assert json.loads(raw)["intent_macro_f1"] == 0.9


def test_missing_or_bad_model_is_a_chinese_error(tmp_path):
    """No model in the folder, or not a Rasa model: exit 1 with a Chinese message."""
    empty = tmp_path / "empty"
    empty.mkdir()
    done = _cli(tmp_path, "register-live", str(empty))
    assert done.returncode == 1 and "make train" in done.stderr
    bad = tmp_path / "bad.tar.gz"
    bad.write_bytes(b"\x1f\x8b not really")
    done = _cli(tmp_path, "register-live", str(bad))
    assert done.returncode == 1 and "不是有效的 Rasa 模型" in done.stderr


@pytest.mark.skipif(not list(BOT_MODELS.glob("*.tar.gz")), reason="no model trained yet")
def test_a_real_rasa_model_is_read_by_its_metadata(tmp_path):
    """A model `make train` built: fingerprint = its metadata.json model_id, data hash = the
    file name's hash (scripts/train.sh)."""
    import tarfile

    model = max(BOT_MODELS.glob("*.tar.gz"), key=lambda p: p.stat().st_mtime)
    with tarfile.open(model) as archive:
        handle = archive.extractfile("metadata.json")
        assert handle is not None
        model_id = json.load(handle)["model_id"]
    done = _cli(tmp_path, "register-live", str(model))
    assert done.returncode == 0, done.stderr
    assert _rows(tmp_path)[0][1:] == ("live", model_id)
    with sqlite3.connect(tmp_path / "cli.db") as conn:
        (data_hash,) = conn.execute("SELECT data_hash FROM nlu_model").fetchone()
    assert data_hash == model.name.removesuffix(".tar.gz")
