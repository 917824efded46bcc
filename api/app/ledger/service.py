"""Ledger (台账) import: validate every row of the staff's spreadsheets, then write all or nothing.

Projects are few (a county has hundreds) and are handled row by row with their blockers and
audit trail. Units are many (a province lists millions): they are streamed into a temporary
staging table in batches (COPY on PostgreSQL, executemany on SQLite) and, while no bad row has
been seen, merged into `unit` batch by batch with set-based statements from a writer thread.
Duplicates are found in the staging table at the end. Any bad row rolls the savepoint back, so
nothing is half-imported; memory holds a few batches, never the file.
"""

from __future__ import annotations

import logging
import os
import queue
import re
import sys
import threading
import uuid
from collections.abc import Callable, Iterator, Sequence
from contextlib import ExitStack
from dataclasses import asdict, dataclass, field
from datetime import date, datetime
from typing import Any

from sqlalchemy import DateTime, bindparam, insert, select, text
from sqlalchemy.orm import Session, selectinload

from app.audit.models import AuditLog
from app.core.config import settings
from app.core.database import utcnow
from app.core.errors import AppError
from app.dashboard.tally import refresh_unit_tally, set_unit_tally
from app.ledger import bulk
from app.ledger.reader import (
    SHEET_LABELS,
    LedgerSource,
    RowError,
    Sheet,
    SheetReadError,
    open_sheets,
)
from app.ledger.rows import Errors, UnitValidator
from app.policy.catalogue import get_catalogue
from app.status.models import (
    BLOCKER_OPEN,
    BLOCKER_RESOLVED,
    UNIT_LEDGER_COLUMNS,
    Blocker,
    Project,
)

__all__ = ["ImportReport", "LedgerValidationError", "RowError", "import_ledger"]

log = logging.getLogger("app.ledger")

AUDIT_ACTION = "ledger_import"
BATCH_ROWS = 10_000
# pg_advisory_xact_lock key of unit imports (one at a time per database; any fixed number).
_IMPORT_LOCK = 0x4C45_4447_4552  # "LEDGER"
INITIAL_REGISTRATION = {"已完成": True, "未完成": False}
# Column sizes of the project table (PostgreSQL refuses longer values).
_PROJECT_TEXT_LIMITS = {"项目名称": 128, "区县": 64, "地址": 256, "开发企业": 128}
_LIST_SPLIT = re.compile(r"[;；]")
_DATE = re.compile(r"^(\d{4})[-/.年](\d{1,2})[-/.月](\d{1,2})日?$")
# COPY text format: backslash, tab, newline and carriage return are escaped; NULL is \N.
_COPY_ESCAPES = str.maketrans({"\\": "\\\\", "\t": "\\t", "\n": "\\n", "\r": "\\r"})
_STAGE_COLUMNS = ("seq", "sheet_idx", "row_no", "project_code", *UNIT_LEDGER_COLUMNS)


class LedgerValidationError(AppError):
    """The ledger has bad rows; nothing was imported. `.errors` lists them in file order."""

    def __init__(self, errors: list[RowError], total: int | None = None) -> None:
        self.errors = errors
        self.total = total if total is not None else len(errors)
        message = f"台账有 {self.total} 处错误，未导入任何数据。请修改后重新导入。"
        super().__init__(
            422, "ledger_invalid", message, {"errors": [asdict(e) for e in errors[:1000]]}
        )


@dataclass
class ImportReport:
    """What an import did (all zero for a re-import of the same file)."""

    projects_created: int = 0
    projects_updated: int = 0
    projects_unchanged: int = 0
    units_created: int = 0
    units_updated: int = 0
    units_unchanged: int = 0
    blockers_opened: int = 0
    blockers_resolved: int = 0
    sheets: list[str] = field(default_factory=list)

    @property
    def changed(self) -> bool:
        """True when anything was written."""
        return bool(
            self.projects_created
            or self.projects_updated
            or self.units_created
            or self.units_updated
            or self.blockers_opened
            or self.blockers_resolved
        )

    def summary_zh(self) -> str:
        """A short Chinese summary for staff."""
        return (
            f"项目：新增 {self.projects_created}，更新 {self.projects_updated}，"
            f"未变 {self.projects_unchanged}；"
            f"房屋：新增 {self.units_created}，更新 {self.units_updated}，"
            f"未变 {self.units_unchanged}；"
            f"卡点：新增或重新打开 {self.blockers_opened}，已化解 {self.blockers_resolved}。"
        )


# --- the policy catalogue ------------------------------------------------------------------


