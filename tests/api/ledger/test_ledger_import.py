"""Ledger import on SQLite and PostgreSQL: formats, validation, idempotence, updates, privacy."""

from __future__ import annotations

import io
from datetime import datetime
from pathlib import Path
from typing import Any

import pytest
from ledger_files import (
    ID_A,
    ID_B,
    ID_C,
    PROJECT_HEADER,
    UNIT_HEADER,
    csv_bytes,
    project,
    projects_default,
    unit,
    units_default,
    write_csv,
    write_pair,
    write_xlsx,
)
from sqlalchemy import func, select, text
from sqlalchemy.orm import Session

from app.audit.models import AuditLog
from app.core.security import hash_id_number
from app.ledger import reader, service
from app.ledger.service import LedgerValidationError, RowError, import_ledger
from app.status.idcard import check_digit, validate_id_number
from app.status.models import Blocker, Project, Unit


def _count(db: Session, model: Any) -> int:
    return int(db.scalar(select(func.count()).select_from(model)) or 0)


def _units(db: Session) -> dict[tuple[str, str, str, str], Unit]:
    db.expire_all()
    rows = db.execute(select(Project.code, Unit).join(Unit, Unit.project_id == Project.id))
    return {(code, u.building, u.unit, u.room): u for code, u in rows}


def _blockers(db: Session, code: str) -> dict[str, Blocker]:
    db.expire_all()
    project = db.scalars(select(Project).where(Project.code == code)).one()
    return {b.code: b for b in project.blockers}


# --- formats ------------------------------------------------------------------------------


@pytest.mark.parametrize("encoding", ["utf-8", "utf-8-sig", "gb18030", "gbk"])
def test_csv_encodings_import_the_same_ledger(db: Session, tmp_path: Path, encoding: str) -> None:
    files = write_pair(tmp_path, encoding=encoding)
    report = import_ledger(files, db=db, actor="tester")

    assert (report.projects_created, report.units_created, report.blockers_opened) == (2, 3, 2)
    p = db.scalars(select(Project).where(Project.code == "T001")).one()
    assert p.name == "翠湖花园"
    assert p.aliases == ["翠湖小区", "老翠湖"]
    assert p.unit_count == 120 and p.initial_registration_done is False
    assert p.expected_resolution_date is not None
    assert p.expected_resolution_date.isoformat() == "2027-06-30"
    units = _units(db)
    # Building/unit/room are stored normalised: 3号楼 → 3, 2单元 → 2, 502室 → 502.
    assert set(units) == {
        ("T001", "3", "2", "501"),
        ("T001", "3", "2", "502"),
        ("T002", "1", "", "101"),
    }
    assert units[("T001", "3", "2", "501")].owner_name == "测甲"
    assert units[("T001", "3", "2", "502")].transfer_status == "in_progress"
    assert units[("T002", "1", "", "101")].transfer_status == "done"
    blockers = _blockers(db, "T001")
    assert blockers["completion_acceptance"].note == "竣工验收材料不全"
    assert blockers["completion_acceptance"].department == "housing_bureau"
    # An empty 责任单位 part means the catalogue's default department of that blocker.
    from app.policy.catalogue import get_catalogue

    assert blockers["mortgage"].department == get_catalogue().default_department("mortgage").code
    assert {b.status for b in blockers.values()} == {"open"}


