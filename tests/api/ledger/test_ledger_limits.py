"""Ledger limits (issue 13): an XLSX zip bomb and over-long sheets refused before openpyxl
unpacks them (memory measured with tracemalloc); on SQLite an import never makes a petition
fail and is capped with a message pointing to PostgreSQL; a failure midway leaves nothing."""

from __future__ import annotations

import threading
import time
import tracemalloc
import zipfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient
from ledger_files import PROJECT_HEADER, UNIT_HEADER, csv_bytes, project, unit, write_xlsx
from notify.outbox_fixtures import CommittedDb
from sqlalchemy import func, select, text
from sqlalchemy.orm import Session, sessionmaker
from test_ledger_upload import _count, _files, _finished, _staff

from app.core.config import settings
from app.core.database import get_db, make_engine
from app.ledger import guard
from app.ledger.service import LedgerValidationError, import_ledger
from app.petition.models import Petition
from app.status.idcard import check_digit
from app.status.models import Project, Unit

BOMB_MB = 256


def _bomb(path: Path, unpacked_mb: int = BOMB_MB) -> Path:
    """A real workbook (openpyxl's own) whose sharedStrings.xml is replaced, streaming, by one
    string of `unpacked_mb` MB of one repeated character (compresses about 1000 times)."""
    seed = write_xlsx(path.with_name("seed.xlsx"), [("房屋", UNIT_HEADER, [["T001"] * 7])])
    with zipfile.ZipFile(seed) as src, zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as out:
        for item in src.infolist():
            if item.filename == "xl/sharedStrings.xml":
                continue
            out.writestr(item, src.read(item))
        with out.open("xl/sharedStrings.xml", "w", force_zip64=True) as fh:
            fh.write(b'<sst xmlns="http://schemas.openxmlformats.org/spreadsheetml/2006/main">')
            fh.write(b"<si><t>")
            block = b"A" * (1 << 20)
            for _ in range(unpacked_mb):
                fh.write(block)
            fh.write(b"</t></si></sst>")
    return path


def test_an_xlsx_bomb_is_refused_before_openpyxl_with_little_memory(tmp_path: Path) -> None:
    bomb = _bomb(tmp_path / "bomb.xlsx")
    assert bomb.stat().st_size < 2 * 1024 * 1024  # under 2 MB on disk
    tracemalloc.start()
    try:
        with bomb.open("rb") as fh, pytest.raises(guard.XlsxRefused) as refused:
            guard.check_xlsx(fh)
        errors: list[Any] = []
        from contextlib import ExitStack

        from app.ledger.reader import open_sheets

        with ExitStack() as stack:
            sheets = open_sheets([bomb], stack, errors)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert "压缩比异常" in str(refused.value) and "sharedStrings.xml" in str(refused.value)
    assert sheets == [] and len(errors) == 1 and "压缩比异常" in errors[0].reason
    assert peak < 16 * 1024 * 1024, peak  # the 256 MB of text were never unpacked


