"""A database that is away, silent or busy answers a Chinese 503 with Retry-After (issue 13), not
the generic 500: SQLite's "database is locked" through the real routes, and which errors count
(a wrong statement stays a 500). The same on PostgreSQL through a cut proxy: test_faults.py."""

from __future__ import annotations

import logging
import os
import sqlite3
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import text
from sqlalchemy.engine import Engine
from sqlalchemy.exc import IntegrityError, OperationalError
from sqlalchemy.exc import TimeoutError as SATimeoutError
from sqlalchemy.orm import Session, sessionmaker
from sqlalchemy.pool import QueuePool

from app.core.config import settings
from app.core.database import database_unavailable, get_db, make_engine

API_DIR = Path(__file__).resolve().parents[2] / "api"
PG_URL = os.environ.get("TEST_POSTGRES_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/test")
NAME, PHONE, ID_NUMBER = "诸葛晓春", "13766665555", "370202196612124417"
PETITION = {
    "person_name": NAME,
    "phone": PHONE,
    "address": "幸福里小区5号楼1单元302",
    "description": f"开发商跑了，身份证{ID_NUMBER}。",
    "consent": True,
    "channel": "webchat",
}


def _migrate(engine: Engine) -> None:
    from alembic import command
    from alembic.config import Config

    cfg = Config(str(API_DIR / "alembic.ini"))
    cfg.set_main_option("script_location", str(API_DIR / "alembic"))
    with engine.begin() as conn:
        cfg.attributes["connection"] = conn
        command.upgrade(cfg, "head")


@pytest.fixture
def sqlite_file(tmp_path: Path) -> Iterator[tuple[Path, Engine]]:
    """A migrated SQLite file and an engine on it that waits 0.1 s for a lock."""
    path = tmp_path / "busy.db"
    engine = make_engine(
        f"sqlite:///{path}", connect_args={"check_same_thread": False, "timeout": 0.1}
    )
    _migrate(engine)
    yield path, engine
    engine.dispose()


@pytest.fixture
def busy_client(sqlite_file: tuple[Path, Engine]) -> Iterator[TestClient]:
    """The app with its requests' sessions on that file."""
    from app.main import app

    factory = sessionmaker(bind=sqlite_file[1], autoflush=False, expire_on_commit=False)

    def _override() -> Iterator[Session]:
        db = factory()
        try:
            yield db
            db.commit()
        except Exception:
            db.rollback()
            raise
        finally:
            db.close()

    app.dependency_overrides[get_db] = _override
    with TestClient(app) as client:
        yield client
    app.dependency_overrides.pop(get_db, None)


def test_sqlite_locked_answers_a_chinese_503(
    sqlite_file: tuple[Path, Engine], busy_client: TestClient, caplog: pytest.LogCaptureFixture
) -> None:
    """Another writer holds the file (an import, a backup): the petition is answered at once with
    503, Retry-After and a Chinese message, logged once without what the resident typed; once
    the lock is gone the same request goes through."""
    holder = sqlite3.connect(sqlite_file[0])
    holder.execute("BEGIN EXCLUSIVE")
    try:
        with caplog.at_level(logging.INFO):
            r = busy_client.post("/api/v1/petitions", json=PETITION)
    finally:
        holder.rollback()
        holder.close()
    assert r.status_code == 503, r.text
    assert r.json()["code"] == "database_unavailable"
    assert "请稍后再试" in r.json()["message"]
    assert r.headers["retry-after"] == "5"
    lines = [
        rec.getMessage() for rec in caplog.records if "database unavailable" in rec.getMessage()
    ]
    assert lines == ["database unavailable (OperationalError/OperationalError) on POST /petitions"]
    for value in (NAME, PHONE, ID_NUMBER):
        assert value not in r.text and value not in caplog.text
    r = busy_client.post("/api/v1/petitions", json=PETITION)
    assert r.status_code == 201 and r.json()["number"].startswith("XF-"), r.text


def test_a_wrong_statement_is_still_a_500(
    sqlite_file: tuple[Path, Engine], busy_client: TestClient
) -> None:
    """SQLite reports a missing table as an OperationalError too: that is a bug, not a busy
    database, and keeps the edge's 500."""
    with sqlite_file[1].begin() as conn:
        conn.execute(text("ALTER TABLE petition RENAME TO petition_away"))
    r = busy_client.post("/api/v1/petitions", json=PETITION)
    assert r.status_code == 500 and r.json()["code"] == "server_error", r.text


