"""Ledger uploads (issue 13) on SQLite and PostgreSQL: the upload is authenticated before its
body is read, streamed to disk with a cap, and imported by the real job consumer; the staff
API and the console follow the job; the uploaded files are deleted when it ends."""

from __future__ import annotations

import re
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import anyio
import pytest
from fastapi.testclient import TestClient
from ledger_files import (
    PROJECT_HEADER,
    UNIT_HEADER,
    csv_bytes,
    project,
    projects_default,
    units_default,
)
from notify.outbox_fixtures import CommittedDb
from sqlalchemy import func, select
from staff.staffkit import bearer, make_user
from staff.test_staff_auth import console_login, page_csrf

from app.core.config import settings
from app.core.database import get_db
from app.ledger.models import LedgerImport
from app.status.models import Project, Unit


def wait_for(check: Callable[[], Any], timeout: float = 30.0) -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = check()
        if value:
            return value
        time.sleep(0.05)
    raise AssertionError("timed out")


def _staff(outbox_db: CommittedDb, role: str = "clerk") -> dict[str, str]:
    with outbox_db.sessions() as db:
        user = make_user(db, role)
        headers = bearer(db, user)
        db.commit()
    return headers


def _files(projects: bytes, units: bytes | None = None) -> list[tuple[str, Any]]:
    files = [("files", ("项目表.csv", projects, "text/csv"))]
    if units is not None:
        files.append(("files", ("房屋表.csv", units, "text/csv")))
    return files


def _finished(client: TestClient, headers: dict[str, str], import_id: str) -> dict[str, Any]:
    def done() -> dict[str, Any] | None:
        body: dict[str, Any] = client.get(
            f"/api/v1/staff/ledger/imports/{import_id}", headers=headers
        ).json()
        return body if body["state"] in ("done", "failed") else None

    result: dict[str, Any] = wait_for(done)
    return result


def _count(outbox_db: CommittedDb, model: Any) -> int:
    with outbox_db.sessions() as db:
        return int(db.scalar(select(func.count()).select_from(model)) or 0)


def test_upload_is_queued_then_imported_by_the_worker(
    live_client: TestClient, outbox_db: CommittedDb, upload_dir: Path, worker: object
) -> None:
    """202 at once with the import id; the worker imports; the status carries the report;
    the uploaded files are gone afterwards."""
    headers = _staff(outbox_db)
    projects = csv_bytes(PROJECT_HEADER, projects_default(), "utf-8-sig")
    units = csv_bytes(UNIT_HEADER, units_default(), "gb18030")
    r = live_client.post(
        "/api/v1/staff/ledger/import", files=_files(projects, units), headers=headers
    )
    assert r.status_code == 202, r.text
    body = r.json()
    assert body["state"] in ("queued", "running", "done") and body["files"] == [
        "项目表.csv",
        "房屋表.csv",
    ]
    assert body["status_url"] == f"/api/v1/staff/ledger/imports/{body['import_id']}"
    result = _finished(live_client, headers, body["import_id"])
    assert result["state"] == "done" and result["imported"] is True, result
    assert result["report"]["units_created"] == 3 and result["report"]["projects_created"] == 2
    assert "房屋：新增 3" in result["report"]["summary"]
    assert _count(outbox_db, Unit) == 3
    assert not any(upload_dir.rglob("*.csv"))


def test_bad_rows_fail_the_job_with_row_errors_and_import_nothing(
    live_client: TestClient, outbox_db: CommittedDb, upload_dir: Path, worker: object
) -> None:
    headers = _staff(outbox_db)
    rows = [project(), project(**{"项目编号": "T002", "总套数": "很多"})]
    r = live_client.post(
        "/api/v1/staff/ledger/import",
        files=_files(csv_bytes(PROJECT_HEADER, rows, "utf-8")),
        headers=headers,
    )
    assert r.status_code == 202
    result = _finished(live_client, headers, r.json()["import_id"])
    assert result["state"] == "failed" and result["imported"] is False
    assert result["error_total"] == 1 and "未导入任何数据" in result["message"]
    assert [(e["sheet"], e["row"], e["column"]) for e in result["errors"]] == [
        ("项目表.csv", 3, "总套数")
    ]
    assert _count(outbox_db, Project) == 0
    assert not any(upload_dir.rglob("*.csv"))