def test_encoding_is_decided_on_the_whole_file_not_a_sample(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Tiny chunks make "late in the file" and "split across chunks" cheap to test.
    monkeypatch.setattr(reader, "_CHUNK", 16)
    late_gbk = tmp_path / "late.csv"
    late_gbk.write_bytes(b"T001,1,1,101,,,x\r\n" * 50 + "已办结\r\n".encode("gbk"))
    assert reader.detect_encoding(lambda: late_gbk.open("rb")) == ("gb18030", 51)
    # UTF-8 characters cut in half by a chunk boundary are still UTF-8.
    split_utf8 = tmp_path / "split.csv"
    split_utf8.write_bytes(("测" * 100 + "\n").encode("utf-8"))
    assert reader.detect_encoding(lambda: split_utf8.open("rb")) == ("utf-8", 1)
    bom = tmp_path / "bom.csv"
    bom.write_bytes("项目编号\n".encode("utf-8-sig"))
    assert reader.detect_encoding(lambda: bom.open("rb"))[0] == "utf-8-sig"


def test_xlsx_with_both_sheets_in_any_order(db: Session, tmp_path: Path) -> None:
    units = [
        # Numbers and dates as a spreadsheet stores them, not as text.
        ["T001", 3, 2, 501, "测甲", ID_A, "未办理"],
        ["T002", "1栋", None, "0101", None, None, "已办结"],
    ]
    projects = [
        [*project(**{"总套数": 120, "预计化解日期": datetime(2027, 6, 30)}).values()],
        [*projects_default()[1].values()],
    ]
    path = write_xlsx(
        tmp_path / "台账.xlsx",
        [("房屋明细", UNIT_HEADER, units), ("Sheet2", [], []), ("项目", PROJECT_HEADER, projects)],
    )
    report = import_ledger([path], db=db, actor="tester")

    assert (report.projects_created, report.units_created) == (2, 2)
    assert set(_units(db)) == {("T001", "3", "2", "501"), ("T002", "1", "", "101")}
    p = db.scalars(select(Project).where(Project.code == "T001")).one()
    assert p.unit_count == 120
    assert p.expected_resolution_date is not None
    assert p.expected_resolution_date.isoformat() == "2027-06-30"


def test_uploads_as_bytes_pairs_and_file_objects(db: Session) -> None:
    projects = csv_bytes(PROJECT_HEADER, projects_default(), "utf-8-sig")
    units = csv_bytes(UNIT_HEADER, units_default(), "gb18030")
    buf = io.BytesIO(units)
    buf.name = "房屋.csv"
    report = import_ledger([("项目.csv", projects), buf], db=db, actor="console:admin")
    assert (report.projects_created, report.units_created) == (2, 3)
    assert report.sheets == ["项目.csv（项目表）", "房屋.csv（房屋表）"]
    # One source without a list is one file, not a sequence of characters or parts.
    again = import_ledger(("项目.csv", projects), db=db, actor="console:admin")
    assert again.projects_unchanged == 2 and not again.changed


def test_units_may_refer_to_projects_already_in_the_database(db: Session, tmp_path: Path) -> None:
    import_ledger([write_pair(tmp_path)[0]], db=db, actor="tester")
    assert _count(db, Unit) == 0
    units = write_csv(tmp_path / "more.csv", UNIT_HEADER, units_default())
    report = import_ledger([units], db=db, actor="tester")
    assert report.units_created == 3
    assert report.projects_created == report.projects_updated == 0


def test_one_value_of_note_and_department_applies_to_every_blocker(
    db: Session, tmp_path: Path
) -> None:
    row = project(
        **{"卡点": "mortgage；court_seizure", "卡点说明": "抵押查封未解除", "责任单位": "县法院"}
    )
    import_ledger([write_csv(tmp_path / "p.csv", PROJECT_HEADER, [row])], db=db, actor="t")
    blockers = _blockers(db, "T001")
    assert set(blockers) == {"mortgage", "court_seizure"}
    assert {b.note for b in blockers.values()} == {"抵押查封未解除"}
    assert {b.department for b in blockers.values()} == {"court"}


# --- validation ---------------------------------------------------------------------------

BAD_ID = ID_A[:-1] + ("0" if ID_A[-1] != "0" else "1")  # wrong check digit
BAD_ID_REASON = ""
try:
    validate_id_number(BAD_ID)
except ValueError as exc:
    BAD_ID_REASON = str(exc)

# 15 significant digits kept by Excel, the rest zeros (the check digit then fails).
EXCEL_ZEROED_ID = ID_A[:15] + "000"
assert check_digit(EXCEL_ZEROED_ID[:17]) != "0"

# (name, projects, units, expected (sheet, row, column), reason fragment)
BAD_CASES: list[
    tuple[str, list[dict[str, str]], list[dict[str, str]], tuple[str, int, str], str]
] = [
    (
        "unknown blocker code",
        [project(**{"卡点": "completion_acceptance;no_such_thing"})],
        [],
        ("projects.csv", 2, "卡点"),
        "未知的卡点代码“no_such_thing”",
    ),
    (
        "note count differs from blocker count",
        [project(**{"卡点说明": "一;二;三"})],
        [],
        ("projects.csv", 2, "卡点说明"),
        "条数与卡点（2个）不一致",
    ),
    (
        "department count differs from blocker count",
        [projects_default()[1], project(**{"卡点": "mortgage", "责任单位": "住建局;税务局"})],
        [],
        ("projects.csv", 3, "责任单位"),
        "个数与卡点（1个）不一致",
    ),
    (
        "unknown department",
        [project(**{"责任单位": "住建局;火星局"})],
        [],
        ("projects.csv", 2, "责任单位"),
        "未知的责任单位“火星局”",
    ),
    (
        "bad date",
        [project(**{"预计化解日期": "2027-02-30"})],
        [],
        ("projects.csv", 2, "预计化解日期"),
        "日期“2027-02-30”不正确",
    ),
    (
        "bad 首次登记",
        [project(**{"首次登记": "办完了"})],
        [],
        ("projects.csv", 2, "首次登记"),
        "首次登记只能填“已完成”或“未完成”",
    ),
    (
        "missing project name",
        [project(**{"项目名称": ""})],
        [],
        ("projects.csv", 2, "项目名称"),
        "项目名称不能为空",
    ),
    (
        "address too long for the database",
        [project(**{"地址": "路" * 257})],
        [],
        ("projects.csv", 2, "地址"),
        "地址太长（最多256个字）",
    ),
    (
        "non-numeric 总套数",
        [project(**{"总套数": "约100套"})],
        [],
        ("projects.csv", 2, "总套数"),
        "总套数应为不小于0的整数",
    ),
    (
        "duplicate project",
        [project(), project(**{"项目名称": "别的名字"})],
        [],
        ("projects.csv", 3, "项目编号"),
        "项目编号“T001”重复",
    ),
    (
        "bad ID number",
        projects_default(),
        [unit(), unit(**{"房号": "601", "身份证号": BAD_ID})],
        ("units.csv", 3, "身份证号"),
        BAD_ID_REASON,
    ),
    (
        "ID number turned into a number by Excel (scientific notation)",
        projects_default(),
        [unit(), unit(**{"房号": "601", "身份证号": "9.90101E+17"})],
        ("units.csv", 3, "身份证号"),
        "科学计数法数字，后几位已丢失；该列在表格软件里可能是“数字”格式",
    ),
    (
        "ID number whose last digits Excel turned into zeros",
        projects_default(),
        [unit(), unit(**{"房号": "601", "身份证号": EXCEL_ZEROED_ID})],
        ("units.csv", 3, "身份证号"),
        "身份证号校验位不正确，请核对后重新输入（该列在表格软件里可能是“数字”格式",
    ),
    (
        "duplicate unit (written differently)",
        projects_default(),
        [unit(), unit(**{"幢号": "三号楼", "单元": "二单元", "房号": "501室", "身份证号": ID_C})],
        ("units.csv", 3, "房号"),
        "房屋重复：与第2行是同一套房",
    ),
    (
        "unit of an unknown project",
        projects_default(),
        [unit(**{"项目编号": "NOPE"})],
        ("units.csv", 2, "项目编号"),
        "项目编号“NOPE”不在项目表中",
    ),
    (
        "bad 转移登记",
        projects_default(),
        [unit(**{"转移登记": "已完成"})],
        ("units.csv", 2, "转移登记"),
        "转移登记只能填“已办结”“办理中”或“未办理”",
    ),
    (
        "missing room",
        projects_default(),
        [unit(**{"房号": ""})],
        ("units.csv", 2, "房号"),
        "房号不能为空",
    ),
]


@pytest.mark.parametrize(
    ("projects", "units", "where", "fragment"),
    [pytest.param(p, u, w, f, id=name) for name, p, u, w, f in BAD_CASES],
)
def test_every_bad_row_kind_is_reported_and_nothing_imported(
    db: Session,
    tmp_path: Path,
    projects: list[dict[str, str]],
    units: list[dict[str, str]],
    where: tuple[str, int, str],
    fragment: str,
) -> None:
    assert fragment, "the bad-ID reason must come from validate_id_number"
    files = [write_csv(tmp_path / "projects.csv", PROJECT_HEADER, projects)]
    if units:
        files.append(write_csv(tmp_path / "units.csv", UNIT_HEADER, units))
    with pytest.raises(LedgerValidationError) as caught:
        import_ledger(files, db=db, actor="tester")

    found = [e for e in caught.value.errors if (e.sheet, e.row, e.column) == where]
    assert found, caught.value.errors
    assert fragment in found[0].reason
    # Valid rows before and after the bad one were not imported either.
    assert _count(db, Project) == _count(db, Unit) == _count(db, Blocker) == 0
    assert _count(db, AuditLog) == 0


def test_all_bad_rows_of_all_sheets_are_listed_with_spreadsheet_row_numbers(
    db: Session, tmp_path: Path
) -> None:
    projects_path = tmp_path / "p.csv"
    # A blank line in the middle still counts as a row in the spreadsheet.
    projects_path.write_bytes(
        csv_bytes(PROJECT_HEADER, [project()])
        + b"\r\n"
        + csv_bytes(
            PROJECT_HEADER,
            [project(**{"项目编号": "T009", "卡点": "bogus", "卡点说明": "", "责任单位": ""})],
        ).split(b"\r\n", 1)[1]
    )
    units = [unit(**{"转移登记": "?"}), unit(**{"房号": "502", "身份证号": "12345"})]
    path = write_xlsx(
        tmp_path / "u.xlsx", [("房屋", UNIT_HEADER, [list(r.values()) for r in units])]
    )
    with pytest.raises(LedgerValidationError) as caught:
        import_ledger([projects_path, path], db=db, actor="tester")
    assert [(e.sheet, e.row, e.column) for e in caught.value.errors] == [
        ("p.csv", 4, "卡点"),
        ("房屋", 2, "转移登记"),
        ("房屋", 3, "身份证号"),
    ]
    assert caught.value.errors[2].reason == "身份证号应为18位，您输入的是5位"
    assert "12345" not in caught.value.message
    assert caught.value.status_code == 422 and caught.value.total == 3


def test_unknown_and_missing_headers_are_reported(db: Session, tmp_path: Path) -> None:
    header = [h for h in UNIT_HEADER if h != "转移登记"] + ["备注"]
    path = write_csv(tmp_path / "u.csv", header, [unit()])
    with pytest.raises(LedgerValidationError) as caught:
        import_ledger([path], db=db, actor="tester")
    errors = {(e.row, e.column): e.reason for e in caught.value.errors}
    assert errors[(1, "备注")] == "无法识别的列名“备注”（房屋表）"
    assert errors[(1, "转移登记")] == "房屋表缺少列“转移登记”"

    other = write_csv(tmp_path / "x.csv", ["姓名", "电话"], [])
    with pytest.raises(LedgerValidationError) as caught:
        import_ledger([other], db=db, actor="tester")
    assert caught.value.errors == [
        RowError("x.csv", 1, "", "无法识别的表头：既不是项目表也不是房屋表")
    ]


def test_a_bad_file_leaves_existing_data_untouched(db: Session, tmp_path: Path) -> None:
    import_ledger(write_pair(tmp_path), db=db, actor="tester")
    before = db.execute(text("SELECT name, updated_at FROM project ORDER BY code")).all()
    audits = _count(db, AuditLog)
    bad = write_pair(
        tmp_path,
        projects=[project(**{"项目名称": "新名字", "卡点": ""}), projects_default()[1]],
        units=[unit(**{"转移登记": "已办结"}), unit(**{"项目编号": "NOPE"})],
    )
    with pytest.raises(LedgerValidationError):
        import_ledger(bad, db=db, actor="tester")
    db.expire_all()
    assert db.execute(text("SELECT name, updated_at FROM project ORDER BY code")).all() == before
    assert {b.status for b in _blockers(db, "T001").values()} == {"open"}
    assert _units(db)[("T001", "3", "2", "501")].transfer_status == "not_started"
    assert _count(db, AuditLog) == audits


# --- re-import ------------------------------------------------------------------------------


def _state(db: Session) -> list[Any]:
    db.expire_all()
    return [
        db.execute(text("SELECT * FROM project ORDER BY id")).all(),
        db.execute(text("SELECT * FROM blocker ORDER BY id")).all(),
        db.execute(text("SELECT * FROM unit ORDER BY id")).all(),
    ]


def test_reimporting_the_same_file_changes_nothing(db: Session, tmp_path: Path) -> None:
    files = write_pair(tmp_path)
    import_ledger(files, db=db, actor="tester")
    state, audits = _state(db), _count(db, AuditLog)

    report = import_ledger(files, db=db, actor="tester")

    assert not report.changed
    assert (report.projects_unchanged, report.units_unchanged) == (2, 3)
    assert _state(db) == state  # not even an updated_at moved
    assert _count(db, AuditLog) == audits


def test_an_updated_file_updates_and_resolves_dropped_blockers(db: Session, tmp_path: Path) -> None:
    import_ledger(write_pair(tmp_path), db=db, actor="first")
    audit_ids = set(db.scalars(select(AuditLog.id)))
    untouched_before = _units(db)[("T002", "1", "", "101")].updated_at

    projects = [
        # mortgage dropped (→ resolved), fees_unpaid added, a new expected date.
        project(
            **{
                "卡点": "completion_acceptance;fees_unpaid",
                "卡点说明": "竣工验收材料不全;配套费未缴",
                "责任单位": "住建局;住建局",
                "预计化解日期": "2027-09-30",
            }
        ),
        projects_default()[1],
    ]
    units = units_default()
    units[0] = unit(**{"转移登记": "办理中"})
    units.append(unit(**{"房号": "601", "业主姓名": "测丙", "身份证号": ID_C}))
    report = import_ledger(write_pair(tmp_path, projects, units), db=db, actor="second")

    assert (report.projects_updated, report.projects_unchanged) == (1, 1)
    assert (report.units_created, report.units_updated, report.units_unchanged) == (1, 1, 2)
    assert (report.blockers_opened, report.blockers_resolved) == (1, 1)
    blockers = _blockers(db, "T001")
    assert blockers["mortgage"].status == "resolved"
    assert blockers["fees_unpaid"].status == "open"
    assert blockers["completion_acceptance"].status == "open"
    assert blockers["mortgage"].changed_at > blockers["completion_acceptance"].changed_at
    units_now = _units(db)
    assert units_now[("T001", "3", "2", "501")].transfer_status == "in_progress"
    assert units_now[("T002", "1", "", "101")].updated_at == untouched_before

    new = db.scalars(select(AuditLog).where(AuditLog.id.not_in(audit_ids))).all()
    project_rows = [a for a in new if a.entity_type == "project"]
    assert [(a.actor, a.action, a.entity_id) for a in project_rows] == [
        ("second", "ledger_import", "T001")
    ]
    before, after = project_rows[0].before, project_rows[0].after
    assert before is not None and after is not None
    assert before["expected_resolution_date"] == "2027-06-30"
    assert after["expected_resolution_date"] == "2027-09-30"
    assert {b["code"]: b["status"] for b in after["blockers"]} == {
        "completion_acceptance": "open",
        "mortgage": "resolved",
        "fees_unpaid": "open",
    }
    # The unit changes are audited as counts only (rows carry names and ID hashes).
    unit_rows = [a for a in new if a.entity_type == "ledger"]
    assert [a.after for a in unit_rows] == [{"units_created": 1, "units_updated": 1}]

    # Listing the blocker again reopens it.
    report = import_ledger(write_pair(tmp_path, projects_default(), units), db=db, actor="third")
    assert (report.blockers_opened, report.blockers_resolved) == (1, 1)
    blockers = _blockers(db, "T001")
    assert blockers["mortgage"].status == "open" and blockers["fees_unpaid"].status == "resolved"


# --- privacy ------------------------------------------------------------------------------


def test_id_numbers_are_stored_only_as_keyed_hash_and_last_four(
    db: Session, tmp_path: Path
) -> None:
    import_ledger(write_pair(tmp_path), db=db, actor="tester")
    units = _units(db)
    a = units[("T001", "3", "2", "501")]
    assert (a.id_hash, a.id_last4) == (hash_id_number(ID_A), ID_A[-4:])
    assert units[("T002", "1", "", "101")].id_hash is None
    dump = " ".join(
        str(value)
        for table in ("unit", "project", "blocker", "audit_log")
        for row in db.execute(text(f"SELECT * FROM {table}"))
        for value in row
    )
    for id_number in (ID_A, ID_B):
        assert id_number not in dump
        assert id_number[:14] not in dump
    audit = " ".join(str(a.after) for a in db.scalars(select(AuditLog)))
    assert "测甲" not in audit


@pytest.mark.parametrize("batch_rows", [1, 2])
def test_rows_merged_in_earlier_batches_are_rolled_back_too(
    db: Session, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, batch_rows: int
) -> None:
    # Units are merged batch by batch while the file is clean; a duplicate or a bad row in a
    # later batch must still leave nothing behind.
    monkeypatch.setattr(service, "BATCH_ROWS", batch_rows)
    import_ledger(write_pair(tmp_path), db=db, actor="tester")
    state = _state(db)
    units = [
        unit(**{"房号": "701", "身份证号": ""}),
        unit(**{"房号": "702", "身份证号": "", "转移登记": "已办结"}),
        unit(**{"转移登记": "已办结"}),  # changes an existing home
        unit(**{"房号": "0701", "身份证号": ""}),  # the same home as the first row
    ]
    with pytest.raises(LedgerValidationError) as caught:
        import_ledger(write_pair(tmp_path, units=units), db=db, actor="tester")
    assert [(e.row, e.column) for e in caught.value.errors] == [(5, "房号")]
    assert _state(db) == state

    units[3] = unit(**{"房号": "703", "转移登记": "办结"})
    with pytest.raises(LedgerValidationError):
        import_ledger(write_pair(tmp_path, units=units), db=db, actor="tester")
    assert _state(db) == state


def test_values_with_backslashes_tabs_and_newlines_round_trip(db: Session, tmp_path: Path) -> None:
    # The PostgreSQL path stages rows with COPY's text format, where these need escaping.
    odd = "测\\N\t甲\r\n乙\\"
    units = [unit(**{"业主姓名": odd}), unit(**{"房号": "A\\1", "业主姓名": "\\N"})]
    files = write_pair(tmp_path, units=units)
    import_ledger(files, db=db, actor="tester")
    stored = _units(db)
    assert stored[("T001", "3", "2", "501")].owner_name == odd
    assert stored[("T001", "3", "2", "A\\1")].owner_name == "\\N"
    assert not import_ledger(files, db=db, actor="tester").changed


def test_undecodable_or_damaged_files_are_errors_not_crashes(db: Session, tmp_path: Path) -> None:
    garbage = tmp_path / "garbage.csv"
    garbage.write_bytes(csv_bytes(UNIT_HEADER, [unit()], "gbk") + b"\xff\xfe\xfd\x80\x80\n")
    with pytest.raises(LedgerValidationError) as caught:
        import_ledger([garbage], db=db, actor="tester")
    assert [(e.sheet, e.row) for e in caught.value.errors] == [("garbage.csv", 0)]
    assert "编码无法识别" in caught.value.errors[0].reason

    nul = tmp_path / "nul.csv"
    nul.write_bytes(csv_bytes(UNIT_HEADER, [unit()]) + b"T001,3,2,5\x0003,,,\xe6\x9c\xaa\n")
    with pytest.raises(LedgerValidationError) as caught:
        import_ledger(write_pair(tmp_path)[:1] + [nul], db=db, actor="tester")
    assert [(e.sheet, e.row) for e in caught.value.errors] == [("nul.csv", 3)]
    assert _count(db, Project) == 0

    fake = tmp_path / "fake.xlsx"
    fake.write_bytes(b"PK\x03\x04 not really a workbook")
    with pytest.raises(LedgerValidationError) as caught:
        import_ledger([fake], db=db, actor="tester")
    assert caught.value.errors[0].reason == "文件不是有效的 Excel（.xlsx）工作簿"

    huge = tmp_path / "huge.csv"
    huge.write_bytes(csv_bytes(UNIT_HEADER, [unit(), unit(**{"业主姓名": "长" * 1_100_000})]))
    with pytest.raises(LedgerValidationError) as caught:
        import_ledger(write_pair(tmp_path)[:1] + [huge], db=db, actor="tester")
    assert [(e.sheet, e.row) for e in caught.value.errors] == [("huge.csv", 3)]
    assert "文件无法读取" in caught.value.errors[0].reason
