"""The bulk first load (app.ledger.bulk, issue 15) stores exactly what the per-row import stores,
and gives way to it, with the unit table's indexes back as they were, whenever it cannot vouch
for a ledger: a bad row, a home twice, a home already in the table, a file pyarrow reads in
its own way. Each case is imported both ways in the same database and compared."""

from __future__ import annotations

import logging
import random
from collections.abc import Callable
from contextlib import ExitStack
from datetime import date, timedelta
from pathlib import Path
from typing import Any

import pyarrow as pa
import pytest
from ledger_files import ID_A, ID_B, ID_C, UNIT_HEADER, projects_default, unit, write_pair
from sqlalchemy import text
from sqlalchemy.orm import Session
from test_ledger_fast_paths import EXPECTED, X_ID, _bad_units, _id_samples

from app.core.config import settings
from app.core.security import hash_id_number, hash_id_numbers
from app.ledger import bulk
from app.ledger.reader import home_text
from app.ledger.rows import IdChecker
from app.ledger.service import LedgerValidationError, import_ledger
from app.status import ledger_version
from app.status.idcard import check_digit

WIDE = str.maketrans("0123456789", "０１２３４５６７８９")
BULK_DONE = "ledger bulk load:"
GAVE_WAY = "gave way to the per-row import"


def _with_check(first17: str) -> str:
    return first17 + check_digit(first17)


def _many_units(n: int, seed: int = 7) -> list[dict[str, str]]:
    """n different homes of T001 and T002 with valid, varied rows."""
    rng = random.Random(seed)
    rows = []
    for i in range(n):
        born = date(1930, 1, 1) + timedelta(days=rng.randrange(0, 30_000))
        rows.append(
            unit(
                **{
                    "项目编号": rng.choice(["T001", "T002"]),
                    "幢号": f"{i // 200 + 1}号楼",
                    "单元": rng.choice(["1单元", "2单元", ""]),
                    "房号": f"{(i % 200) // 10 + 1}{i % 10:02d}",
                    "业主姓名": rng.choice(["张伟", "王芳", "李娜", "欧阳明", ""]),
                    "身份证号": rng.choice(
                        [_with_check(f"990101{born:%Y%m%d}{rng.randrange(1000):03d}"), ""]
                    ),
                    "转移登记": rng.choice(["已办结", "办理中", "未办理"]),
                }
            )
        )
    return rows


def _awkward_units() -> list[dict[str, str]]:
    """Valid rows that the column-wise checks leave to the per-row validator, or normalise."""
    return [
        unit(**{"幢号": "十二号楼", "房号": "五〇一", "业主姓名": " 测乙 "}),
        unit(**{"房号": "0502", "身份证号": X_ID.lower()}),
        unit(**{"房号": "503", "身份证号": ID_B.translate(WIDE)}),
        unit(**{"房号": "504", "身份证号": " " + ID_C + " "}),
        unit(**{"幢号": "Ａ座", "单元": "", "房号": "505室", "身份证号": ""}),
        unit(**{"幢号": " 3号樓 ", "房号": "506", "业主姓名": "张三,李四"}),
        unit(**{"房号": "507", "业主姓名": "多行\n姓名", "转移登记": " 已办结"}),
        unit(**{"项目编号": " T002 ", "房号": "508", "业主姓名": "名" * 64}),
        {h: "" for h in UNIT_HEADER},  # a row of empty cells is skipped
        unit(**{"房号": "509", "业主姓名": "测丙\u3000"}),
    ]


def _stored(db: Session) -> dict[str, Any]:
    """Everything an import leaves behind, without ids and times."""
    units = db.execute(
        text(
            "SELECT p.code, u.building, u.unit, u.room, u.owner_name, u.id_hash, u.id_last4, "
            "u.transfer_status FROM unit u JOIN project p ON p.id = u.project_id"
        )
    ).all()
    tally = db.execute(
        text(
            "SELECT p.code, t.units, t.transfer_done FROM unit_tally t "
            "JOIN project p ON p.id = t.project_id"
        )
    ).all()
    audit = db.execute(
        text("SELECT entity_type, entity_id, before, after FROM audit_log WHERE actor = 'tester'")
    ).all()
    return {
        "units": sorted(tuple(r) for r in units),
        "tally": sorted(tuple(r) for r in tally),
        "audit": sorted((r[0], r[1], repr(r[2]), repr(r[3])) for r in audit),
    }