class _Catalogue:
    """The parts of the policy catalogue the import needs: blocker codes and departments."""

    def __init__(self) -> None:
        self._cat = get_catalogue()
        self.blocker_codes = set(self._cat.blockers)
        self._by_name: dict[str, str | None] = {}

    def department(self, name: str) -> str | None:
        """Department code for a ledger 责任单位 value (Chinese name, alias or code)."""
        if name not in self._by_name:
            found = self._cat.department_by_name(name)
            self._by_name[name] = found.code if found is not None else None
        return self._by_name[name]

    def default_department(self, blocker_code: str) -> str:
        """The catalogue's default department for a blocker code ('' for an unknown code)."""
        if blocker_code not in self.blocker_codes:
            return ""
        return self._cat.default_department(blocker_code).code


# --- row validation -----------------------------------------------------------------------


@dataclass
class _ProjectRow:
    code: str
    fields: dict[str, Any]
    blockers: list[tuple[str, str, str]]  # (code, note, department code)


def _parse_date(value: str) -> date | None:
    m = _DATE.match(value)
    if not m:
        raise ValueError
    return date(int(m[1]), int(m[2]), int(m[3]))


def _split_list(value: str, expected: int) -> list[str] | None:
    """`;`-separated values: one for all, or exactly `expected` of them; None when neither."""
    if not value:
        return [""] * expected
    parts = [p.strip() for p in value.split(";")]
    if len(parts) == 1 and expected > 1:
        # Staff type the full-width ； too; a single note may itself contain one, so the
        # full-width split only counts when it gives exactly one part per blocker.
        wide = [p.strip() for p in _LIST_SPLIT.split(value)]
        if len(wide) == expected:
            return wide
    if len(parts) == 1:
        return parts * expected
    return parts if len(parts) == expected else None


def _validate_project(
    sheet: Sheet, number: int, cells: tuple[str, ...], cat: _Catalogue, errors: Errors
) -> _ProjectRow | None:
    def get(col: str) -> str:
        idx = sheet.columns.get(col)
        return cells[idx] if idx is not None and idx < len(cells) else ""

    def bad(col: str, reason: str) -> None:
        errors.add(sheet.name, number, col, reason)

    before = errors.total
    code, name = get("项目编号"), get("项目名称")
    if not code:
        bad("项目编号", "项目编号不能为空")
    elif len(code) > 32:
        bad("项目编号", "项目编号太长（最多32个字符）")
    if not name:
        bad("项目名称", "项目名称不能为空")
    for col, limit in _PROJECT_TEXT_LIMITS.items():
        if len(get(col)) > limit:
            bad(col, f"{col}太长（最多{limit}个字）")
    units_text = get("总套数").replace(",", "").replace("，", "")
    unit_count = 0
    if not units_text:
        bad("总套数", "总套数不能为空")
    elif not units_text.isdigit():
        bad("总套数", f"总套数应为不小于0的整数，不能是“{units_text}”")
    else:
        unit_count = int(units_text)
    initial = get("首次登记")
    if initial not in INITIAL_REGISTRATION:
        shown = f"“{initial}”" if initial else "空"
        bad("首次登记", f"首次登记只能填“已完成”或“未完成”，不能是{shown}")
    expected: date | None = None
    if raw_date := get("预计化解日期"):
        try:
            expected = _parse_date(raw_date)
        except ValueError:
            bad("预计化解日期", f"日期“{raw_date}”不正确，应为 YYYY-MM-DD，例如 2027-06-30")

    codes = [c.strip() for c in _LIST_SPLIT.split(get("卡点")) if c.strip()]
    for c in codes:
        if c not in cat.blocker_codes:
            bad("卡点", f"未知的卡点代码“{c}”")
    if len(set(codes)) != len(codes):
        bad("卡点", "卡点代码重复")
    notes = _split_list(get("卡点说明"), len(codes))
    if notes is None or (not codes and get("卡点说明")):
        bad("卡点说明", f"卡点说明的条数与卡点（{len(codes)}个）不一致")
    departments = _split_list(get("责任单位"), len(codes))
    dept_codes: list[str] = []
    if departments is None or (not codes and get("责任单位")):
        bad("责任单位", f"责任单位的个数与卡点（{len(codes)}个）不一致")
    else:
        for blocker_code, dept_name in zip(codes, departments, strict=True):
            if not dept_name:
                dept_codes.append(cat.default_department(blocker_code))
                continue
            dept = cat.department(dept_name)
            if dept is None:
                bad("责任单位", f"未知的责任单位“{dept_name}”")
            dept_codes.append(dept or "")
    if errors.total != before:
        return None
    assert notes is not None
    aliases = [a.strip() for a in get("别名").split("、") if a.strip()]
    fields = {
        "name": name,
        "aliases": aliases,
        "district": get("区县"),
        "address": get("地址"),
        "developer": get("开发企业"),
        "unit_count": unit_count,
        "initial_registration_done": INITIAL_REGISTRATION[initial],
        "expected_resolution_date": expected,
    }
    return _ProjectRow(code, fields, list(zip(codes, notes, dept_codes, strict=True)))


