"""The ledger template (issue 14) on SQLite and PostgreSQL: built from the reader's own
columns, explained sheet by sheet, downloadable from the console and the staff API (login and
the ledger permission required), and importable as it is through the upload job's path; bad
unit rows are reported with the home (幢号/单元/房号) typed in that row."""

from __future__ import annotations

import io
import re
from pathlib import Path

from fastapi.testclient import TestClient
from ledger_files import (
    PROJECT_HEADER,
    UNIT_HEADER,
    csv_bytes,
    project,
    unit,
    write_csv,
    write_xlsx,
)
from notify.outbox_fixtures import CommittedDb
from openpyxl import load_workbook
from sqlalchemy import select
from sqlalchemy.orm import Session
from staff.staffkit import bearer, make_user
from staff.test_staff_auth import console_login
from test_ledger_upload import _files, _finished, _staff, wait_for

from app.ledger import template
from app.ledger.cli import format_errors
from app.ledger.reader import NOTES_MARKER, PROJECT_COLUMNS, UNIT_COLUMNS, RowError
from app.ledger.service import INITIAL_REGISTRATION, LedgerValidationError, import_ledger
from app.policy.catalogue import get_catalogue
from app.status.models import TRANSFER_STATUSES, Project, Unit

URL = "/api/v1/staff/ledger/template.xlsx"


def _sheets(content: bytes) -> dict[str, list[tuple[object, ...]]]:
    wb = load_workbook(io.BytesIO(content))
    return {ws.title: list(ws.iter_rows(values_only=True)) for ws in wb.worksheets}


def test_the_template_has_the_readers_headers_and_explains_every_column() -> None:
    content = template.build_template()
    wb = load_workbook(io.BytesIO(content))
    assert wb.sheetnames == ["项目表", "房屋表", "说明"]
    sheets = _sheets(content)
    assert sheets["项目表"][0] == PROJECT_COLUMNS and sheets["房屋表"][0] == UNIT_COLUMNS
    assert len(sheets["项目表"]) >= 2 and len(sheets["房屋表"]) >= 2  # example rows
    for title in ("项目表", "房屋表", "说明"):
        ws = wb[title]
        assert ws.freeze_panes == "A2"
        assert all((ws.column_dimensions[c].width or 0) >= 8 for c in "ABCD")
    notes = sheets["说明"]
    assert notes[0][0] == NOTES_MARKER
    explained = {(r[0], r[1]) for r in notes}
    assert all(("项目表", c) in explained for c in PROJECT_COLUMNS)
    assert all(("房屋表", c) in explained for c in UNIT_COLUMNS)
    text = "\n".join(" ".join(str(v) for v in r if v is not None) for r in notes)
    for value in (*INITIAL_REGISTRATION, *TRANSFER_STATUSES, "“;”"):
        assert value in text
    cat = get_catalogue()
    assert {r[1] for r in notes} >= set(cat.blockers) | {d.name for d in cat.departments.values()}
    # The ID column is text (Excel would turn 18 digits into 1.1E+17) and the example ID is
    # nobody's: region 99, born 1900.
    ids = wb["房屋表"]
    column = UNIT_COLUMNS.index("身份证号") + 1
    assert ids.cell(row=2, column=column).number_format == "@"
    assert str(ids.cell(row=2, column=column).value).startswith("99010119000101")


def test_the_downloaded_template_imports_without_errors(client: TestClient, db: Session) -> None:
    clerk = make_user(db, "clerk")
    r = client.get(URL, headers=bearer(db, clerk))
    assert r.status_code == 200, r.text
    assert r.headers["content-type"] == template.MEDIA_TYPE
    assert "attachment" in r.headers["content-disposition"]
    report = import_ledger([("台账模板.xlsx", r.content)], db=db, actor="test:template")
    assert (report.projects_created, report.units_created) == (2, 2)
    assert report.blockers_opened == 2
    assert report.sheets == ["项目表（项目表）", "房屋表（房屋表）"]  # 说明 is skipped
    homes = {(u.building, u.unit, u.room) for u in db.scalars(select(Unit))}
    assert homes == {("1", "1", "101"), ("2", "", "201")}
    example = db.scalar(select(Project).where(Project.code == "SL-001"))
    assert example is not None and len({b.department for b in example.blockers}) == 2


def test_the_template_needs_a_login_and_the_ledger_permission(
    client: TestClient, db: Session
) -> None:
    assert client.get(URL).status_code == 401
    officer = make_user(db, "officer")
    assert client.get(URL, headers=bearer(db, officer)).status_code == 403
    assert client.get("/console/ledger/template.xlsx", follow_redirects=False).status_code in (
        302,
        303,
        401,
    )


def test_the_console_ledger_page_links_the_template(client: TestClient, db: Session) -> None:
    admin = make_user(db, "admin")
    console_login(client, admin.username)
    page = client.get("/console/ledger")
    assert 'href="/console/ledger/template.xlsx"' in page.text
    assert "make import-ledger" not in page.text
    r = client.get("/console/ledger/template.xlsx")
    assert r.status_code == 200 and r.headers["content-type"] == template.MEDIA_TYPE
    assert _sheets(r.content)["项目表"][0] == PROJECT_COLUMNS