def test_status_needs_the_permission_and_a_real_id(
    live_client: TestClient, outbox_db: CommittedDb
) -> None:
    clerk, officer = _staff(outbox_db), _staff(outbox_db, "officer")
    r = live_client.post(
        "/api/v1/staff/ledger/import",
        files=_files(csv_bytes(PROJECT_HEADER, [project()], "utf-8")),
        headers=clerk,
    )
    import_id = r.json()["import_id"]
    url = f"/api/v1/staff/ledger/imports/{import_id}"
    assert live_client.get(url, headers=officer).status_code == 403
    missing = live_client.get("/api/v1/staff/ledger/imports/0123456789abcdef", headers=clerk)
    assert missing.status_code == 404 and missing.json()["message"] == "没有找到这次台账导入。"
    assert live_client.get(url).status_code == 401


# --- authentication before the body -------------------------------------------------------


def _asgi_post(
    path: str,
    headers: list[tuple[bytes, bytes]],
    chunks: int,
    chunk_size: int = 1 << 20,
    declare_length: bool = True,
) -> tuple[int, int, bytes]:
    """POST a multipart body of `chunks` chunks straight to the ASGI app; (status, chunks the
    app read, response body)."""
    from app.main import app

    boundary = b"xyzBOUNDARY"
    head = (
        b"--" + boundary + b'\r\nContent-Disposition: form-data; name="files"; '
        b'filename="units.csv"\r\nContent-Type: text/csv\r\n\r\n'
    )
    tail = b"\r\n--" + boundary + b"--\r\n"
    body_len = len(head) + chunks * chunk_size + len(tail)
    read = 0
    status = 0
    out = bytearray()
    filler = b"a" * (chunk_size - 1) + b"\n"

    async def receive() -> dict[str, Any]:
        nonlocal read
        if read >= chunks + 2:
            await anyio.sleep(3600)  # the client keeps the connection open
        read += 1
        if read == 1:
            return {"type": "http.request", "body": head, "more_body": True}
        if read <= chunks + 1:
            return {"type": "http.request", "body": filler, "more_body": True}
        return {"type": "http.request", "body": tail, "more_body": False}

    async def send(message: dict[str, Any]) -> None:
        nonlocal status
        if message["type"] == "http.response.start":
            status = message["status"]
        elif message["type"] == "http.response.body":
            out.extend(message.get("body", b""))

    scope = {
        "type": "http",
        "asgi": {"version": "3.0"},
        "http_version": "1.1",
        "method": "POST",
        "scheme": "http",
        "path": path,
        "raw_path": path.encode(),
        "query_string": b"",
        "root_path": "",
        "headers": [
            (b"host", b"testserver"),
            (b"content-type", b"multipart/form-data; boundary=" + boundary),
            *([(b"content-length", str(body_len).encode())] if declare_length else []),
            *headers,
        ],
        "client": ("127.0.0.1", 50000),
        "server": ("testserver", 80),
    }

    async def main() -> None:
        with anyio.fail_after(60):
            await app(scope, receive, send)

    anyio.run(main)
    return status, read, bytes(out)


@pytest.fixture
def asgi_db(outbox_db: CommittedDb, upload_dir: Path, sqlite_queue: object) -> CommittedDb:
    from app.main import app

    def _override() -> Any:
        with outbox_db.sessions() as db:
            yield db
            db.commit()

    app.dependency_overrides[get_db] = _override
    yield outbox_db
    app.dependency_overrides.pop(get_db, None)