def _copy_line(row: tuple[Any, ...]) -> str:
    """One staging row in COPY's text format (tab-separated, \\N for NULL, escapes)."""
    seq, sheet_idx, number, code, b, u, r, owner, id_hash, id_last4, status = row
    texts = f"{code}\t{b}\t{u}\t{r}\t{owner}"
    if texts.count("\t") != 4 or "\\" in texts or "\n" in texts or "\r" in texts:
        # Rare: a cell with a tab, line break or backslash in it.
        return (
            "\t".join("\\N" if v is None else str(v).translate(_COPY_ESCAPES) for v in row) + "\n"
        )
    if id_hash is None:
        return f"{seq}\t{sheet_idx}\t{number}\t{texts}\t\\N\t\\N\t{status}\n"
    return f"{seq}\t{sheet_idx}\t{number}\t{texts}\t{id_hash}\t{id_last4}\t{status}\n"


# --- staging table ------------------------------------------------------------------------


class _Stage:
    """A temporary table of this import's unit rows, merged into `unit` batch by batch.

    Every row is kept in the stage (keys only for bad rows) so that duplicates can be found
    with one GROUP BY at the end; valid rows are merged as their batch arrives. A duplicate
    or a bad row found later makes the whole import roll back, merged batches included.
    """

    def __init__(self, db: Session) -> None:
        self.conn = db.connection()
        self.dialect = self.conn.dialect.name
        self.name = f"ledger_stage_{uuid.uuid4().hex[:12]}"
        self.created = self.updated = 0
        self._restore: Any = None
        # Bigger sort/cache memory for this transaction only: the merge maintains indexes
        # over every unit row (bounded, and given back in drop()).
        if self.dialect == "postgresql":
            self._restore = self.conn.execute(text("SHOW work_mem")).scalar_one()
            self.conn.execute(text("SELECT set_config('work_mem', '64MB', true)"))
        elif self.dialect == "sqlite":
            self._restore = self.conn.execute(text("PRAGMA cache_size")).scalar_one()
            self.conn.execute(text("PRAGMA cache_size = -65536"))
        on_commit = " ON COMMIT DROP" if self.dialect == "postgresql" else ""
        self.conn.execute(
            text(
                f"CREATE TEMPORARY TABLE {self.name} ("
                "seq INTEGER PRIMARY KEY, sheet_idx INTEGER NOT NULL, row_no INTEGER NOT NULL, "
                "project_code VARCHAR(32) NOT NULL, building VARCHAR(32) NOT NULL, "
                "unit VARCHAR(32) NOT NULL, room VARCHAR(32) NOT NULL, "
                "owner_name VARCHAR(64) NOT NULL, id_hash VARCHAR(64), id_last4 VARCHAR(4), "
                f"transfer_status VARCHAR(16) NOT NULL){on_commit}"
            )
        )
        distinct = "IS DISTINCT FROM" if self.dialect == "postgresql" else "IS NOT"
        # Rows of one batch (by seq) joined to their project; bad rows have no status.
        src = (
            "(SELECT s.seq, p.id AS project_id, s.building, s.unit, s.room, s.owner_name, "
            f"s.id_hash, s.id_last4, s.transfer_status FROM {self.name} s "
            "JOIN project p ON p.code = s.project_code "
            "WHERE s.seq BETWEEN :lo AND :hi AND s.transfer_status <> '')"
        )
        changed = " OR ".join(
            f"unit.{c} {distinct} src.{c}"
            for c in ("owner_name", "id_hash", "id_last4", "transfer_status")
        )
        now = bindparam("now", type_=DateTime(timezone=True))
        self._update = text(
            "UPDATE unit SET owner_name = src.owner_name, id_hash = src.id_hash, "
            "id_last4 = src.id_last4, transfer_status = src.transfer_status, updated_at = :now "
            f"FROM {src} AS src WHERE unit.project_id = src.project_id "
            "AND unit.building = src.building AND unit.unit = src.unit AND unit.room = src.room "
            f"AND ({changed})"
        ).bindparams(now)
        # ON CONFLICT DO NOTHING: a home repeated inside one batch must not abort the
        # transaction; the duplicate check at the end reports it and rolls everything back.
        self._insert = text(
            "INSERT INTO unit (project_id, building, unit, room, owner_name, id_hash, id_last4, "
            "transfer_status, updated_at) SELECT src.project_id, src.building, src.unit, "
            "src.room, src.owner_name, src.id_hash, src.id_last4, src.transfer_status, :now "
            f"FROM {src} AS src WHERE NOT EXISTS (SELECT 1 FROM unit u "
            "WHERE u.project_id = src.project_id AND u.building = src.building "
            "AND u.unit = src.unit AND u.room = src.room) ORDER BY src.seq "
            "ON CONFLICT DO NOTHING"
        ).bindparams(now)

        # PostgreSQL: one statement per batch. Each row probes the unique index once (the
        # LEFT JOIN); new homes are plain inserts (ON CONFLICT's speculative insertion cost a
        # third more per row), changed ones are updated by primary key. A home repeated inside
        # a batch is staged keys-only by _run (a DISTINCT ON here sorted every batch); the
        # duplicate check at the end reports it. Concurrent imports are serialised by an
        # advisory lock (_run), so no other import can insert the same home meanwhile.
        self._upsert = None
        if self.dialect == "postgresql":
            self._upsert = text(
                "WITH src AS MATERIALIZED (SELECT p.id AS project_id, s.building, s.unit, s.room, "
                "s.owner_name, s.id_hash, s.id_last4, s.transfer_status "
                f"FROM {self.name} s "
                "JOIN project p ON p.code = s.project_code "
                "WHERE s.seq BETWEEN :lo AND :hi AND s.transfer_status <> ''), "
                "cur AS MATERIALIZED (SELECT src.*, u.id AS unit_id, "
                "(u.owner_name, u.id_hash, u.id_last4, u.transfer_status) IS DISTINCT FROM "
                "(src.owner_name, src.id_hash, src.id_last4, src.transfer_status) AS changed "
                "FROM src LEFT JOIN unit u ON u.project_id = src.project_id "
                "AND u.building = src.building AND u.unit = src.unit AND u.room = src.room), "
                "upd AS (UPDATE unit SET owner_name = c.owner_name, id_hash = c.id_hash, "
                "id_last4 = c.id_last4, transfer_status = c.transfer_status, updated_at = :now "
                "FROM cur c WHERE unit.id = c.unit_id AND c.changed RETURNING 1), "
                "ins AS (INSERT INTO unit (project_id, building, unit, room, owner_name, "
                "id_hash, id_last4, transfer_status, updated_at) SELECT project_id, building, "
                "unit, room, owner_name, id_hash, id_last4, transfer_status, :now FROM cur "
                "WHERE unit_id IS NULL RETURNING 1) "
                "SELECT (SELECT count(*) FROM ins), (SELECT count(*) FROM upd)"
            ).bindparams(now)

    @property
    def _copy(self) -> bool:
        driver = self.conn.connection.driver_connection
        return self.dialect == "postgresql" and _is_psycopg3(driver)

    def prepare(self, batch: list[tuple[Any, ...]]) -> Any:
        """The batch in the form `write` sends (COPY text on PostgreSQL), built by the caller's
        thread so that the writer thread hardly needs the GIL."""
        if not self._copy:
            return batch
        return "".join(map(_copy_line, batch)).encode()

    def write(self, prepared: Any) -> None:
        """Append a prepared batch (COPY on PostgreSQL with psycopg 3, else executemany)."""
        if not prepared:
            return
        cols = ", ".join(_STAGE_COLUMNS)
        if self._copy:
            driver = self.conn.connection.driver_connection
            assert driver is not None
            # One write per batch: each flush in this thread would wait for the GIL.
            with driver.cursor() as cur, cur.copy(f"COPY {self.name} ({cols}) FROM STDIN") as cp:
                cp.write(prepared)
        else:
            marks = ", ".join("?" if self.dialect == "sqlite" else "%s" for _ in _STAGE_COLUMNS)
            self.conn.exec_driver_sql(
                f"INSERT INTO {self.name} ({cols}) VALUES ({marks})", prepared
            )

    def merge(self, lo: int, hi: int, now: datetime) -> None:
        """Merge the valid rows with lo <= seq <= hi: update changed units, insert new ones."""
        params = {"lo": lo, "hi": hi, "now": now}
        if self._upsert is not None:
            created, updated = self.conn.execute(self._upsert, params).one()
            self.created += int(created)
            self.updated += int(updated)
            return
        self.updated += int(self.conn.execute(self._update, params).rowcount)
        self.created += int(self.conn.execute(self._insert, params).rowcount)

    def duplicates(self) -> Iterator[tuple[int, int, int, int, tuple[str, str, str]]]:
        """(sheet_idx, row_no, first sheet_idx, first row_no, (building, unit, room)) of every
        repeated unit; the home as the stage holds it (normalised: '3号楼' → '3')."""
        if self.dialect == "postgresql":
            self.conn.execute(text(f"ANALYZE {self.name}"))
        keys = "project_code, building, unit, room"
        rows = self.conn.execute(
            text(
                f"WITH firsts AS (SELECT {keys}, MIN(seq) AS first_seq FROM {self.name} "
                f"GROUP BY {keys} HAVING COUNT(*) > 1) "
                "SELECT s.sheet_idx, s.row_no, f.sheet_idx, f.row_no, "
                "s.building, s.unit, s.room "
                f"FROM firsts d JOIN {self.name} s ON s.project_code = d.project_code "
                "AND s.building = d.building AND s.unit = d.unit AND s.room = d.room "
                f"AND s.seq > d.first_seq JOIN {self.name} f ON f.seq = d.first_seq "
                "ORDER BY s.seq"
            )
        )
        for a, b, c, d, building, unit, room in rows:
            yield int(a), int(b), int(c), int(d), (str(building), str(unit), str(room))

    def project_ids(self) -> list[int]:
        """The projects this import's unit rows belong to."""
        return list(
            self.conn.scalars(
                text(
                    f"SELECT DISTINCT p.id FROM {self.name} s "
                    "JOIN project p ON p.code = s.project_code"
                )
            )
        )

    def drop(self) -> None:
        """Remove the staging table and give back the memory settings."""
        self.conn.execute(text(f"DROP TABLE IF EXISTS {self.name}"))
        if self.dialect == "postgresql":
            self.conn.execute(
                text("SELECT set_config('work_mem', :v, true)"), {"v": str(self._restore)}
            )
        elif self.dialect == "sqlite":
            self.conn.execute(text(f"PRAGMA cache_size = {int(self._restore)}"))


