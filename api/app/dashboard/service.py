"""The figures leaders ask for: registration rates per district and project, petition rates,
counts by blocker type and department, the overdue list — and their CSV/XLSX/SVG forms."""

from __future__ import annotations

import csv
import io
from dataclasses import dataclass, field
from datetime import date
from typing import Any

from openpyxl import Workbook
from sqlalchemy import case, func, select
from sqlalchemy.orm import Session
from sqlalchemy.sql.elements import ColumnElement

from app.core.config import settings
from app.core.workdays import today_shanghai
from app.dashboard.models import (
    DepartmentTally,
    PetitionTally,
    ProjectPetitionTally,
    UnitTally,
)
from app.petition.models import (
    OPEN_STATES,
    STATUS_LABELS,
    Petition,
    PetitionAssignment,
    PetitionDue,
)
from app.petition.staff_service import overdue_condition
from app.policy.departments import blocker_names, department_name
from app.status.ledger_memo import memo
from app.status.models import BLOCKER_OPEN, Blocker, Project


def rate(part: int, whole: int) -> float | None:
    """part/whole as a percentage with one decimal, None when there is nothing to divide."""
    return round(100.0 * part / whole, 1) if whole else None


@dataclass
class RegistrationRow:
    """Registration figures of one project or one district."""

    key: str
    label: str
    district: str
    projects: int = 0
    households: int = 0
    initial_done_households: int = 0
    transfer_done: int = 0
    # Projects resolved (化解) by the rule of resolved_project(): 首次登记 done and 转移登记
    # above PROJECT_RESOLVED_TRANSFER_RATE — for a project row 1 or 0.
    resolved_projects: int = 0

    @property
    def initial_rate(self) -> float | None:
        """首次登记化解率: households whose project has its initial registration."""
        return rate(self.initial_done_households, self.households)

    @property
    def transfer_rate(self) -> float | None:
        """转移登记化解率: transfers done among households that can already transfer."""
        return rate(self.transfer_done, self.initial_done_households)

    @property
    def overall_rate(self) -> float | None:
        """总体登记率: households holding their certificate among all households."""
        return rate(self.transfer_done, self.households)

    @property
    def resolved_rate(self) -> float | None:
        """项目化解率: resolved projects among the projects."""
        return rate(self.resolved_projects, self.projects)


def resolved_project(initial_done: bool, households: int, transfer_done: int) -> bool:
    """化解 on the dashboard: 首次登记 done AND 转移登记 done by more than the set share of the
    households (PROJECT_RESOLVED_TRANSFER_RATE, 25% by default) — one province's rule against
    projects resolved on paper only."""
    if not initial_done or households <= 0:
        return False
    return 100.0 * transfer_done / households > settings.project_resolved_transfer_rate


# What each figure means, in the exports and on the dashboard page.
DEFINITIONS: list[tuple[str, str]] = [
    ("首次登记化解率", "已完成首次登记的项目的户数 ÷ 总户数"),
    ("转移登记化解率", "已办结转移登记的户数 ÷ 已完成首次登记的项目的户数"),
    ("总体登记率", "已办结转移登记（已领证）的户数 ÷ 总户数"),
    (
        "项目化解率",
        "化解的项目数 ÷ 项目数；项目化解 = 首次登记已完成，且转移登记户数超过总户数的{rate:g}%",
    ),
    ("办结率", "（已办结 + 转办）的信访 ÷ 信访总数"),
    ("按期办结率", "在办结期限内办结的信访 ÷ 已办结的信访"),
    ("息诉罢访率", "评价满意或基本满意的 ÷ 办结后作出评价的（对话中评价或电话回访）"),
    ("超期", "未办结、且最近一项期限（部门答复或办结期限）已过的信访"),
]


def definitions() -> list[tuple[str, str]]:
    """The figures' definitions with the configured resolution threshold filled in."""
    threshold = settings.project_resolved_transfer_rate
    return [(name, text.format(rate=threshold)) for name, text in DEFINITIONS]