def test_the_other_zip_caps(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    bomb = _bomb(tmp_path / "bomb.xlsx", unpacked_mb=8)
    monkeypatch.setattr(settings, "ledger_xlsx_max_ratio", 10_000)
    monkeypatch.setattr(settings, "ledger_xlsx_max_shared_strings_bytes", 4 * 1024 * 1024)
    with bomb.open("rb") as fh, pytest.raises(guard.XlsxRefused, match="共享文本有 8 MB"):
        guard.check_xlsx(fh)
    monkeypatch.setattr(settings, "ledger_xlsx_max_uncompressed_bytes", 4 * 1024 * 1024)
    with bomb.open("rb") as fh, pytest.raises(guard.XlsxRefused, match="解压后有 8 MB"):
        guard.check_xlsx(fh)
    monkeypatch.setattr(settings, "ledger_max_upload_bytes", 1024)
    with bomb.open("rb") as fh, pytest.raises(guard.XlsxRefused, match="超过了上限 1 KB"):
        guard.check_xlsx(fh)


def test_rows_over_the_cap_by_dimension_and_while_streaming(
    db: Session, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(settings, "ledger_max_rows", 3)
    rows = [[*unit(房号=str(100 + i)).values()] for i in range(5)]
    book = write_xlsx(tmp_path / "多.xlsx", [("房屋", UNIT_HEADER, rows)])
    with book.open("rb") as fh, pytest.raises(guard.XlsxRefused, match="有 6 行，超过了上限 3 行"):
        guard.check_xlsx(fh)
    # A CSV has no dimension: the reader stops at the cap.
    units = [unit(房号=str(100 + i)) for i in range(5)]
    with pytest.raises(LedgerValidationError) as failed:
        import_ledger(
            [
                ("项目.csv", csv_bytes(PROJECT_HEADER, [project()])),
                ("房屋.csv", csv_bytes(UNIT_HEADER, units)),
            ],
            db=db,
            actor="tester",
        )
    assert [(e.sheet, e.row) for e in failed.value.errors] == [("房屋.csv", 5)]
    assert "超过了上限 3 行" in failed.value.errors[0].reason


def test_the_bomb_uploaded_is_a_422_and_queues_nothing(
    live_client: TestClient, outbox_db: CommittedDb, tmp_path: Path
) -> None:
    headers = _staff(outbox_db)
    bomb = _bomb(tmp_path / "台账.xlsx")
    r = live_client.post(
        "/api/v1/staff/ledger/import",
        files=[("files", ("台账.xlsx", bomb.read_bytes(), "application/octet-stream"))],
        headers=headers,
    )
    assert r.status_code == 422 and r.json()["code"] == "xlsx_refused"
    assert "压缩比异常" in r.json()["message"]
    assert _count(outbox_db, Petition) == 0 and _count(outbox_db, Project) == 0


# --- SQLite: petitions during an import ---------------------------------------------------

UNITS = 150_000
PETITION = {
    "person_name": "测试人",
    "phone": "13800000000",
    "address": "测试路1号",
    "description": "交房多年还没有房本。",
    "consent": True,
    "channel": "webchat",
}


def _big_units(n: int) -> bytes:
    """`n` unit rows of T001 with owners and ID numbers (checking and hashing an ID is the
    import's slow part, and it happens before the write lock is taken)."""
    ids = [f"99010119800101{i:03d}" for i in range(100)]
    ids = [i + check_digit(i) for i in ids]
    lines = ["项目编号,幢号,单元,房号,业主姓名,身份证号,转移登记"]
    lines += [
        f"T001,{i // 1000 + 1},{i // 100 % 10 + 1},{i % 100 + 101},测某,{ids[i % 100]},未办理"
        for i in range(n)
    ]
    return ("\r\n".join(lines) + "\r\n").encode()


@pytest.fixture(params=[0.2, 30.0], ids=["busy-0.2s", "busy-30s"])
def impatient_api(
    request: pytest.FixtureRequest, outbox_db: CommittedDb, live_client: TestClient
) -> Iterator[sessionmaker[Session]]:
    """The api's requests on their own engine with a short busy timeout (0.2 s: the import's
    final write of UNITS rows takes about a second here, several on a loaded machine) and with
    the production default (30 s). Without the write gate (app.core.sqlite_gate) a petition
    that meets the import's write lock waits the busy timeout and gets the 503; with it, the
    petition waits at the gate and then writes."""
    if outbox_db.backend != "sqlite":
        pytest.skip("the write lock is SQLite's")
    engine = make_engine(
        outbox_db.url, connect_args={"check_same_thread": False, "timeout": request.param}
    )
    factory = sessionmaker(bind=engine, expire_on_commit=False)
    from app.main import app

    def _override() -> Iterator[Session]:
        with factory() as db:
            yield db
            db.commit()

    app.dependency_overrides[get_db] = _override
    yield factory
    engine.dispose()


def test_petitions_never_fail_during_a_big_import_on_sqlite(
    live_client: TestClient,
    outbox_db: CommittedDb,
    impatient_api: sessionmaker[Session],
    worker: object,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(settings, "petition_rate_per_ip", 100_000)
    headers = _staff(outbox_db)
    projects = csv_bytes(PROJECT_HEADER, [project()])
    r = live_client.post(
        "/api/v1/staff/ledger/import", files=_files(projects, _big_units(UNITS)), headers=headers
    )
    assert r.status_code == 202
    import_id = r.json()["import_id"]
    answers: list[tuple[int, str]] = []
    stop = threading.Event()

    def file_petitions() -> None:
        with TestClient(live_client.app) as c:
            while not stop.is_set():
                resp = c.post("/api/v1/petitions", json=PETITION)
                answers.append((resp.status_code, resp.json().get("number", "")))
                time.sleep(0.02)

    threads = [threading.Thread(target=file_petitions) for _ in range(2)]
    for t in threads:
        t.start()
    try:
        result = _finished(live_client, headers, import_id)
    finally:
        stop.set()
        for t in threads:
            t.join()
    assert result["state"] == "done", result
    assert result["report"]["units_created"] == UNITS
    # Holding the lock for the whole import (the first way), or without the gate for its final
    # write (the second), petitions here got 503s.
    assert {code for code, _ in answers} == {201}, answers
    assert len(answers) >= 20
    with outbox_db.sessions() as db:
        stored = set(db.scalars(select(Petition.number)))
        assert stored == {number for _, number in answers}
        assert db.scalar(select(func.count()).select_from(Unit)) == UNITS


def test_the_sqlite_cap_points_to_postgresql(
    live_client: TestClient, outbox_db: CommittedDb, worker: object, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(settings, "ledger_sqlite_max_rows", 2)
    headers = _staff(outbox_db)
    units = [unit(房号=str(100 + i)) for i in range(3)]
    r = live_client.post(
        "/api/v1/staff/ledger/import",
        files=_files(csv_bytes(PROJECT_HEADER, [project()]), csv_bytes(UNIT_HEADER, units)),
        headers=headers,
    )
    result = _finished(live_client, headers, r.json()["import_id"])
    if outbox_db.backend == "sqlite":
        assert result["state"] == "failed"
        assert "PostgreSQL" in result["errors"][0]["reason"]
        assert "最多导入 2 行" in result["errors"][0]["reason"]
        assert _count(outbox_db, Project) == 0
    else:
        assert result["state"] == "done" and result["report"]["units_created"] == 3


# --- a failure midway ---------------------------------------------------------------------


@pytest.fixture
def failing_unit_insert(outbox_db: CommittedDb) -> Iterator[None]:
    """The database refuses the unit with room 9999 (a trigger): the import fails in its very
    last write, after the projects and the other units were written."""
    with outbox_db.engine.begin() as conn:
        if outbox_db.backend == "sqlite":
            conn.execute(
                text(
                    "CREATE TRIGGER boom BEFORE INSERT ON unit WHEN NEW.room = '9999' "
                    "BEGIN SELECT RAISE(ABORT, 'boom'); END"
                )
            )
        else:
            conn.execute(
                text(
                    "CREATE FUNCTION boom() RETURNS trigger AS $$ BEGIN "
                    "IF NEW.room = '9999' THEN RAISE EXCEPTION 'boom'; END IF; RETURN NEW; "
                    "END $$ LANGUAGE plpgsql"
                )
            )
            conn.execute(
                text(
                    "CREATE TRIGGER boom BEFORE INSERT ON unit FOR EACH ROW EXECUTE FUNCTION boom()"
                )
            )
    yield
    with outbox_db.engine.begin() as conn:
        conn.execute(
            text("DROP TRIGGER boom" + ("" if outbox_db.backend == "sqlite" else " ON unit"))
        )
        if outbox_db.backend != "sqlite":
            conn.execute(text("DROP FUNCTION boom()"))


def test_a_failure_midway_leaves_nothing_imported(
    live_client: TestClient, outbox_db: CommittedDb, failing_unit_insert: None, worker: object
) -> None:
    headers = _staff(outbox_db)
    units = [unit(房号=str(100 + i)) for i in range(50)] + [unit(房号="9999")]
    r = live_client.post(
        "/api/v1/staff/ledger/import",
        files=_files(csv_bytes(PROJECT_HEADER, [project()]), csv_bytes(UNIT_HEADER, units)),
        headers=headers,
    )
    result = _finished(live_client, headers, r.json()["import_id"])
    assert result["state"] == "failed" and "未导入任何数据" in result["message"]
    assert "boom" not in result["message"]
    assert _count(outbox_db, Project) == 0 and _count(outbox_db, Unit) == 0


def test_a_request_sized_statement_timeout_does_not_cut_an_import_short(
    outbox_db: CommittedDb,
) -> None:
    """PostgreSQL with a 20 ms statement limit on every connection (requests may get one; a
    batch of 10,000 units takes longer): the import job lifts it for its own transaction."""
    if outbox_db.backend != "postgresql":
        pytest.skip("PostgreSQL's statement_timeout")
    from sqlalchemy import event

    from app.ledger.jobs import import_sources

    schema = outbox_db.url.split("search_path%3D", 1)[1]
    base = outbox_db.url.split("?", 1)[0]
    engine = make_engine(base, connect_args={"options": f"-csearch_path={schema}"})
    with engine.connect():
        pass  # the dialect's own first queries, before the limit

    @event.listens_for(engine, "connect")
    def _limit(dbapi_conn: Any, _record: Any) -> None:
        with dbapi_conn.cursor() as cur:
            cur.execute("SET statement_timeout = 20")
        dbapi_conn.commit()

    engine.dispose()
    try:
        with engine.connect() as conn, pytest.raises(Exception, match="statement timeout"):
            conn.execute(text("SELECT pg_sleep(0.05)"))
        sources: list[Any] = [
            ("项目.csv", csv_bytes(PROJECT_HEADER, [project()])),
            ("房屋.csv", _big_units(20_000)),
        ]
        report = import_sources(sources, engine=engine, actor="tester")
        assert report.units_created == 20_000
    finally:
        engine.dispose()
        with outbox_db.engine.begin() as conn:
            for table in ("audit_log", "unit", "blocker", "project"):
                conn.execute(text(f"DELETE FROM {table}"))