def _schema(db: Session) -> list[str]:
    """The unit table's indexes and constraints as PostgreSQL describes them."""
    if db.get_bind().dialect.name != "postgresql":
        return []
    idx = db.scalars(
        text("SELECT pg_get_indexdef(indexrelid) FROM pg_index WHERE indrelid = 'unit'::regclass")
    ).all()
    cons = db.execute(
        text(
            "SELECT conname || ' ' || pg_get_constraintdef(oid) FROM pg_constraint "
            "WHERE conrelid = 'unit'::regclass"
        )
    ).all()
    return sorted([*idx, *(c[0] for c in cons)])


def _both_ways(
    db: Session,
    files: list[Path],
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
) -> tuple[Any, Any, str]:
    """Import with the bulk path allowed, then (rolled back) with the per-row import only:
    (bulk's outcome, per-row outcome, what the bulk attempt logged). An outcome is the report's
    summary and what was stored, or the error report."""
    outcomes = []
    logs = ""
    for threshold in (0, 10**12):
        monkeypatch.setattr(settings, "ledger_bulk_min_rows", threshold)
        caplog.clear()
        savepoint = db.begin_nested()
        try:
            with caplog.at_level(logging.INFO, logger="app.ledger"):
                report = import_ledger(files, db=db, actor="tester")
            db.flush()
            outcomes.append((report.summary_zh(), _stored(db)))
        except LedgerValidationError as exc:
            outcomes.append(([(e.row, e.column, e.reason, e.home) for e in exc.errors], None))
        finally:
            if threshold == 0:
                logs = caplog.text
            savepoint.rollback()
    return outcomes[0], outcomes[1], logs