class _Writer:
    """Feeds batches to the stage from a second thread, so that the database stores and merges
    one batch while Python checks the next (psycopg and sqlite3 release the GIL meanwhile).

    The queue is short, so memory stays bounded; the main thread does not touch the session
    until the writer is closed. Needs a connection usable from another thread (make_engine
    opens SQLite with check_same_thread=False).
    """

    def __init__(self, stage: _Stage, now: datetime) -> None:
        self.stage = stage
        self.now = now
        self.error: BaseException | None = None
        self._queue: queue.Queue[tuple[Any, int, int, bool] | None] = queue.Queue(2)
        self._thread = threading.Thread(target=self._loop, name="ledger-writer", daemon=True)
        self._thread.start()

    def _loop(self) -> None:
        while (item := self._queue.get()) is not None:
            if self.error is not None:
                continue  # keep draining so that the producer never blocks
            prepared, lo, hi, merge = item
            try:
                self.stage.write(prepared)
                if merge and hi >= lo:
                    self.stage.merge(lo, hi, self.now)
            except BaseException as exc:  # re-raised in the main thread
                self.error = exc

    def put(self, batch: list[tuple[Any, ...]], *, merge: bool) -> None:
        """Queue a batch (stage it; merge it too when `merge`)."""
        if self.error is not None:
            raise self.error
        if not batch:
            return
        self._queue.put((self.stage.prepare(batch), batch[0][0], batch[-1][0], merge))

    def close(self) -> None:
        """Wait for every queued batch; re-raise the writer's error if it had one."""
        self._queue.put(None)
        self._thread.join()
        if self.error is not None:
            raise self.error