@dataclass
class PetitionFigures:
    """Petition counts and the three headline rates."""

    total: int = 0
    open: int = 0
    closed: int = 0
    closed_on_time: int = 0
    satisfied: int = 0
    # Closed petitions whose resident gave an answer (in the chat, or reached by phone).
    rated: int = 0
    satisfied_by_phone: int = 0
    in_review: int = 0
    reviews: int = 0
    overdue: int = 0
    transferred: int = 0
    by_status: dict[str, int] = field(default_factory=dict)

    @property
    def closure_rate(self) -> float | None:
        """办结率: closed among all petitions (transferred ones are counted as handled)."""
        return rate(self.closed + self.transferred, self.total)

    @property
    def on_time_rate(self) -> float | None:
        """按期办结率: closed by the closure target among closed petitions."""
        return rate(self.closed_on_time, self.closed)

    @property
    def satisfaction_rate(self) -> float | None:
        """息诉罢访率: residents content (满意 or 基本满意) among the closed petitions whose
        resident answered — in the conversation, or to a clerk who reached them by phone."""
        return rate(self.satisfied, self.rated)


@dataclass
class Dashboard:
    """Everything the dashboard page and its exports show."""

    today: date
    districts: list[RegistrationRow]
    projects: list[RegistrationRow]
    total: RegistrationRow
    petitions: PetitionFigures
    by_blocker: list[dict[str, Any]]
    by_department: list[dict[str, Any]]
    overdue: list[dict[str, Any]]
    # The intake-date range the petition figures cover (None: from the first / up to today).
    since: date | None = None
    until: date | None = None

    @property
    def period(self) -> str:
        """The petition figures' range in words."""
        if self.since is None and self.until is None:
            return "全部信访"
        start = f"{self.since:%Y年%m月%d日}" if self.since else "最早"
        end = f"{self.until:%Y年%m月%d日}" if self.until else "今天"
        return f"受理日期 {start} 至 {end}"


def registration(
    *, db: Session
) -> tuple[list[RegistrationRow], list[RegistrationRow], RegistrationRow]:
    """Per-project and per-district registration rows and the overall total, from the units'
    running totals (unit_tally, kept by the ledger import) rather than a count of every unit;
    built once per ledger token (app.status.ledger_memo): the rows are shared, not to be changed."""
    districts, projects, total = memo(db, "dashboard.registration", lambda: _registration(db))
    return list(districts), list(projects), total


def _registration(
    db: Session,
) -> tuple[tuple[RegistrationRow, ...], tuple[RegistrationRow, ...], RegistrationRow]:
    stmt = (
        select(
            Project.code,
            Project.name,
            Project.district,
            Project.unit_count,
            Project.initial_registration_done,
            UnitTally.units,
            UnitTally.transfer_done,
        )
        .outerjoin(UnitTally, UnitTally.project_id == Project.id)
        .order_by(Project.district, Project.code)
    )
    projects: list[RegistrationRow] = []
    districts: dict[str, RegistrationRow] = {}
    total = RegistrationRow(key="", label="合计", district="")
    for code, name, district, unit_count, initial_done, n, done in db.execute(stmt):
        households = max(unit_count or 0, int(n or 0))
        done = int(done or 0)
        row = RegistrationRow(
            key=code,
            label=name,
            district=district or "未填区县",
            projects=1,
            households=households,
            initial_done_households=households if initial_done else 0,
            transfer_done=done,
            resolved_projects=int(resolved_project(initial_done, households, done)),
        )
        projects.append(row)
        d = districts.setdefault(
            row.district, RegistrationRow(row.district, row.district, row.district)
        )
        for agg in (d, total):
            agg.projects += 1
            agg.households += row.households
            agg.initial_done_households += row.initial_done_households
            agg.transfer_done += row.transfer_done
            agg.resolved_projects += row.resolved_projects
    return tuple(districts.values()), tuple(projects), total


def intake_between(since: date | None, until: date | None) -> list[ColumnElement[bool]]:
    """SQL conditions: the petition was taken in between the two dates (inclusive)."""
    out: list[ColumnElement[bool]] = []
    if since is not None:
        out.append(Petition.intake_date >= since)
    if until is not None:
        out.append(Petition.intake_date <= until)
    return out