@pytest.fixture
def both_ways(
    db: Session, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> Callable[[list[Path]], tuple[Any, Any, str]]:
    """_both_ways for this test's session."""
    return lambda files: _both_ways(db, files, monkeypatch, caplog)


@pytest.mark.parametrize("block_bytes", [97, 1 << 20])
def test_the_bulk_load_stores_what_the_per_row_import_stores(
    db: Session,
    backend: str,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    both_ways: Callable[[list[Path]], tuple[Any, Any, str]],
    block_bytes: int,
) -> None:
    # 97 bytes: blocks of a row or two, cut beside quoted cells with commas and line breaks.
    monkeypatch.setattr(bulk, "BLOCK_BYTES", block_bytes)
    units = [*_awkward_units(), *_many_units(1500)]
    files = write_pair(tmp_path, projects_default(), units)
    before = _schema(db)
    fast, slow, logs = both_ways(files)
    assert fast == slow
    summary, stored = fast
    assert "房屋：新增 1509，更新 0，未变 0" in summary
    assert len(stored["units"]) == 1509
    assert ("T001", "12", "2", "501", "测乙", hash_id_number(ID_A), ID_A[-4:], "not_started") in (
        stored["units"]
    )
    if backend == "postgresql":
        assert f"{BULK_DONE} 1509 units" in logs
    else:  # SQLite: the per-row import, always
        assert BULK_DONE not in logs and GAVE_WAY not in logs
    assert _schema(db) == before


def test_bad_rows_get_the_per_row_report_and_the_indexes_come_back(
    db: Session,
    backend: str,
    tmp_path: Path,
    both_ways: Callable[[list[Path]], tuple[Any, Any, str]],
) -> None:
    before = _schema(db)
    files = write_pair(tmp_path, units=_bad_units())
    fast, slow, logs = both_ways(files)
    assert fast == slow == (EXPECTED_REPORT, None)
    if backend == "postgresql":
        assert GAVE_WAY in logs and BULK_DONE not in logs
    assert _schema(db) == before
    assert db.execute(text("SELECT count(*) FROM unit")).scalar_one() == 0


EXPECTED_REPORT = [tuple(e) for e in EXPECTED]


def test_a_home_twice_is_found_by_the_rebuilt_unique_constraint(
    db: Session,
    backend: str,
    tmp_path: Path,
    both_ways: Callable[[list[Path]], tuple[Any, Any, str]],
) -> None:
    # Every row is valid on its own: only the unique constraint, rebuilt, sees the repeat.
    units = _many_units(300)
    first = units[0]
    units.append(dict(first, **{"房号": "0" + first["房号"], "业主姓名": "测丁"}))
    before = _schema(db)
    fast, slow, logs = both_ways(write_pair(tmp_path, units=units))
    assert fast == slow
    assert fast[1] is None
    home = home_text("1", first["单元"].removesuffix("单元"), first["房号"])
    assert fast[0] == [(302, "房号", "房屋重复：与第2行是同一套房（幢号、单元、房号相同）", home)]
    if backend == "postgresql":
        assert "a home twice" in logs
    assert _schema(db) == before


def test_homes_already_in_the_table_are_updated_by_the_per_row_import(
    db: Session,
    backend: str,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    both_ways: Callable[[list[Path]], tuple[Any, Any, str]],
) -> None:
    units = _many_units(400)
    monkeypatch.setattr(settings, "ledger_bulk_min_rows", 0)
    import_ledger(write_pair(tmp_path, projects_default(), units), db=db, actor="tester")
    units[5]["转移登记"] = "已办结" if units[5]["转移登记"] != "已办结" else "未办理"
    files = write_pair(tmp_path, projects_default(), units)
    drops: list[object] = []
    real_drop = bulk._drop_unit_indexes
    monkeypatch.setattr(bulk, "_drop_unit_indexes", lambda conn: drops.append(1) or real_drop(conn))
    fast, slow, logs = both_ways(files)
    assert fast == slow
    assert "房屋：新增 0，更新 1，未变 399" in fast[0]
    if backend == "postgresql":
        assert GAVE_WAY in logs
    # Its first block already gave way: the table was never locked nor its indexes dropped.
    assert drops == []


def test_a_ragged_row_or_a_quote_in_a_cell_gives_way_without_logging_the_row(
    backend: str,
    tmp_path: Path,
    both_ways: Callable[[list[Path]], tuple[Any, Any, str]],
) -> None:
    good = _many_units(50)
    quoted = [*good, unit(**{"房号": "999", "业主姓名": '甲"乙'})]
    files = write_pair(tmp_path, projects_default(), quoted)
    fast, slow, logs = both_ways(files)
    assert fast == slow and fast[1] is not None
    if backend == "postgresql":
        assert "a quote character in a cell" in logs
    # A row with a cell past the last column: Python's reader ignores it, pyarrow refuses the
    # block and quotes the row in its message.
    files = write_pair(tmp_path, projects_default(), good)
    with files[1].open("a", encoding="utf-8") as fh:
        fh.write(f"T001,3号楼,2单元,998,秘名丁,{ID_B},未办理,多余\r\n")
    fast, slow, logs = both_ways(files)
    assert fast == slow and fast[1] is not None
    assert "房屋：新增 51" in fast[0]
    if backend == "postgresql":
        assert "pyarrow could not read a block" in logs
    assert "秘名丁" not in logs and ID_B not in logs


def test_the_bulk_load_marks_the_ledger_changed(
    db: Session, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Its COPY bypasses the statement hook that marks ledger writes (SQLite: per-row, hooked).
    monkeypatch.setattr(settings, "ledger_bulk_min_rows", 0)
    conn = db.connection()
    assert not ledger_version.dirty(conn)
    import_ledger(write_pair(tmp_path, units=_many_units(20)), db=db, actor="tester")
    assert ledger_version.dirty(conn)


def test_the_bulk_load_applies_only_to_big_first_loads(
    db: Session, backend: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from app.ledger.reader import open_sheets

    files = write_pair(tmp_path, units=_many_units(30))
    with ExitStack() as stack:
        sheets = [s for s in open_sheets(list(files), stack, []) if s.kind == "units"]
        monkeypatch.setattr(settings, "ledger_bulk_min_rows", 31)
        assert not bulk.applies(db, sheets)
        monkeypatch.setattr(settings, "ledger_bulk_min_rows", 30)
        assert bulk.applies(db, sheets) == (backend == "postgresql")
        (tmp_path / "gbk").mkdir()
        gbk = write_pair(tmp_path / "gbk", units=_many_units(30), encoding="gb18030")
        gbk_sheets = [s for s in open_sheets(list(gbk), stack, []) if s.kind == "units"]
        assert not bulk.applies(db, gbk_sheets)
    if backend == "postgresql":
        (tmp_path / "first").mkdir()
        first = write_pair(tmp_path / "first", units=_many_units(40, seed=3))
        import_ledger(first, db=db, actor="tester")
        with ExitStack() as stack:
            sheets = [s for s in open_sheets(list(files), stack, []) if s.kind == "units"]
            # 30 rows into a table of 40: not a first load.
            monkeypatch.setattr(settings, "ledger_bulk_min_rows", 0)
            assert not bulk.applies(db, sheets)


def test_ids_are_judged_column_wise_as_the_id_checker_judges_them() -> None:
    checker = IdChecker()
    rng = random.Random(11)
    samples = _id_samples()
    for _ in range(3000):
        y = rng.choice([1899, 1900, 2000, date.today().year, date.today().year + 1])
        body = f"{rng.randrange(10**6):06d}{y:04d}{rng.randrange(14):02d}{rng.randrange(33):02d}"
        body += f"{rng.randrange(1000):03d}"
        samples.append(body + rng.choice([check_digit(body), *"0123456789Xx"]))
    samples.append(_with_check(f"990101{date.today():%Y%m%d}001"))
    check = bulk._BlockCheck.__new__(bulk._BlockCheck)
    check.today = date.today()
    got = check._id_valid(pa.array(samples)).to_pylist()
    assert got == [checker.valid(s) for s in samples]
    assert sum(got) > 300  # the samples' 300 valid IDs and some of the random ones


def test_many_id_hashes_at_once_are_hash_id_number() -> None:
    ids = [ID_A, ID_B, ID_C, X_ID]
    assert hash_id_numbers(ids) == [hash_id_number(i) for i in ids]
    assert hash_id_numbers([]) == []


def test_sources_given_as_bytes_or_file_objects_load_the_same(
    db: Session,
    backend: str,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
) -> None:
    # An upload reaches the importer as (filename, bytes) or an open file, not only as a path.
    monkeypatch.setattr(settings, "ledger_bulk_min_rows", 0)
    projects, units = write_pair(tmp_path, units=_many_units(120))
    outcomes = []
    stack = ExitStack()
    for as_given in (
        lambda p: p,
        lambda p: (p.name, p.read_bytes()),
        lambda p: (p.name, stack.enter_context(p.open("rb"))),
    ):
        savepoint = db.begin_nested()
        caplog.clear()
        with caplog.at_level(logging.INFO, logger="app.ledger"):
            report = import_ledger([as_given(projects), as_given(units)], db=db, actor="tester")
        db.flush()
        outcomes.append((report.summary_zh(), _stored(db)))
        if backend == "postgresql":
            assert f"{BULK_DONE} 120 units" in caplog.text
        savepoint.rollback()
    stack.close()
    assert outcomes[0] == outcomes[1] == outcomes[2]


def test_a_stray_quote_gives_way_at_once(
    backend: str,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    both_ways: Callable[[list[Path]], tuple[Any, Any, str]],
) -> None:
    # A quote inside an unquoted cell: Python's reader keeps it as a character, but from there
    # on no line break has an even number of quotes before it; the blocks must not grow with
    # the file (nor the search for a record's end take quadratic time).
    monkeypatch.setattr(bulk, "BLOCK_BYTES", 200)
    files = write_pair(tmp_path, projects_default())  # with units_default()'s 3 rows
    rows = _many_units(400)
    with files[1].open("a", encoding="utf-8", newline="") as fh:
        fh.write(f'T001,3号楼,2单元,997,甲"乙,{ID_B},未办理\r\n')
        for r in rows:
            fh.write(",".join(r[h] for h in UNIT_HEADER) + "\r\n")
    fast, slow, logs = both_ways(files)
    assert fast == slow and fast[1] is not None
    assert "房屋：新增 404" in fast[0]
    assert ("T001", "3", "2", "997", '甲"乙', hash_id_number(ID_B), ID_B[-4:], "not_started") in (
        fast[1]["units"]
    )
    if backend == "postgresql":
        assert "a quoted cell that does not end" in logs