def test_the_uploaded_template_is_imported_by_the_worker(
    live_client: TestClient, outbox_db: CommittedDb, worker: object
) -> None:
    """The real path end to end: download, upload, the import job imports it, no errors."""
    headers = _staff(outbox_db)
    content = live_client.get(URL, headers=headers).content
    files = [("files", (template.FILENAME, content, template.MEDIA_TYPE))]
    r = live_client.post("/api/v1/staff/ledger/import", files=files, headers=headers)
    assert r.status_code == 202, r.text
    result = _finished(live_client, headers, r.json()["import_id"])
    assert result["state"] == "done" and result["errors"] == [], result
    assert result["report"]["units_created"] == 2


def test_bad_unit_rows_carry_the_home_as_typed(db: Session, tmp_path: Path) -> None:
    projects = write_csv(
        tmp_path / "p.csv", PROJECT_HEADER, [project(), project(**{"项目编号": "", "总套数": "x"})]
    )
    units = write_csv(
        tmp_path / "u.csv",
        UNIT_HEADER,
        [
            unit(**{"转移登记": "不知道"}),
            unit(**{"幢号": "7栋", "单元": "", "房号": "", "身份证号": ""}),
            unit(**{"房号": "502"}),
            unit(**{"幢号": "3号楼", "单元": "二单元", "房号": "502室"}),  # the same home
        ],
    )
    try:
        import_ledger([projects, units], db=db, actor="tester")
    except LedgerValidationError as exc:
        errors = exc.errors
    else:
        raise AssertionError("the import should fail")
    homes = {(e.sheet, e.row, e.column): e.home for e in errors}
    assert homes[("u.csv", 2, "转移登记")] == "3号楼/2单元/501"
    assert homes[("u.csv", 3, "房号")] == "7栋/—/—"
    assert homes[("u.csv", 5, "房号")] == "3/2/502"  # a duplicate: the home as compared
    assert all(e.home == "" for e in errors if e.sheet == "p.csv")
    by_row = {(e.row, e.column): (e.building, e.unit, e.room) for e in errors}
    assert by_row[(2, "转移登记")] == ("3号楼", "2单元", "501")
    # Names and ID numbers are never part of an error.
    assert not any("测甲" in str(e) for e in errors)


def test_the_status_json_and_the_console_show_the_home(
    live_client: TestClient, outbox_db: CommittedDb, worker: object
) -> None:
    headers = _staff(outbox_db)
    units = csv_bytes(UNIT_HEADER, [unit(**{"转移登记": "不知道"})], "utf-8")
    r = live_client.post(
        "/api/v1/staff/ledger/import",
        files=_files(csv_bytes(PROJECT_HEADER, [project()], "utf-8"), units),
        headers=headers,
    )
    result = _finished(live_client, headers, r.json()["import_id"])
    assert result["state"] == "failed"
    [error] = result["errors"]
    assert (error["sheet"], error["row"], error["column"]) == ("房屋表.csv", 2, "转移登记")
    assert (error["building"], error["unit"], error["room"]) == ("3号楼", "2单元", "501")
    assert error["home"] == "3号楼/2单元/501"

    with outbox_db.sessions() as db:
        admin = make_user(db, "admin")
        db.commit()
    console_login(live_client, admin.username)
    page = wait_for(
        lambda: (
            (p := live_client.get(f"/console/ledger/imports/{result['import_id']}"))
            and "错误清单" in p.text
            and p
        )
    )
    cells = re.findall(
        r'<tr><td>([^<]*)</td><td>(\d+)</td><td class="home">([^<]*)</td>', page.text
    )
    assert cells == [("房屋表.csv", "2", "3号楼/2单元/501")]


def test_only_a_sheet_starting_with_the_notes_marker_is_skipped(
    db: Session, tmp_path: Path
) -> None:
    rows = [[project()[c] for c in PROJECT_HEADER]]
    notes = write_xlsx(
        tmp_path / "notes.xlsx",
        [
            ("项目", PROJECT_HEADER, rows),
            ("说明", [NOTES_MARKER, "列名"], [["项目表", "项目编号"]]),
        ],
    )
    assert import_ledger([notes], db=db, actor="tester").projects_created == 1
    other = write_xlsx(
        tmp_path / "other.xlsx",
        [("项目", PROJECT_HEADER, rows), ("备注", ["备注", "列名"], [["随便写的", ""]])],
    )
    try:
        import_ledger([other], db=db, actor="tester")
    except LedgerValidationError as exc:
        assert [(e.sheet, e.reason) for e in exc.errors] == [
            ("备注", "无法识别的表头：既不是项目表也不是房屋表")
        ]
    else:
        raise AssertionError("an unrecognised sheet is still an error")


def test_the_cli_error_table_has_the_home_column() -> None:
    table = format_errors(
        [
            RowError("房屋表", 7, "转移登记", "转移登记只能填……", "3号楼", "2单元", "501"),
            RowError("项目表", 3, "总套数", "总套数不能为空"),
        ]
    ).splitlines()
    assert table[0].split() == ["工作表", "行号", "房屋", "列", "原因"]
    assert table[1].split()[:4] == ["房屋表", "7", "3号楼/2单元/501", "转移登记"]
    assert table[2].split()[:4] == ["项目表", "3", "-", "总套数"]