def petition_figures(
    *, db: Session, today: date, since: date | None = None, until: date | None = None
) -> PetitionFigures:
    """Counts of petitions by state, on-time closures and satisfaction from the running totals
    (petition_tally: one row per intake day and state, kept by triggers), and the overdue count
    from the deadline index, over the petitions taken in between `since` and `until`."""
    figures = PetitionFigures()
    days = []
    if since is not None:
        days.append(PetitionTally.intake_date >= since)
    if until is not None:
        days.append(PetitionTally.intake_date <= until)
    stmt = (
        select(
            PetitionTally.status,
            func.sum(PetitionTally.n),
            func.sum(PetitionTally.on_time),
            func.sum(PetitionTally.content),
            func.sum(PetitionTally.rated),
            func.sum(PetitionTally.by_phone),
            func.sum(PetitionTally.reviews),
        )
        .where(*days)
        .group_by(PetitionTally.status)
        .having(func.sum(PetitionTally.n) > 0)
    )
    for status, n, n_on_time, n_content, n_rated, n_phone, n_reviews in db.execute(stmt):
        figures.by_status[status] = int(n)
        figures.closed_on_time += int(n_on_time or 0)
        figures.satisfied += int(n_content or 0)
        figures.rated += int(n_rated or 0)
        figures.satisfied_by_phone += int(n_phone or 0)
        figures.reviews += int(n_reviews or 0)
    figures.in_review = figures.by_status.get("review", 0)
    figures.total = sum(figures.by_status.values())
    figures.closed = figures.by_status.get("closed", 0)
    figures.transferred = figures.by_status.get("transferred", 0)
    figures.open = sum(n for s, n in figures.by_status.items() if s in OPEN_STATES)
    period = intake_between(since, until)
    overdue = select(func.count()).select_from(PetitionDue).where(overdue_condition(today))
    if period:
        overdue = overdue.join(Petition, Petition.id == PetitionDue.petition_id).where(*period)
    figures.overdue = int(db.scalar(overdue) or 0)
    return figures


def blocker_counts(
    *, db: Session, since: date | None = None, until: date | None = None
) -> list[dict[str, Any]]:
    """Per blocker type: projects and households it holds up, and petitions from them."""
    names = blocker_names()
    # Each petition belongs to one project, so per-project counts add up without double counting.
    # All time: the running totals; a range: its petitions (index ix_petition_intake_project).
    counts: Any
    if since is None and until is None:
        counts = select(ProjectPetitionTally.project_id, ProjectPetitionTally.n).where(
            ProjectPetitionTally.n > 0
        )
    else:
        counts = (
            select(Petition.project_id, func.count())
            .where(Petition.project_id.is_not(None), *intake_between(since, until))
            .group_by(Petition.project_id)
        )
    per_project = dict(db.execute(counts).all())
    rows: dict[str, dict[str, Any]] = {}
    for code, project_id, unit_count in memo(db, "dashboard.open_blockers", lambda: _open(db)):
        row = rows.setdefault(
            code,
            {
                "code": code,
                "name": names.get(code, code),
                "projects": 0,
                "households": 0,
                "petitions": 0,
            },
        )
        row["projects"] += 1
        row["households"] += int(unit_count or 0)
        row["petitions"] += int(per_project.get(project_id, 0))
    return sorted(rows.values(), key=lambda r: (-r["projects"], -r["petitions"], r["code"]))


def _open(db: Session) -> tuple[tuple[str, int, int | None], ...]:
    """Every open blocker as (code, project id, the project's households)."""
    stmt = (
        select(Blocker.code, Blocker.project_id, Project.unit_count)
        .join(Project, Project.id == Blocker.project_id)
        .where(Blocker.status == BLOCKER_OPEN)
    )
    return tuple((code, pid, n) for code, pid, n in db.execute(stmt))


