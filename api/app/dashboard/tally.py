"""Keeping the dashboard's running totals (app.dashboard.models) current, and checking them.

`petition_tally` and `project_petition_tally` are kept by triggers on `petition`, and
`department_tally` by triggers on `petition_assignment`: their rows are moved by every insert,
delete and update of the columns the figures read, in the writer's transaction, on PostgreSQL
(PL/pgSQL functions) and on SQLite (three triggers a table). `unit_tally` is refreshed by the
ledger import for the projects it touched. `rebuild()` recounts both from scratch (the migration
that adds them, and `python -m app.dashboard.tally rebuild` should a total ever be doubted);
`differences()` compares the totals with a fresh count (`python -m app.dashboard.tally check`).
"""

from __future__ import annotations

import sys
from collections.abc import Iterable
from typing import Any

from sqlalchemy import case, delete, func, insert, select
from sqlalchemy.engine import Connection
from sqlalchemy.orm import Session

from app.dashboard.models import DepartmentTally, PetitionTally, ProjectPetitionTally, UnitTally
from app.petition import workflow
from app.status import ledger_version
from app.status.models import Unit

RATED_SOURCES = ("resident", "clerk_phone")
RATED_ANSWERS = ("satisfied", "basically_satisfied", "unsatisfied")
# The columns a petition's contribution depends on: an update of any other column (a note, the
# version, updated_at) does not fire the triggers.
WATCHED = (
    "intake_date",
    "status",
    "closure_due",
    "closed_at",
    "satisfaction",
    "satisfaction_source",
    "review_count",
    "project_id",
)
ASSIGNMENT_WATCHED = ("department", "answer")
COUNTS = ("n", "on_time", "rated", "content", "by_phone", "reviews")


def _quoted(values: Iterable[str]) -> str:
    return ", ".join(f"'{v}'" for v in sorted(values))


def _parts(row: str, closed_day: str) -> dict[str, str]:
    """SQL for each count of one petition row (`NEW` or `OLD`), 0 or 1 (reviews: the count)."""
    closed = f"{row}.status = 'closed'"
    rated = (
        f"{closed} AND {row}.satisfaction_source IN ({_quoted(RATED_SOURCES)}) "
        f"AND {row}.satisfaction IN ({_quoted(RATED_ANSWERS)})"
    )
    content = f"{rated} AND {row}.satisfaction IN ({_quoted(workflow.CONTENT)})"
    return {
        "n": "1",
        "on_time": (
            f"CASE WHEN {closed} AND ({row}.closure_due IS NULL OR "
            f"{closed_day.format(row=row)} <= {row}.closure_due) THEN 1 ELSE 0 END"
        ),
        "rated": f"CASE WHEN {rated} THEN 1 ELSE 0 END",
        "content": f"CASE WHEN {content} THEN 1 ELSE 0 END",
        "by_phone": (
            f"CASE WHEN {content} AND {row}.satisfaction_source = 'clerk_phone' THEN 1 ELSE 0 END"
        ),
        "reviews": f"COALESCE({row}.review_count, 0)",
    }


PG_CLOSED_DAY = "CAST(({row}.closed_at AT TIME ZONE 'Asia/Shanghai') AS date)"
SQLITE_CLOSED_DAY = "date({row}.closed_at, '+8 hours')"


def _take_away(row: str, closed_day: str) -> str:
    parts = _parts(row, closed_day)
    sets = ", ".join(f"{c} = {c} - ({parts[c]})" for c in COUNTS)
    # An UPDATE only: a row already gone (a test emptying the tables) is left gone.
    return (
        f"UPDATE petition_tally SET {sets} "
        f"WHERE intake_date = {row}.intake_date AND status = {row}.status"
    )


def _add(row: str, closed_day: str) -> str:
    parts = _parts(row, closed_day)
    values = ", ".join(parts[c] for c in COUNTS)
    sets = ", ".join(f"{c} = petition_tally.{c} + excluded.{c}" for c in COUNTS)
    return (
        f"INSERT INTO petition_tally (intake_date, status, {', '.join(COUNTS)}) "
        f"VALUES ({row}.intake_date, {row}.status, {values}) "
        f"ON CONFLICT (intake_date, status) DO UPDATE SET {sets}"
    )


def _project_take_away(row: str) -> str:
    return f"UPDATE project_petition_tally SET n = n - 1 WHERE project_id = {row}.project_id"