def _is_psycopg3(driver: Any) -> bool:
    # By its classes, not its own: make_engine's connection is a subclass defined in app.core.
    return any(k.__module__.startswith("psycopg") for k in type(driver).__mro__)


# --- writing projects and blockers --------------------------------------------------------


def _snapshot(project: Project) -> dict[str, Any]:
    """A JSON-safe picture of a project and its blockers for the audit trail."""
    d = project.expected_resolution_date
    return {
        "name": project.name,
        "aliases": list(project.aliases or []),
        "district": project.district,
        "address": project.address,
        "developer": project.developer,
        "unit_count": project.unit_count,
        "initial_registration_done": project.initial_registration_done,
        "expected_resolution_date": d.isoformat() if d else None,
        "blockers": [
            {"code": b.code, "note": b.note, "department": b.department, "status": b.status}
            for b in project.blockers
        ],
    }


def _apply_project(
    row: _ProjectRow, project: Project, now: datetime, report: ImportReport
) -> tuple[Project, dict[str, Any] | None, bool]:
    """Update one existing project and set its open blockers; (project, before, changed).

    New projects are inserted in bulk by _create_projects."""
    before = _snapshot(project)
    changed = False
    for key, value in row.fields.items():
        if getattr(project, key) != value:
            setattr(project, key, value)
            changed = True
    existing = {b.code: b for b in project.blockers}
    wanted = {c for c, _, _ in row.blockers}
    for code, note, dept in row.blockers:
        blocker = existing.get(code)
        if blocker is None:
            project.blockers.append(
                Blocker(code=code, note=note, department=dept, status=BLOCKER_OPEN, changed_at=now)
            )
            report.blockers_opened += 1
            changed = True
            continue
        if blocker.status != BLOCKER_OPEN:
            blocker.status = BLOCKER_OPEN
            report.blockers_opened += 1
        elif blocker.note == note and blocker.department == dept:
            continue
        blocker.note, blocker.department, blocker.changed_at = note, dept, now
        changed = True
    for code, blocker in existing.items():
        if code not in wanted and blocker.status == BLOCKER_OPEN:
            blocker.status, blocker.changed_at = BLOCKER_RESOLVED, now
            report.blockers_resolved += 1
            changed = True
    if changed:
        project.updated_at = now
        report.projects_updated += 1
    else:
        report.projects_unchanged += 1
    return project, before, changed


