"""No personal data in any log, whatever fails (issue 13), on the real api process (uvicorn, its
own logging) against SQLite and the real PostgreSQL: a control character in a public field is
refused at the edge with a Chinese 422; a database error while a petition is stored answers a
Chinese 500, logged once by our handler with the error's type and the route only — the
resident's name, phone and ID number appear nowhere in what the process printed, and
SQLAlchemy's statement parameters are hidden even from the exception itself."""

from __future__ import annotations

import httpx
import pytest
from live_api import live_api as _api
from notify.outbox_fixtures import committed_db  # noqa: F401
from sqlalchemy import text
from sqlalchemy.exc import StatementError

from app.core.database import make_engine

NAME, PHONE, ID_NUMBER = "欧阳娜娜", "13987654321", "370202198001011234"
PETITION = {
    "person_name": NAME,
    "phone": PHONE,
    "address": "幸福里小区5号楼1单元302",
    "description": f"住了八年还没有房本，身份证{ID_NUMBER}，开发商联系不上。",
    "consent": True,
    "channel": "webchat",
}
PERSONAL = (NAME, PHONE, ID_NUMBER, ID_NUMBER[-6:], PHONE[-4:] + "'")


def _control_characters() -> list[str]:
    return [chr(c) for c in (*range(0x00, 0x09), 0x0B, 0x0C, *range(0x0E, 0x20), 0x7F)]


def test_control_characters_are_refused_at_the_edge(committed_db, tmp_path) -> None:  # noqa: F811
    """NUL (PostgreSQL cannot store it: a 500 before) and every other control character but
    newline, carriage return and tab: 422 in Chinese naming the field, for JSON and form bodies
    and query strings; newlines, tabs and Chinese punctuation go through."""
    log = tmp_path / "api.log"
    with _api(committed_db.url, log) as base:
        for char in _control_characters():
            body = {**PETITION, "description": f"开发商{char}联系不上"}
            r = httpx.post(f"{base}/api/v1/petitions", json=body, timeout=10)
            assert r.status_code == 422, (hex(ord(char)), r.text)
            assert r.json()["code"] == "control_characters"
            assert "控制字符" in r.json()["message"] and "description" in r.text
        r = httpx.post(
            f"{base}/api/v1/petitions", json={**PETITION, "person_name": "王\x00五"}, timeout=10
        )
        assert r.status_code == 422 and "person_name" in r.text
        r = httpx.get(f"{base}/api/v1/projects", params={"q": "幸福里\x00"}, timeout=10)
        assert r.status_code == 422 and r.json()["code"] == "control_characters"
        r = httpx.post(
            f"{base}/console/login", data={"username": "a\x1bb", "password": "x"}, timeout=10
        )
        assert r.status_code == 422 and "控制字符" in r.text
        fine = {**PETITION, "description": "第一行：开发商跑了。\n第二行\t联系不上！\r\n（急）"}
        r = httpx.post(f"{base}/api/v1/petitions", json=fine, timeout=10)
        assert r.status_code in (200, 201), r.text
    printed = log.read_text(errors="replace")
    assert "Traceback" not in printed and " 500 " not in printed
    for value in PERSONAL:
        assert value not in printed, value


def test_a_database_error_logs_no_personal_data(committed_db, tmp_path) -> None:  # noqa: F811
    """The petition table renamed away under the running api: the resident gets a Chinese 500,
    the log has one line from our handler (type and route) and no traceback, and nothing the
    resident typed."""
    log = tmp_path / "api.log"
    with _api(committed_db.url, log) as base:
        with committed_db.engine.begin() as conn:
            conn.execute(text("ALTER TABLE petition RENAME TO petition_away"))
        try:
            r = httpx.post(f"{base}/api/v1/petitions", json=PETITION, timeout=30)
        finally:
            with committed_db.engine.begin() as conn:
                conn.execute(text("ALTER TABLE petition_away RENAME TO petition"))
        assert r.status_code == 500
        assert any("\u4e00" <= ch <= "\u9fff" for ch in r.json()["message"])
        for value in PERSONAL:
            assert value not in r.text
    printed = log.read_text(errors="replace")
    handled = [line for line in printed.splitlines() if "unhandled" in line]
    assert len(handled) == 1 and "POST /petitions" in handled[0], printed[-3000:]
    assert "Traceback" not in printed and "Exception in ASGI application" not in printed
    for value in PERSONAL:
        assert value not in printed, value


def test_the_engine_hides_statement_parameters(committed_db) -> None:  # noqa: F811
    """The exception itself (which a library or a future log line might print) names no
    parameter values."""
    engine = make_engine(committed_db.url)
    try:
        with pytest.raises(StatementError) as err, engine.connect() as conn:
            conn.execute(text("SELECT * FROM no_such_table WHERE name = :name"), {"name": NAME})
        assert NAME not in str(err.value)
        assert "parameters" not in str(err.value) or "hidden" in str(err.value)
    finally:
        engine.dispose()


def test_a_library_traceback_becomes_one_line_without_messages() -> None:
    """SQLAlchemy's pool logs "Exception during reset or similar" with a traceback when a dead
    connection cannot roll back (seen under a cut PostgreSQL in tests/api/test_faults.py); a
    driver's message may quote what a resident typed. Real PostgreSQL: a connection whose
    backend is terminated mid-transaction goes back to the pool; the api's log handler prints
    one line with the exception types only."""
    import io
    import logging
    import os

    from app.core.logging import NoLibraryTracebacks, configure_logging

    configure_logging()
    root = logging.getLogger()
    assert all(any(isinstance(f, NoLibraryTracebacks) for f in h.filters) for h in root.handlers), (
        "configure_logging puts the filter on every handler"
    )

    out = io.StringIO()
    handler = logging.StreamHandler(out)
    handler.addFilter(NoLibraryTracebacks())
    root.addHandler(handler)
    url = os.environ.get("TEST_POSTGRES_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/test")
    engine = make_engine(url, pool_size=1, max_overflow=0)
    admin = make_engine(url, pool_size=1, max_overflow=0)
    try:
        raw = engine.raw_connection()  # what a session holds: a pooled DBAPI connection
        cursor = raw.cursor()
        cursor.execute("SELECT pg_backend_pid()")
        pid = cursor.fetchone()[0]
        cursor.execute(f"SELECT '{PHONE}'")
        with admin.begin() as other:
            other.execute(text("SELECT pg_terminate_backend(:pid)"), {"pid": pid})
        raw.close()  # back to the pool, whose rollback fails on the dead connection
    finally:
        root.removeHandler(handler)
        engine.dispose()
        admin.dispose()
    printed = out.getvalue()
    assert "Exception during reset" in printed, printed
    assert "Traceback" not in printed and "(AdminShutdown)" in printed
    assert "terminating connection" not in printed and PHONE not in printed