def _project_add(row: str) -> str:
    return (
        f"INSERT INTO project_petition_tally (project_id, n) SELECT {row}.project_id, 1 "
        f"WHERE {row}.project_id IS NOT NULL "
        "ON CONFLICT (project_id) DO UPDATE SET n = project_petition_tally.n + excluded.n"
    )


def _answered(row: str) -> str:
    return f"CASE WHEN {row}.answer IS NULL THEN 0 ELSE 1 END"


def _department_take_away(row: str) -> str:
    return (
        f"UPDATE department_tally SET assigned = assigned - 1, answered = answered - "
        f"{_answered(row)} WHERE department = {row}.department"
    )


def _department_add(row: str) -> str:
    return (
        "INSERT INTO department_tally (department, assigned, answered) "
        f"VALUES ({row}.department, 1, {_answered(row)}) ON CONFLICT (department) DO UPDATE SET "
        "assigned = department_tally.assigned + excluded.assigned, "
        "answered = department_tally.answered + excluded.answered"
    )


def _petition_off(row: str, closed_day: str) -> list[str]:
    return [_take_away(row, closed_day), _project_take_away(row)]


def _petition_on(row: str, closed_day: str) -> list[str]:
    return [_add(row, closed_day), _project_add(row)]


def _plpgsql(name: str, off: list[str], on: list[str]) -> str:
    body = "".join(f"    {statement};\n" for statement in off)
    body_on = "".join(f"    {statement};\n" for statement in on)
    return (
        f"CREATE OR REPLACE FUNCTION {name}() RETURNS trigger AS $$\n"
        "BEGIN\n"
        "  IF TG_OP IN ('UPDATE', 'DELETE') THEN\n"
        f"{body}"
        "  END IF;\n"
        "  IF TG_OP IN ('INSERT', 'UPDATE') THEN\n"
        f"{body_on}"
        "  END IF;\n"
        "  RETURN NULL;\n"
        "END $$ LANGUAGE plpgsql"
    )


def postgresql_ddl() -> list[str]:
    """The trigger functions and triggers on PostgreSQL (created in the current schema)."""
    c = PG_CLOSED_DAY
    return [
        _plpgsql("petition_tally_apply", _petition_off("OLD", c), _petition_on("NEW", c)),
        "DROP TRIGGER IF EXISTS petition_tally_trg ON petition",
        "CREATE TRIGGER petition_tally_trg AFTER INSERT OR DELETE OR UPDATE OF "
        f"{', '.join(WATCHED)} ON petition FOR EACH ROW EXECUTE FUNCTION petition_tally_apply()",
        _plpgsql(
            "department_tally_apply", [_department_take_away("OLD")], [_department_add("NEW")]
        ),
        "DROP TRIGGER IF EXISTS department_tally_trg ON petition_assignment",
        "CREATE TRIGGER department_tally_trg AFTER INSERT OR DELETE OR UPDATE OF "
        f"{', '.join(ASSIGNMENT_WATCHED)} ON petition_assignment "
        "FOR EACH ROW EXECUTE FUNCTION department_tally_apply()",
    ]


def _sqlite_trigger(name: str, when: str, table: str, statements: list[str]) -> str:
    body = " ".join(f"{statement};" for statement in statements)
    return f"CREATE TRIGGER {name} {when} ON {table} BEGIN {body} END"


def sqlite_ddl() -> list[str]:
    """The triggers on SQLite (three per table: insert, delete, update of watched columns)."""
    c = SQLITE_CLOSED_DAY
    upd = f"AFTER UPDATE OF {', '.join(WATCHED)}"
    a_upd = f"AFTER UPDATE OF {', '.join(ASSIGNMENT_WATCHED)}"
    return [
        *(f"DROP TRIGGER IF EXISTS {name}" for name in SQLITE_TRIGGERS),
        _sqlite_trigger("petition_tally_ins", "AFTER INSERT", "petition", _petition_on("NEW", c)),
        _sqlite_trigger("petition_tally_del", "AFTER DELETE", "petition", _petition_off("OLD", c)),
        _sqlite_trigger(
            "petition_tally_upd", upd, "petition", _petition_off("OLD", c) + _petition_on("NEW", c)
        ),
        _sqlite_trigger(
            "department_tally_ins", "AFTER INSERT", "petition_assignment", [_department_add("NEW")]
        ),
        _sqlite_trigger(
            "department_tally_del",
            "AFTER DELETE",
            "petition_assignment",
            [_department_take_away("OLD")],
        ),
        _sqlite_trigger(
            "department_tally_upd",
            a_upd,
            "petition_assignment",
            [_department_take_away("OLD"), _department_add("NEW")],
        ),
    ]