def _chunks(items: Sequence[str], size: int = 500) -> Iterator[Sequence[str]]:
    for i in range(0, len(items), size):
        yield items[i : i + size]


# --- the import ---------------------------------------------------------------------------


def sqlite_cap_message() -> str:
    """Why an import is too big for the embedded SQLite database (Chinese)."""
    return (
        f"内置的 SQLite 数据库一次最多导入 {settings.ledger_sqlite_max_rows} 行房屋数据，"
        "这份台账超过了，未导入任何数据。请把房屋表分成几个文件分批导入，"
        "或改用 PostgreSQL 数据库（设置 DATABASE_URL，见 docs/ledger.md）。"
    )


def import_ledger(
    paths: Sequence[LedgerSource],
    *,
    db: Session,
    actor: str,
    progress: bool = False,
    before_write: Callable[[], None] | None = None,
) -> ImportReport:
    """Validate every row of the ledger files, then import all of them or nothing.

    `paths` holds file paths, `(filename, bytes)` or `(filename, file object)` pairs, or file
    objects (CSV one file per sheet, or an XLSX workbook with both sheets). Raises
    LedgerValidationError listing every bad row; the caller's session is left as it was.
    The caller commits.

    On SQLite nothing is written to the database's own tables until every row has been read,
    checked and staged (in a temporary table, which takes no lock on the database file); then
    projects and units are written in one go, so the one write lock is held only that long.
    `before_write`, when given, is called right before that write (the import job ends the
    staging transaction there and opens a `BEGIN IMMEDIATE` one: app.ledger.jobs); the caller
    then owns the transaction and rolls it back on an error (no savepoint is used).
    """
    if isinstance(paths, str | bytes | os.PathLike) or (
        isinstance(paths, tuple) and len(paths) == 2 and isinstance(paths[1], bytes | bytearray)
    ):
        paths = [paths]  # one source passed without a list
    cat = _Catalogue()
    errors = Errors()
    report = ImportReport()
    now = utcnow()
    with ExitStack() as stack:
        header_errors: list[RowError] = []
        sheets = open_sheets(list(paths), stack, header_errors)
        errors.extend(header_errors)
        report.sheets = [f"{s.name}（{SHEET_LABELS[s.kind]}）" for s in sheets]
        if before_write is not None:
            _run(db, sheets, cat, errors, report, now, actor, progress, before_write)
            return report
        savepoint = db.begin_nested()
        try:
            _run(db, sheets, cat, errors, report, now, actor, progress, None)
        except BaseException:
            savepoint.rollback()
            raise
        savepoint.commit()
    return report