def test_no_body_is_read_before_the_401_or_403(asgi_db: CommittedDb) -> None:
    """A 30 MB upload by nobody is refused after reading nothing of it (FastAPI parsed the
    whole multipart body before the route's dependencies ran); an officer likewise gets 403,
    and the console's upload redirects to the login page."""
    status, read, body = _asgi_post("/api/v1/staff/ledger/import", [], chunks=30)
    assert status == 401 and read == 0 and "请先登录" in body.decode()
    officer = _staff(asgi_db, "officer")
    auth = [(b"authorization", officer["Authorization"].encode())]
    status, read, _ = _asgi_post("/api/v1/staff/ledger/import", auth, chunks=30)
    assert status == 403 and read == 0
    status, read, _ = _asgi_post("/console/ledger", [], chunks=30)
    assert status == 303 and read == 0


def test_an_upload_over_the_cap_is_413_without_reading_the_rest(
    asgi_db: CommittedDb, upload_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(settings, "ledger_max_upload_bytes", 3 << 20)
    clerk = _staff(asgi_db)
    auth = [(b"authorization", clerk["Authorization"].encode())]
    # Declared too long: the edge's 413 before anything is read.
    status, read, body = _asgi_post("/api/v1/staff/ledger/import", auth, chunks=30)
    assert status == 413 and read == 0 and "太长" in body.decode()
    # Sent without a length (chunked): counted while streaming, refused at the cap.
    status, read, body = _asgi_post(
        "/api/v1/staff/ledger/import", auth, chunks=30, declare_length=False
    )
    assert status == 413 and "一次最多上传 3 MB" in body.decode(), body.decode()
    assert read <= 5  # stopped at the cap, not at the end of the 30 MB
    assert not any(p.is_file() for p in upload_dir.rglob("*"))
    assert _count(asgi_db, LedgerImport) == 0


def test_refused_uploads_queue_nothing(
    live_client: TestClient, outbox_db: CommittedDb, upload_dir: Path
) -> None:
    headers = _staff(outbox_db)
    for files, code in (
        ([("files", ("台账.txt", b"x", "text/plain"))], "bad_file_type"),
        ([("files", ("台账.xlsx", b"PK\x03\x04 not a zip", "application/zip"))], "xlsx_refused"),
        ([("files", ("台账.csv", b"", "text/csv"))], "file_required"),
    ):
        r = live_client.post("/api/v1/staff/ledger/import", files=files, headers=headers)
        assert r.status_code == 422 and r.json()["code"] == code, r.text
    assert _count(outbox_db, LedgerImport) == 0
    assert not any(p.is_file() for p in upload_dir.rglob("*"))


# --- the console --------------------------------------------------------------------------


def test_console_upload_shows_the_job_then_its_row_errors(
    live_client: TestClient, outbox_db: CommittedDb, worker: object
) -> None:
    """The form posts, the page of the import refreshes itself (a meta refresh: no inline
    script) until the job ends; a bad row is shown as the error table, nothing imported;
    a good file then says 导入成功."""
    with outbox_db.sessions() as db:
        admin = make_user(db, "admin")
        db.commit()
    console_login(live_client, admin.username)
    page = live_client.get("/console/ledger")
    bad = [project(), project(**{"项目编号": "T002", "首次登记": "也许吧"})]
    r = live_client.post(
        "/console/ledger",
        data={"csrf_token": page_csrf(page.text)},
        files=_files(csv_bytes(PROJECT_HEADER, bad, "utf-8")),
        follow_redirects=False,
    )
    assert r.status_code == 303
    url = r.headers["location"]
    assert re.fullmatch(r"/console/ledger/imports/[0-9a-f]{16}", url)
    first = live_client.get(url)
    assert first.status_code == 200
    if "错误清单" not in first.text:
        assert '<meta http-equiv="refresh" content="2">' in first.text
    final = wait_for(lambda: (p := live_client.get(url)) and "错误清单" in p.text and p)
    assert "未导入任何数据" in final.text and 'http-equiv="refresh"' not in final.text
    rows = re.findall(r"<tr><td>([^<]*)</td><td>(\d+)</td>", final.text)
    assert rows == [("项目表.csv", "3")]
    assert _count(outbox_db, Project) == 0

    r = live_client.post(
        "/console/ledger",
        data={"csrf_token": page_csrf(page.text)},
        files=_files(csv_bytes(PROJECT_HEADER, [project()], "utf-8")),
    )
    done = wait_for(lambda: (p := live_client.get(str(r.url))) and "导入成功" in p.text and p)
    assert "项目：新增 1" in done.text


def test_console_upload_with_a_wrong_csrf_token_is_refused(
    live_client: TestClient, outbox_db: CommittedDb, upload_dir: Path
) -> None:
    with outbox_db.sessions() as db:
        admin = make_user(db, "admin")
        db.commit()
    console_login(live_client, admin.username)
    r = live_client.post(
        "/console/ledger",
        data={"csrf_token": "forged"},
        files=_files(csv_bytes(PROJECT_HEADER, [project()], "utf-8")),
    )
    assert r.status_code == 403 and "页面已过期" in r.text
    assert _count(outbox_db, LedgerImport) == 0
    assert not any(p.is_file() for p in upload_dir.rglob("*"))


def test_the_sweep_fails_imports_whose_worker_died_and_removes_orphan_files(
    outbox_db: CommittedDb, upload_dir: Path
) -> None:
    """An import still running two hours on (its worker was killed: its one transaction wrote
    nothing) is failed with a Chinese reason and its files removed; a fresh one is left alone;
    an old folder no import owns (the api died mid-upload) is removed."""
    import os
    from datetime import timedelta

    from app.core.database import utcnow
    from app.ledger import jobs

    now = utcnow()
    with outbox_db.sessions() as db:
        for public_id, state, started in (
            ("a" * 16, "running", now - timedelta(hours=3)),
            ("b" * 16, "queued", None),
        ):
            db.add(
                LedgerImport(
                    public_id=public_id,
                    state=state,
                    actor="staff:t",
                    files=["项目表.csv"],
                    size_bytes=1,
                    error_total=0,
                    started_at=started,
                    created_at=now - timedelta(hours=3) if started else now,
                )
            )
        db.commit()
    for name in ("a" * 16, "b" * 16, "c" * 16):
        (upload_dir / name / "0").mkdir(parents=True)
        (upload_dir / name / "0" / "项目表.csv").write_bytes(b"x")
    old = time.time() - 3 * 3600
    os.utime(upload_dir / ("c" * 16), (old, old))

    assert jobs.sweep_stalled() == 1
    with outbox_db.sessions() as db:
        states = dict(db.execute(select(LedgerImport.public_id, LedgerImport.state)).all())
        stalled = db.scalar(select(LedgerImport).where(LedgerImport.public_id == "a" * 16))
        assert stalled is not None and stalled.message == jobs.STALLED
    assert states == {"a" * 16: "failed", "b" * 16: "queued"}
    assert sorted(p.name for p in upload_dir.iterdir()) == ["b" * 16]


def test_a_file_name_cannot_leave_the_upload_folder(
    live_client: TestClient, outbox_db: CommittedDb, upload_dir: Path
) -> None:
    headers = _staff(outbox_db)
    content = csv_bytes(PROJECT_HEADER, [project()], "utf-8")
    r = live_client.post(
        "/api/v1/staff/ledger/import",
        files=[("files", ("../../..\\..\\项目表.csv", content, "text/csv"))],
        headers=headers,
    )
    assert r.status_code == 202 and r.json()["files"] == ["项目表.csv"]
    stored = upload_dir / r.json()["import_id"] / "0" / "项目表.csv"
    assert stored.read_bytes() == content
    assert [p for p in upload_dir.parent.rglob("项目表.csv")] == [stored]