def department_counts(
    *, db: Session, today: date, since: date | None = None, until: date | None = None
) -> list[dict[str, Any]]:
    """Per department: petitions assigned, answered, waiting for an answer, overdue."""
    period = intake_between(since, until)
    if period:
        totals = (
            select(
                PetitionAssignment.department, func.count(), func.count(PetitionAssignment.answer)
            )
            .join(Petition, Petition.id == PetitionAssignment.petition_id)
            .where(*period)
            .group_by(PetitionAssignment.department)
        )
    else:  # all time: the running totals
        totals = select(
            DepartmentTally.department, DepartmentTally.assigned, DepartmentTally.answered
        ).where(DepartmentTally.assigned > 0)
    rows: dict[str, dict[str, Any]] = {}
    for dept, n, answered in db.execute(totals):
        rows[dept] = {
            "code": dept,
            "name": department_name(dept),
            "assigned": int(n),
            "answered": int(answered or 0),
            "waiting": 0,
            "overdue": 0,
        }
    # Waiting: unanswered assignments of open petitions (rank 0 in the deadline index).
    waiting = (
        select(
            PetitionAssignment.department,
            func.count(),
            func.sum(case((PetitionAssignment.answer_due < today, 1), else_=0)),
        )
        .join(PetitionDue, PetitionDue.petition_id == PetitionAssignment.petition_id)
        .where(PetitionAssignment.answer.is_(None), PetitionDue.rank == 0)
        .group_by(PetitionAssignment.department)
    )
    if period:
        waiting = waiting.join(Petition, Petition.id == PetitionAssignment.petition_id).where(
            *period
        )
    for dept, n, overdue in db.execute(waiting):
        if dept in rows:
            rows[dept]["waiting"] = int(n)
            rows[dept]["overdue"] = int(overdue or 0)
    return sorted(rows.values(), key=lambda r: (-r["overdue"], -r["assigned"], r["code"]))


def overdue_list(*, db: Session, today: date, limit: int = 20) -> list[dict[str, Any]]:
    """The most overdue open petitions (for supervisors), from the deadline index."""
    stmt = (
        select(Petition.number, Petition.status, PetitionDue.next_due, Project.name)
        .select_from(PetitionDue)
        .join(Petition, Petition.id == PetitionDue.petition_id)
        .outerjoin(Project, Project.id == Petition.project_id)
        .where(overdue_condition(today))
        .order_by(PetitionDue.rank, PetitionDue.next_due, PetitionDue.petition_id)
        .limit(limit)
    )
    out = []
    for number, status, due, project_name in db.execute(stmt):
        out.append(
            {
                "number": number,
                "status": status,
                "status_label": STATUS_LABELS.get(status, status),
                "due": due,
                "project": project_name or "",
                "days_late": (today - due).days if due else 0,
            }
        )
    return out


def check_period(since: date | None, until: date | None) -> None:
    """A Chinese 422 for a range that ends before it begins."""
    if since is not None and until is not None and since > until:
        from app.core.errors import AppError

        raise AppError(422, "bad_period", "开始日期不能晚于结束日期，请重新选择。")


def build(
    *,
    db: Session,
    today: date | None = None,
    since: date | None = None,
    until: date | None = None,
) -> Dashboard:
    """Compute every dashboard figure in one go. Registration figures are as of today; the
    petition figures cover the petitions taken in between `since` and `until` (inclusive)."""
    check_period(since, until)
    today = today or today_shanghai()
    districts, projects, total = registration(db=db)
    return Dashboard(
        today=today,
        districts=districts,
        projects=projects,
        total=total,
        petitions=petition_figures(db=db, today=today, since=since, until=until),
        by_blocker=blocker_counts(db=db, since=since, until=until),
        by_department=department_counts(db=db, today=today, since=since, until=until),
        overdue=overdue_list(db=db, today=today),
        since=since,
        until=until,
    )


# ---------------------------------------------------------------- exports


class Percent(float):
    """A rate in percent (45.2 = 45.2%): a number in both exports — the CSV writes 45.2 under a
    header that says （%）, the XLSX a number cell 0.452 formatted as 45.2%."""


def _pct(value: float | None) -> Percent | None:
    return None if value is None else Percent(value)