SQLITE_TRIGGERS = (
    "petition_tally_ins",
    "petition_tally_del",
    "petition_tally_upd",
    "department_tally_ins",
    "department_tally_del",
    "department_tally_upd",
)


def drop_ddl(dialect: str) -> list[str]:
    """What undoes install_triggers()."""
    if dialect == "postgresql":
        return [
            "DROP TRIGGER IF EXISTS petition_tally_trg ON petition",
            "DROP FUNCTION IF EXISTS petition_tally_apply()",
            "DROP TRIGGER IF EXISTS department_tally_trg ON petition_assignment",
            "DROP FUNCTION IF EXISTS department_tally_apply()",
        ]
    return [f"DROP TRIGGER IF EXISTS {name}" for name in SQLITE_TRIGGERS]


def install_triggers(conn: Connection) -> None:
    """Create (or replace) the petition triggers for this connection's database."""
    ddl = postgresql_ddl() if conn.dialect.name == "postgresql" else sqlite_ddl()
    for statement in ddl:
        conn.exec_driver_sql(statement)


def _petition_counts_select(closed_day: Any) -> Any:
    from app.petition.models import Petition

    closed = Petition.status == "closed"
    rated = (
        closed
        & Petition.satisfaction_source.in_(RATED_SOURCES)
        & Petition.satisfaction.in_(RATED_ANSWERS)
    )
    content = rated & Petition.satisfaction.in_(tuple(workflow.CONTENT))
    on_time = closed & (Petition.closure_due.is_(None) | (closed_day <= Petition.closure_due))
    return select(
        Petition.intake_date,
        Petition.status,
        func.count(),
        func.sum(case((on_time, 1), else_=0)),
        func.sum(case((rated, 1), else_=0)),
        func.sum(case((content, 1), else_=0)),
        func.sum(case((content & (Petition.satisfaction_source == "clerk_phone"), 1), else_=0)),
        func.coalesce(func.sum(Petition.review_count), 0),
    ).group_by(Petition.intake_date, Petition.status)


def _closed_day(conn: Connection | Session) -> Any:
    from sqlalchemy import Date, cast, text

    from app.petition.models import Petition

    bind = conn.get_bind() if isinstance(conn, Session) else conn
    if bind.dialect.name == "postgresql":
        return cast(text("(petition.closed_at AT TIME ZONE 'Asia/Shanghai')"), Date)
    return func.date(Petition.closed_at, "+8 hours")


def _unit_counts_select(project_ids: list[int] | None) -> Any:
    stmt = select(
        Unit.project_id,
        func.count(),
        func.sum(case((Unit.transfer_status == "done", 1), else_=0)),
    ).group_by(Unit.project_id)
    if project_ids is not None:
        stmt = stmt.where(Unit.project_id.in_(project_ids))
    return stmt


def refresh_unit_tally(db: Session | Connection, project_ids: Iterable[int] | None = None) -> None:
    """Recount the units of these projects (all projects: None), in the caller's transaction."""
    ids = None if project_ids is None else sorted(set(project_ids))
    batches: list[list[int] | None] = (
        [None] if ids is None else [ids[i : i + 500] for i in range(0, len(ids), 500)]
    )
    for batch in batches:
        gone = delete(UnitTally)
        if batch is not None:
            gone = gone.where(UnitTally.project_id.in_(batch))
        db.execute(gone)
        rows = [
            {"project_id": pid, "units": int(n), "transfer_done": int(done or 0)}
            for pid, n, done in db.execute(_unit_counts_select(batch))
        ]
        for i in range(0, len(rows), 5000):
            db.execute(insert(UnitTally), rows[i : i + 5000])


def set_unit_tally(db: Session | Connection, counts: dict[int, tuple[int, int]]) -> None:
    """The unit totals of these projects as their writer counted them: {project id: (units,
    transfer done)} (the ledger's bulk load, which counts while it loads), in its transaction."""
    ids = sorted(counts)
    for i in range(0, len(ids), 500):
        db.execute(delete(UnitTally).where(UnitTally.project_id.in_(ids[i : i + 500])))
    rows = [{"project_id": p, "units": counts[p][0], "transfer_done": counts[p][1]} for p in ids]
    for i in range(0, len(rows), 5000):
        db.execute(insert(UnitTally), rows[i : i + 5000])


