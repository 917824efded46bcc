"""Keeping the dashboard's running totals (app.dashboard.models) current, and checking them.

`petition_tally` is kept by triggers on `petition`: one row per (intake day, state) is moved by
every insert, delete and update of the columns the figures read, in the writer's transaction, on
PostgreSQL (a PL/pgSQL function) and on SQLite (three triggers). `unit_tally` is refreshed by the
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

from app.dashboard.models import PetitionTally, UnitTally
from app.petition import workflow
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
)
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


def postgresql_ddl() -> list[str]:
    """The trigger function and trigger on PostgreSQL (created in the current schema)."""
    c = PG_CLOSED_DAY
    return [
        "CREATE OR REPLACE FUNCTION petition_tally_apply() RETURNS trigger AS $$\n"
        "BEGIN\n"
        "  IF TG_OP IN ('UPDATE', 'DELETE') THEN\n"
        f"    {_take_away('OLD', c)};\n"
        "  END IF;\n"
        "  IF TG_OP IN ('INSERT', 'UPDATE') THEN\n"
        f"    {_add('NEW', c)};\n"
        "  END IF;\n"
        "  RETURN NULL;\n"
        "END $$ LANGUAGE plpgsql",
        "DROP TRIGGER IF EXISTS petition_tally_trg ON petition",
        "CREATE TRIGGER petition_tally_trg AFTER INSERT OR DELETE OR UPDATE OF "
        f"{', '.join(WATCHED)} ON petition FOR EACH ROW EXECUTE FUNCTION petition_tally_apply()",
    ]


def sqlite_ddl() -> list[str]:
    """The three triggers on SQLite."""
    c = SQLITE_CLOSED_DAY
    return [
        "DROP TRIGGER IF EXISTS petition_tally_ins",
        "DROP TRIGGER IF EXISTS petition_tally_del",
        "DROP TRIGGER IF EXISTS petition_tally_upd",
        f"CREATE TRIGGER petition_tally_ins AFTER INSERT ON petition BEGIN {_add('NEW', c)}; END",
        f"CREATE TRIGGER petition_tally_del AFTER DELETE ON petition BEGIN "
        f"{_take_away('OLD', c)}; END",
        f"CREATE TRIGGER petition_tally_upd AFTER UPDATE OF {', '.join(WATCHED)} ON petition "
        f"BEGIN {_take_away('OLD', c)}; {_add('NEW', c)}; END",
    ]


def drop_ddl(dialect: str) -> list[str]:
    """What undoes install_triggers()."""
    if dialect == "postgresql":
        return [
            "DROP TRIGGER IF EXISTS petition_tally_trg ON petition",
            "DROP FUNCTION IF EXISTS petition_tally_apply()",
        ]
    return [f"DROP TRIGGER IF EXISTS petition_tally_{s}" for s in ("ins", "del", "upd")]


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


def rebuild(db: Session | Connection) -> None:
    """Recount both tallies from the petitions and units, in the caller's transaction."""
    db.execute(delete(PetitionTally))
    rows = [
        dict(zip(("intake_date", "status", *COUNTS), (day, status, *map(int, rest)), strict=True))
        for day, status, *rest in db.execute(_petition_counts_select(_closed_day(db)))
    ]
    for i in range(0, len(rows), 5000):
        db.execute(insert(PetitionTally), rows[i : i + 5000])
    refresh_unit_tally(db)


def differences(db: Session) -> list[str]:
    """Where the totals and a fresh count disagree ('' lines: none)."""
    out: list[str] = []
    fresh = {
        (day, status): tuple(int(v or 0) for v in rest)
        for day, status, *rest in db.execute(_petition_counts_select(_closed_day(db)))
    }
    kept = {
        (row.intake_date, row.status): tuple(getattr(row, c) for c in COUNTS)
        for row in db.scalars(select(PetitionTally))
    }
    for key in sorted(set(fresh) | set(kept), key=lambda k: (str(k[0]), k[1])):
        a, b = fresh.get(key, (0,) * len(COUNTS)), kept.get(key, (0,) * len(COUNTS))
        if a != b:
            out.append(f"petition_tally {key[0]} {key[1]}: counted {a}, kept {b}")
    units = {pid: (int(n), int(d or 0)) for pid, n, d in db.execute(_unit_counts_select(None))}
    kept_units = {t.project_id: (t.units, t.transfer_done) for t in db.scalars(select(UnitTally))}
    for pid in sorted(set(units) | set(kept_units)):
        a, b = units.get(pid, (0, 0)), kept_units.get(pid, (0, 0))
        if a != b:
            out.append(f"unit_tally project {pid}: counted {a}, kept {b}")
    return out


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
            print("统计表已重新计算。")
            return 0
        found = differences(db)
    for line in found:
        print(line)
    print("统计表与实际数据一致。" if not found else f"{len(found)} 处不一致。")
    return 1 if found else 0


if __name__ == "__main__":
    sys.exit(main())