def test_which_errors_mean_the_database_is_unavailable(tmp_path: Path) -> None:
    engine = make_engine(f"sqlite:///{tmp_path / 'x.db'}")
    with engine.begin() as conn:
        conn.execute(text("CREATE TABLE t (id INTEGER PRIMARY KEY)"))
        conn.execute(text("INSERT INTO t VALUES (1)"))
    errors: list[BaseException] = []
    for statement in ("SELECT * FROM nope", "INSERT INTO t VALUES (1)"):
        with pytest.raises((OperationalError, IntegrityError)) as err, engine.begin() as conn:
            conn.execute(text(statement))
        errors.append(err.value)
    engine.dispose()
    assert [database_unavailable(e) for e in errors] == [False, False]
    assert database_unavailable(SATimeoutError("QueuePool limit reached"))
    assert not database_unavailable(ValueError("x"))

    # PostgreSQL not listening: connection refused, at once.
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    down = make_engine(f"postgresql+psycopg://postgres@127.0.0.1:{port}/test")
    with pytest.raises(OperationalError) as err, down.connect():
        pass
    down.dispose()
    assert database_unavailable(err.value)


def test_postgresql_connections_are_bounded_and_keep_the_callers_options() -> None:
    """connect_timeout and TCP keepalives from the settings, every answer waited for at most
    DATABASE_WAIT_TIMEOUT; a caller's own connect_args (a test's search_path) are kept."""
    engine = make_engine(PG_URL, connect_args={"options": "-csearch_path=public"})
    try:
        with engine.connect() as conn:
            assert conn.execute(text("SHOW search_path")).scalar() == "public"
            dbapi = conn.connection.dbapi_connection
            assert dbapi is not None
            params = dbapi.info.get_parameters()
            kind = type(dbapi).__name__
    except OperationalError as exc:  # pragma: no cover - depends on the machine
        pytest.skip(f"PostgreSQL unreachable: {exc}")
    finally:
        engine.dispose()
    assert kind == "BoundedConnection"
    assert params["connect_timeout"] == str(settings.database_connect_timeout)
    assert params["keepalives"] == "1" and int(params["tcp_user_timeout"]) > 0
    assert params["options"] == "-csearch_path=public"
    assert isinstance(engine.pool, QueuePool)
    assert engine.pool.timeout() == settings.database_pool_timeout


def test_a_silent_live_connection_is_given_up(monkeypatch: pytest.MonkeyPatch) -> None:
    """A statement whose answer does not come within DATABASE_WAIT_TIMEOUT (here the server
    sleeps; a frozen server looks the same from here): the connection is closed and dropped,
    the error is one that answers the 503, and the next checkout gets a fresh connection."""
    monkeypatch.setattr(settings, "database_wait_timeout", 0.5)
    engine = make_engine(PG_URL, pool_size=1, max_overflow=0)
    try:
        start = time.monotonic()
        with pytest.raises(OperationalError) as err, engine.connect() as conn:
            conn.execute(text("SELECT pg_sleep(5)"))
        assert time.monotonic() - start < 3
        assert err.value.connection_invalidated and database_unavailable(err.value)
        with engine.connect() as conn:
            assert conn.execute(text("SELECT 1")).scalar() == 1
    finally:
        engine.dispose()


def test_a_connection_cut_between_requests_is_a_503_never_a_500() -> None:
    """Real PostgreSQL through a proxy that resets every connection: the checkout's ping on a
    pooled connection that was cut is taken for a disconnect whatever psycopg raises (it can be
    ProgrammingError "can't change 'autocommit' now", seen as a 500 in a clean-clone run), so
    every failure is one the api answers with the Chinese 503."""
    import sys

    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
    from faultproxy import FaultProxy

    failures: list[BaseException] = []
    with FaultProxy(("127.0.0.1", 5432)) as proxy:
        engine = make_engine(PG_URL.replace(":5432/", f":{proxy.port}/"), pool_size=2)
        try:
            for i in range(120):
                proxy.pass_()
                with engine.connect() as conn:
                    conn.execute(text("SELECT 1"))
                proxy.cut()
                time.sleep(0.001 * (i % 20))
                try:
                    with engine.connect() as conn:
                        conn.execute(text("SELECT 1"))
                except Exception as exc:  # noqa: BLE001  (every kind is what is checked)
                    failures.append(exc)
        finally:
            engine.dispose()
    assert failures, "the cut reached no connection"
    assert all(database_unavailable(e) for e in failures), {type(e).__name__ for e in failures}


def test_a_ping_that_psycopg_refuses_drops_the_connection() -> None:
    """The deterministic half: a pooled connection left inside a transaction makes psycopg
    refuse the ping's autocommit switch (ProgrammingError); the engine treats the failed ping
    as a disconnect (the pool reconnects) instead of raising it to the request."""
    engine = make_engine(PG_URL, pool_size=1, max_overflow=0)
    try:
        raw = engine.raw_connection()
        dbapi = raw.dbapi_connection
        dbapi.execute("SELECT 1")  # psycopg opens a transaction: status INTRANS
        assert engine.dialect._do_ping_w_event(dbapi) is False
        raw.invalidate()
    finally:
        engine.dispose()