def _run(
    db: Session,
    sheets: list[Sheet],
    cat: _Catalogue,
    errors: Errors,
    report: ImportReport,
    now: datetime,
    actor: str,
    progress: bool,
    before_write: Callable[[], None] | None,
) -> None:
    dialect = db.get_bind().dialect.name
    sqlite = dialect == "sqlite"
    if dialect == "postgresql":
        # One import at a time per database, taken before any write (projects, then units):
        # the unit merge inserts new homes without ON CONFLICT (see _Stage), and with one lock
        # taken first, two imports can never wait on each other's rows.
        db.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": _IMPORT_LOCK})
    # 1. Projects: few, validated and kept in memory.
    project_rows: dict[str, _ProjectRow] = {}
    seen_at: dict[str, tuple[str, int]] = {}
    file_codes: set[str] = set()
    for sheet in (s for s in sheets if s.kind == "projects"):
        idx = sheet.columns.get("项目编号", -1)
        if idx < 0:
            continue
        for number, cells in _rows(sheet, errors):
            # A sheet missing columns is reported by its header; its rows are not checked.
            row = _validate_project(sheet, number, cells, cat, errors) if sheet.complete else None
            code = cells[idx] if idx < len(cells) else ""
            if code in seen_at:
                first_sheet, first_row = seen_at[code]
                errors.add(
                    sheet.name,
                    number,
                    "项目编号",
                    f"项目编号“{code}”重复，与{first_sheet}第{first_row}行相同",
                )
                continue
            if code:
                seen_at[code] = (sheet.name, number)
                file_codes.add(code)
            if row is not None:
                project_rows[code] = row
    known = file_codes | set(db.scalars(select(Project.code)))

    # 2. While the file is clean so far, write as we go (units need their project's id);
    # a bad row found later rolls all of it back. On SQLite: only at the end (see above).
    audits: list[AuditLog] = []
    if not errors.total and not sqlite:
        audits = _write_projects(db, project_rows, now, actor, report)

    unit_sheets = [s for s in sheets if s.kind == "units" and s.complete]
    if not errors.total and not sqlite and bulk.applies(db, unit_sheets):
        # A province's first load: column-wise checks and COPY (app.ledger.bulk), or nothing.
        loaded = _load_in_bulk(db, unit_sheets, now, progress)
        if loaded is not None:
            _record_units(db, report, audits, unit_sheets, loaded.created, 0, loaded.created,
                          list(loaded.tallies), now, actor, loaded.tallies)  # fmt: skip
            return

    # 3. Units: streamed in batches into the stage, merged batch by batch while clean.
    stage = _Stage(db)
    seq = valid = 0
    writer = _Writer(stage, now)
    try:
        for sheet_idx, sheet in enumerate(unit_sheets):
            check = UnitValidator(sheet, sheet_idx, known)
            batch: list[tuple[Any, ...]] = []
            homes: set[tuple[Any, ...]] = set()  # of this batch
            bar = _progress_bar(sheet, progress)
            try:
                for number, cells in _rows(sheet, errors):
                    seq += 1
                    if sqlite and seq > settings.ledger_sqlite_max_rows:
                        raise LedgerValidationError(
                            [RowError(sheet.name, number, "", sqlite_cap_message())]
                        )
                    staged = check(seq, number, cells, errors)
                    if staged is None:
                        continue
                    home = staged[3:7]
                    if home in homes:
                        # A home twice in one batch is merged once: the copy is staged keys-only
                        # (the duplicate check at the end reports it and nothing is imported).
                        staged = (*staged[:7], "", None, None, "")
                    else:
                        homes.add(home)
                    batch.append(staged)
                    if len(batch) >= BATCH_ROWS:
                        writer.put(batch, merge=not errors.total and not sqlite)
                        valid += len(batch)
                        if bar is not None:
                            bar.update(len(batch))
                        batch = []
                        homes.clear()
                writer.put(batch, merge=not errors.total and not sqlite)
                valid += len(batch)
                if bar is not None:
                    bar.update(len(batch))
            finally:
                if bar is not None:
                    bar.close()
    finally:
        writer.close()
    for sheet_idx, number, first_idx, first_row, home in stage.duplicates():
        sheet_name, first_name = unit_sheets[sheet_idx].name, unit_sheets[first_idx].name
        where = f"第{first_row}行" if first_name == sheet_name else f"{first_name}第{first_row}行"
        reason = f"房屋重复：与{where}是同一套房（幢号、单元、房号相同）"
        errors.add(sheet_name, number, "房号", reason, home)
    if errors.total:
        order = {s.name: i for i, s in enumerate(sheets)}
        items = sorted(errors.items, key=lambda e: (order.get(e.sheet, -1), e.row))
        raise LedgerValidationError(items, errors.total)

    if sqlite:
        # Everything is checked: now the short write (projects, then every unit at once).
        if before_write is not None:
            before_write()
        audits = _write_projects(db, project_rows, now, actor, report)
        stage.merge(1, seq, now)
    project_ids = stage.project_ids() if stage.created or stage.updated else []
    stage.drop()
    _record_units(db, report, audits, unit_sheets, stage.created, stage.updated, valid,
                  project_ids, now, actor)  # fmt: skip


def _load_in_bulk(
    db: Session, unit_sheets: list[Sheet], now: datetime, progress: bool
) -> bulk.BulkResult | None:
    """The bulk load in a savepoint; None (and nothing written) when it gives way."""
    bars = {id(s): _progress_bar(s, progress) for s in unit_sheets}

    def on_rows(sheet: Sheet, rows: int) -> None:
        if (bar := bars[id(sheet)]) is not None:
            bar.update(rows)

    savepoint = db.begin_nested()
    try:
        loaded = bulk.load_units(db, unit_sheets, now, on_rows)
    except bulk.Abandon as exc:
        savepoint.rollback()
        log.info("ledger bulk load gave way to the per-row import: %s", exc)
        return None
    except BaseException:
        savepoint.rollback()
        raise
    finally:
        for bar in bars.values():
            if bar is not None:
                bar.close()
    savepoint.commit()
    return loaded