def tables(d: Dashboard) -> list[tuple[str, list[str], list[list[Any]]]]:
    """The dashboard as (sheet title, header, rows) tables — shared by CSV and XLSX. Counts are
    integers, rates Percent numbers (empty where there is nothing to divide), labels Chinese."""
    reg_header = [
        "名称",
        "区县",
        "项目数",
        "已化解项目数",
        "总户数",
        "已首次登记户数",
        "已转移登记户数",
        "首次登记化解率（%）",
        "转移登记化解率（%）",
        "总体登记率（%）",
        "项目化解率（%）",
    ]

    def reg(rows: list[RegistrationRow]) -> list[list[Any]]:
        return [
            [
                r.label,
                r.district,
                r.projects,
                r.resolved_projects,
                r.households,
                r.initial_done_households,
                r.transfer_done,
                _pct(r.initial_rate),
                _pct(r.transfer_rate),
                _pct(r.overall_rate),
                _pct(r.resolved_rate),
            ]
            for r in rows
        ]

    p = d.petitions
    return [
        ("按区县", reg_header, reg([*d.districts, d.total])),
        ("按项目", reg_header, reg(d.projects)),
        (
            "信访",
            [
                "统计范围",
                "信访总数",
                "办理中",
                "已办结",
                "转办",
                "按期办结",
                "群众满意",
                "超期",
                "办结率（%）",
                "按期办结率（%）",
                "息诉罢访率（%）",
            ],
            [
                [
                    d.period,
                    p.total,
                    p.open,
                    p.closed,
                    p.transferred,
                    p.closed_on_time,
                    p.satisfied,
                    p.overdue,
                    _pct(p.closure_rate),
                    _pct(p.on_time_rate),
                    _pct(p.satisfaction_rate),
                ]
            ],
        ),
        (
            "按卡点类型",
            ["卡点", "涉及项目", "涉及户数", "相关信访"],
            [[r["name"], r["projects"], r["households"], r["petitions"]] for r in d.by_blocker],
        ),
        (
            "按部门",
            ["部门", "交办件数", "已答复", "待答复", "超期未答复"],
            [
                [r["name"], r["assigned"], r["answered"], r["waiting"], r["overdue"]]
                for r in d.by_department
            ],
        ),
        (
            "超期信访",
            ["信访编号", "状态", "应办日期", "超期天数", "项目"],
            [
                [r["number"], r["status_label"], r["due"], r["days_late"], r["project"]]
                for r in d.overdue
            ],
        ),
        ("指标说明", ["指标", "定义"], [list(row) for row in definitions()]),
    ]


# A cell text starting with one of these is read by Excel or LibreOffice as a formula (CSV
# injection: `=HYPERLINK(…)` in a ledger's project name). Such texts are written as text.
FORMULA_START = ("=", "+", "-", "@", "\t", "\r")


def is_formula_like(value: object) -> bool:
    """True for a text a spreadsheet would take for a formula."""
    return isinstance(value, str) and len(value) > 1 and value.startswith(FORMULA_START)


def csv_safe(value: object) -> object:
    """The CSV cell: a formula-like text gets a leading apostrophe (shown as text)."""
    return f"'{value}" if is_formula_like(value) else value


def _csv_cell(value: object) -> object:
    if value is None:
        return ""
    if isinstance(value, Percent):
        return f"{value:.1f}"
    if isinstance(value, date):
        return value.isoformat()
    return csv_safe(value)


def title_line(d: Dashboard) -> str:
    """The first line of an export: the date of the figures and the petitions' range."""
    return f"统计日期 {d.today:%Y-%m-%d}；信访统计范围：{d.period}"


def to_csv(d: Dashboard) -> bytes:
    """The dashboard tables as one CSV (UTF-8 with BOM for Excel), sections split by blank lines."""
    buf = io.StringIO()
    writer = csv.writer(buf)
    writer.writerow([title_line(d)])
    for title, header, rows in tables(d):
        writer.writerow([])
        writer.writerow([f"【{title}】"])
        writer.writerow(header)
        writer.writerows([_csv_cell(v) for v in row] for row in rows)
    return ("\ufeff" + buf.getvalue()).encode("utf-8")


def to_xlsx(d: Dashboard) -> bytes:
    """The dashboard tables as an XLSX workbook, one sheet per table."""
    wb = Workbook()
    wb.remove(wb.active)
    for title, header, rows in tables(d):
        ws = wb.create_sheet(title)
        ws.append(header)
        for row in rows:
            ws.append([v / 100 if isinstance(v, Percent) else v for v in row])
            for cell, value in zip(ws[ws.max_row], row, strict=True):
                if isinstance(value, Percent):
                    cell.number_format = "0.0%"
                elif isinstance(value, date):
                    cell.number_format = "yyyy-mm-dd"
                elif is_formula_like(cell.value):
                    # Stored as a plain string cell, never as a formula (openpyxl makes any
                    # text starting with "=" one).
                    cell.data_type = "s"
        for i, _ in enumerate(header):
            ws.column_dimensions[chr(ord("A") + i)].width = 40 if title == "指标说明" else 16
        ws.freeze_panes = "A2"
    info = wb.create_sheet("说明", 0)
    info.append([title_line(d)])
    info.column_dimensions["A"].width = 60
    out = io.BytesIO()
    wb.save(out)
    return out.getvalue()