def rebuild(db: Session | Connection) -> None:
    """Recount both tallies from the petitions and units, in the caller's transaction."""
    db.execute(delete(PetitionTally))
    rows = [
        dict(zip(("intake_date", "status", *COUNTS), (day, status, *map(int, rest)), strict=True))
        for day, status, *rest in db.execute(_petition_counts_select(_closed_day(db)))
    ]
    for i in range(0, len(rows), 5000):
        db.execute(insert(PetitionTally), rows[i : i + 5000])
    db.execute(delete(ProjectPetitionTally))
    db.execute(
        insert(ProjectPetitionTally).from_select(["project_id", "n"], _project_counts_select())
    )
    db.execute(delete(DepartmentTally))
    db.execute(
        insert(DepartmentTally).from_select(
            ["department", "assigned", "answered"], _department_counts_select()
        )
    )
    refresh_unit_tally(db)


def _project_counts_select() -> Any:
    from app.petition.models import Petition

    return (
        select(Petition.project_id, func.count())
        .where(Petition.project_id.is_not(None))
        .group_by(Petition.project_id)
    )


def _department_counts_select() -> Any:
    from app.petition.models import PetitionAssignment

    return select(
        PetitionAssignment.department, func.count(), func.count(PetitionAssignment.answer)
    ).group_by(PetitionAssignment.department)


def _compare(
    label: str, fresh: dict[Any, tuple[int, ...]], kept: dict[Any, tuple[int, ...]], width: int
) -> list[str]:
    out = []
    for key in sorted(set(fresh) | set(kept), key=str):
        a, b = fresh.get(key, (0,) * width), kept.get(key, (0,) * width)
        if a != b:
            out.append(f"{label} {key}: counted {a}, kept {b}")
    return out


def differences(db: Session) -> list[str]:
    """Where the totals and a fresh count disagree (empty: nowhere)."""
    petitions = _compare(
        "petition_tally",
        {
            (str(day), status): tuple(int(v or 0) for v in rest)
            for day, status, *rest in db.execute(_petition_counts_select(_closed_day(db)))
        },
        {
            (str(t.intake_date), t.status): tuple(getattr(t, c) for c in COUNTS)
            for t in db.scalars(select(PetitionTally))
        },
        len(COUNTS),
    )
    projects = _compare(
        "project_petition_tally project",
        {pid: (int(n),) for pid, n in db.execute(_project_counts_select())},
        {t.project_id: (t.n,) for t in db.scalars(select(ProjectPetitionTally))},
        1,
    )
    departments = _compare(
        "department_tally",
        {d: (int(n), int(a)) for d, n, a in db.execute(_department_counts_select())},
        {t.department: (t.assigned, t.answered) for t in db.scalars(select(DepartmentTally))},
        2,
    )
    units = _compare(
        "unit_tally project",
        {pid: (int(n), int(d or 0)) for pid, n, d in db.execute(_unit_counts_select(None))},
        {t.project_id: (t.units, t.transfer_done) for t in db.scalars(select(UnitTally))},
        2,
    )
    return petitions + projects + departments + units


def main(argv: list[str] | None = None) -> int:
    """`python -m app.dashboard.tally check|rebuild` against DATABASE_URL."""
    from app.core.database import session_scope

    args = sys.argv[1:] if argv is None else argv
    if args not in (["check"], ["rebuild"]):
        print("用法: python -m app.dashboard.tally check|rebuild", file=sys.stderr)
        return 2
    with session_scope() as db:
        if args == ["rebuild"]:
            rebuild(db)
            # The unit totals may have changed: what is kept per ledger token (the dashboard's
            # registration rows, app.status.ledger_memo) is built again after this commit. Not
            # in rebuild() itself: migration 0003 calls it before the token's table exists.
            ledger_version.mark_dirty(db.connection())
            print("统计表已重新计算。")
            return 0
        found = differences(db)
    for line in found:
        print(line)
    print("统计表与实际数据一致。" if not found else f"{len(found)} 处不一致。")
    return 1 if found else 0


if __name__ == "__main__":
    sys.exit(main())
