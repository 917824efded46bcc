"""`alembic upgrade head` as compose, the e2e stack and the k8s migrate Job run it: its own engine,
each migration committed on its own (SQLite has no transactional DDL), on a fresh database of
each backend. A listener that writes at commit (the ledger token) must not reach for a table a
later migration makes: the in-process fixtures migrate in one transaction and cannot see that."""

from __future__ import annotations

import os
import subprocess
import sys
import uuid
from pathlib import Path

import pytest
from sqlalchemy import create_engine, inspect, text

API_DIR = Path(__file__).resolve().parents[2] / "api"
PG_URL = os.environ.get("TEST_POSTGRES_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/test")


def _upgrade(url: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "DATABASE_URL": url}
    return subprocess.run(
        [sys.executable, "-m", "alembic", "upgrade", "head"],
        cwd=API_DIR,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )


def test_a_fresh_sqlite_database_migrates_with_the_cli(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'fresh.db'}"
    done = _upgrade(url)
    assert done.returncode == 0, done.stderr[-3000:]
    engine = create_engine(url)
    try:
        tables = set(inspect(engine).get_table_names())
        assert {"ledger_version", "unit_tally", "petition_tally", "unit"} <= tables
        with engine.connect() as conn:
            assert conn.execute(text("SELECT count(*) FROM ledger_version")).scalar_one() == 1
    finally:
        engine.dispose()


def test_a_fresh_postgresql_schema_migrates_with_the_cli() -> None:
    schema = f"mig_{uuid.uuid4().hex[:8]}"
    admin = create_engine(PG_URL)
    try:
        with admin.begin() as conn:
            conn.execute(text(f'CREATE SCHEMA "{schema}"'))
    except Exception as exc:  # pragma: no cover - depends on the machine
        admin.dispose()
        if os.environ.get("CI") == "true":
            pytest.fail(f"PostgreSQL at {PG_URL} is required under CI: {exc}")
        pytest.skip(f"PostgreSQL unreachable: {exc}")
    try:
        done = _upgrade(f"{PG_URL}?options=-csearch_path%3D{schema}")
        assert done.returncode == 0, done.stderr[-3000:]
        with admin.connect() as conn:
            n = conn.execute(text(f'SELECT count(*) FROM "{schema}".ledger_version')).scalar_one()
        assert n == 1
    finally:
        with admin.begin() as conn:
            conn.execute(text(f'DROP SCHEMA "{schema}" CASCADE'))
        admin.dispose()