def _record_units(
    db: Session,
    report: ImportReport,
    audits: list[AuditLog],
    unit_sheets: list[Sheet],
    created: int,
    updated: int,
    valid: int,
    project_ids: list[int],
    now: datetime,
    actor: str,
    tallies: dict[int, tuple[int, int]] | None = None,
) -> None:
    """The report's unit counts, the dashboard tallies and the audit rows of an import."""
    if tallies is not None:
        set_unit_tally(db, tallies)  # counted by the bulk load as it went
    elif created or updated:
        # The dashboard's unit totals of the projects this ledger wrote, in this transaction.
        refresh_unit_tally(db, project_ids)
    report.units_created, report.units_updated = created, updated
    report.units_unchanged = valid - created - updated
    if created or updated:
        # Unit rows carry names and ID hashes: the trail records counts, not the rows.
        audits.append(
            AuditLog(
                at=now,
                actor=actor[:64],
                action=AUDIT_ACTION,
                entity_type="ledger",
                entity_id=", ".join(s.name for s in unit_sheets)[:64],
                before=None,
                after={"units_created": created, "units_updated": updated},
            )
        )
    db.add_all(audits)
    db.flush()


def _write_projects(
    db: Session,
    project_rows: dict[str, _ProjectRow],
    now: datetime,
    actor: str,
    report: ImportReport,
) -> list[AuditLog]:
    """Create or update the projects and their blockers; the audit rows of the changed ones."""
    existing: dict[str, Project] = {}
    for chunk in _chunks(sorted(project_rows)):
        stmt = (
            select(Project).where(Project.code.in_(chunk)).options(selectinload(Project.blockers))
        )
        existing.update({p.code: p for p in db.scalars(stmt)})
    _create_projects(
        db, [r for c, r in project_rows.items() if c not in existing], now, actor, report
    )
    audits: list[AuditLog] = []
    for code, row in project_rows.items():
        if code not in existing:
            continue
        project, before, changed = _apply_project(row, existing[code], now, report)
        if changed:
            audits.append(
                AuditLog(
                    at=now,
                    actor=actor[:64],
                    action=AUDIT_ACTION,
                    entity_type="project",
                    entity_id=code,
                    before=before,
                    after=_snapshot(project),
                )
            )
    db.flush()
    return audits


def _create_projects(
    db: Session, rows: list[_ProjectRow], now: datetime, actor: str, report: ImportReport
) -> None:
    """Insert new projects, their blockers and audit rows with a few Core statements on the
    session's connection (a province's first ledger has thousands): the rows the ORM's unit of
    work would write, several times faster."""
    conn = db.connection()
    for chunk in (rows[i : i + 2000] for i in range(0, len(rows), 2000)):
        values = [{"code": r.code, "created_at": now, "updated_at": now, **r.fields} for r in chunk]
        ids = dict(conn.execute(insert(Project).returning(Project.code, Project.id), values).all())
        blockers = [
            {"project_id": ids[r.code], "code": c, "note": n, "department": d,
             "status": BLOCKER_OPEN, "changed_at": now}
            for r in chunk
            for c, n, d in r.blockers
        ]  # fmt: skip
        if blockers:
            conn.execute(insert(Blocker), blockers)
        report.projects_created += len(chunk)
        report.blockers_opened += len(blockers)
        audits = []
        for r in chunk:
            d = r.fields["expected_resolution_date"]
            after = {
                **r.fields,
                "aliases": list(r.fields["aliases"]),
                "expected_resolution_date": d.isoformat() if d else None,
                "blockers": [
                    {"code": c, "note": n, "department": dept, "status": BLOCKER_OPEN}
                    for c, n, dept in r.blockers
                ],
            }
            audits.append(
                {"at": now, "actor": actor[:64], "action": AUDIT_ACTION, "entity_type": "project",
                 "entity_id": r.code, "before": None, "after": after}
            )  # fmt: skip
        conn.execute(insert(AuditLog), audits)


def _rows(sheet: Sheet, errors: Errors) -> Iterator[tuple[int, tuple[str, ...]]]:
    """The sheet's rows; a file damaged part-way is one error, not a crash."""
    try:
        yield from sheet.rows()
    except SheetReadError as exc:
        errors.add(exc.error.sheet, exc.error.row, exc.error.column, exc.error.reason)


def _progress_bar(sheet: Sheet, enabled: bool) -> Any:
    if not enabled:
        return None
    from tqdm import tqdm

    # delay: small files finish before the bar would appear.
    return tqdm(
        total=sheet.total_rows,
        desc=f"{sheet.name}（{SHEET_LABELS[sheet.kind]}）",
        unit="行",
        file=sys.stderr,
        delay=1.0,
        mininterval=0.5,
        dynamic_ncols=True,
    )
