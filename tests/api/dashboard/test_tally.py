"""The dashboard's running totals (unit_tally, petition_tally) stay equal to a fresh count,
whatever writes the petitions and units: the ORM, a bulk insert, the ledger import, a rollback."""

from __future__ import annotations

import random
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import pytest
from ledger.ledger_files import (
    PROJECT_HEADER,
    UNIT_HEADER,
    projects_default,
    unit,
    units_default,
    write_csv,
)
from sqlalchemy import delete, insert, select, update
from sqlalchemy.orm import Session
from staff.staffkit import make_petition, make_project

from app.dashboard import service as dashboard_service
from app.dashboard import tally
from app.dashboard.models import PetitionTally, UnitTally
from app.ledger.service import LedgerValidationError, import_ledger
from app.petition.models import Petition, PetitionAssignment
from app.status.models import Project

TODAY = date(2026, 11, 23)
STATES = ["accepted", "assigned", "verifying", "public_notice", "review", "transferred", "closed"]
ANSWERS = [None, "satisfied", "basically_satisfied", "unsatisfied", "unreached"]
SOURCES = [None, "resident", "clerk_phone"]


def _scan_figures(db: Session) -> tuple[int, int, int, int, int, int, dict[str, int]]:
    """The headline counts straight from the petition rows (what the dashboard showed before)."""
    rows = list(db.scalars(select(Petition)))
    by_status: dict[str, int] = {}
    on_time = rated = content = phone = reviews = 0
    for p in rows:
        by_status[p.status] = by_status.get(p.status, 0) + 1
        reviews += p.review_count or 0
        if p.status != "closed":
            continue
        day = (p.closed_at + timedelta(hours=8)).date() if p.closed_at else None
        if p.closure_due is None or (day is not None and day <= p.closure_due):
            on_time += 1
        if p.satisfaction_source in ("resident", "clerk_phone") and p.satisfaction in (
            "satisfied",
            "basically_satisfied",
            "unsatisfied",
        ):
            rated += 1
            if p.satisfaction in ("satisfied", "basically_satisfied"):
                content += 1
                phone += p.satisfaction_source == "clerk_phone"
    return len(rows), on_time, rated, content, phone, reviews, by_status


def _figures(db: Session) -> tuple[int, int, int, int, int, int, dict[str, int]]:
    f = dashboard_service.petition_figures(db=db, today=TODAY)
    return (
        f.total,
        f.closed_on_time,
        f.rated,
        f.satisfied,
        f.satisfied_by_phone,
        f.reviews,
        f.by_status,
    )


def test_a_random_walk_of_petition_changes_keeps_the_totals(db: Session) -> None:
    """Two hundred changes of state, closure, rating, review count, intake day, project,
    assignments and answers, and deletions, through the ORM: after each, every total equals a
    fresh count, the dashboard's figures equal those counted from the rows one by one, and the
    all-time blocker and department counts (from the totals) equal a range over everything
    (from the rows)."""
    rng = random.Random(15)
    project = make_project(db)
    other = make_project(db, blockers=(("mortgage", "registry_center"),))
    petitions = [
        make_petition(
            db,
            status=rng.choice(STATES),
            intake=date(2026, 10, 1) + timedelta(days=rng.randrange(20)),
            project=project,
        )
        for _ in range(12)
    ]
    reached: dict[str, int] = {}
    for step in range(200):
        p = rng.choice(petitions)
        move = rng.randrange(9)
        if move == 0:
            p.status = rng.choice(STATES)
        elif move == 1:
            p.status = "closed"
            p.closure_due = rng.choice([None, date(2026, 11, 10), date(2026, 11, 20)])
            # 16:30 UTC is the next day in Shanghai: the day boundary counts.
            p.closed_at = datetime(2026, 11, rng.choice([9, 10, 19, 20]), 16, 30, tzinfo=UTC)
        elif move == 2:
            p.satisfaction, p.satisfaction_source = rng.choice(ANSWERS), rng.choice(SOURCES)
        elif move == 3:
            p.review_count = (p.review_count or 0) + 1
        elif move == 4:
            p.intake_date = p.intake_date + timedelta(days=rng.choice([-1, 1]))
        elif move == 5:
            p.project_id = rng.choice([project.id, other.id, None])
        elif move == 6:
            dept = rng.choice(["housing_bureau", "tax_bureau", "registry_center", "fire_rescue"])
            if dept not in {a.department for a in p.assignments}:
                p.assignments.append(
                    PetitionAssignment(department=dept, answer_due=date(2026, 11, 30))
                )
        elif move == 7 and p.assignments:
            a = rng.choice(p.assignments)
            if rng.random() < 0.7:
                a.answer = None if a.answer else "已书面答复。"
            else:
                p.assignments.remove(a)
        elif len(petitions) > 4:
            petitions.remove(p)
            db.delete(p)
        else:
            petitions.append(make_petition(db, status=rng.choice(STATES), project=project))
        db.flush()
        assert tally.differences(db) == [], f"step {step}, move {move}"
        assert _figures(db) == _scan_figures(db), f"step {step}, move {move}"
        # All time reads the totals; a range counts the rows: a range over everything agrees.
        everything = {"since": date(2000, 1, 1), "until": date(2100, 1, 1)}
        assert dashboard_service.blocker_counts(db=db) == dashboard_service.blocker_counts(
            db=db, **everything
        ), f"step {step}, move {move}"
        assert dashboard_service.department_counts(
            db=db, today=TODAY
        ) == dashboard_service.department_counts(db=db, today=TODAY, **everything)
        now = _figures(db)
        for name, value in (("on_time", now[1]), ("rated", now[2]), ("by_phone", now[4])):
            reached[name] = reached.get(name, 0) + value
    # The walk did pass through on-time, rated and by-phone totals: the comparisons meant something.
    assert all(reached.get(k) for k in ("on_time", "rated", "by_phone")), reached


def test_bulk_writes_that_bypass_the_orm_are_counted_too(db: Session) -> None:
    """Core INSERT/UPDATE/DELETE (as a bulk job or the bench does) fire the same triggers."""
    before = _figures(db)[0]
    rows = [
        {
            "number": f"XF-20261101-9{i:03d}",
            "status": "closed" if i % 2 else "assigned",
            "person_name": "李四",
            "phone": "13900000000",
            "address": "",
            "description": "未办证",
            "consent": True,
            "channel": "web",
            "intake_date": date(2026, 11, 1),
            "answer_due": date(2026, 11, 8),
            "closure_due": date(2026, 12, 30),
            "closed_at": datetime(2026, 11, 5, tzinfo=UTC) if i % 2 else None,
            "review_count": 0,
            "version": 1,
        }
        for i in range(10)
    ]
    db.execute(insert(Petition), rows)
    assert tally.differences(db) == []
    assert _figures(db)[0] == before + 10
    db.execute(
        update(Petition)
        .where(Petition.number.like("XF-20261101-9%"))
        .values(satisfaction="satisfied", satisfaction_source="clerk_phone")
    )
    assert tally.differences(db) == []
    assert dashboard_service.petition_figures(db=db, today=TODAY).satisfied_by_phone == 5
    db.execute(delete(Petition).where(Petition.number.like("XF-20261101-9%")))
    assert tally.differences(db) == []
    assert _figures(db)[0] == before


def test_the_period_filter_reads_the_days_of_the_totals(db: Session) -> None:
    """since/until pick the intake days of the tally as they picked the petitions."""
    for day in (date(2026, 11, 1), date(2026, 11, 2), date(2026, 11, 3)):
        make_petition(db, status="assigned", intake=day)
    f = dashboard_service.petition_figures(
        db=db, today=TODAY, since=date(2026, 11, 2), until=date(2026, 11, 2)
    )
    assert (f.total, f.by_status) == (1, {"assigned": 1})


def test_a_rolled_back_change_leaves_the_totals_as_they_were(db: Session) -> None:
    """The triggers write in the writer's transaction: a rollback takes the totals back too."""
    p = make_petition(db, status="assigned")
    kept = db.execute(select(PetitionTally.status, PetitionTally.n)).all()
    savepoint = db.begin_nested()
    p.status = "closed"
    db.flush()
    assert dict(db.execute(select(PetitionTally.status, PetitionTally.n)).all()).get("closed")
    savepoint.rollback()
    assert sorted(db.execute(select(PetitionTally.status, PetitionTally.n)).all()) == sorted(kept)


def _unit_tally(db: Session) -> dict[str, tuple[int, int]]:
    rows = db.execute(
        select(Project.code, UnitTally.units, UnitTally.transfer_done).join(
            UnitTally, UnitTally.project_id == Project.id
        )
    )
    return {code: (n, done) for code, n, done in rows}


def test_the_ledger_import_keeps_the_unit_totals(db: Session, tmp_path: Path) -> None:
    """A first import counts the units, a re-import with changed states recounts them, and an
    import refused for a bad row leaves the totals as they were (all or nothing)."""
    projects = write_csv(tmp_path / "projects.csv", PROJECT_HEADER, projects_default())
    first = write_csv(tmp_path / "units.csv", UNIT_HEADER, units_default())
    import_ledger([projects, first], db=db, actor="tester")
    assert _unit_tally(db) == {"T001": (2, 0), "T002": (1, 1)}

    changed = [
        unit(**{"转移登记": "已办结"}),
        unit(**{"房号": "502室", "业主姓名": "测乙", "身份证号": "", "转移登记": "已办结"}),
        unit(**{"房号": "503", "业主姓名": "", "身份证号": "", "转移登记": "未办理"}),
    ]
    second = write_csv(tmp_path / "units2.csv", UNIT_HEADER, changed)
    import_ledger([second], db=db, actor="tester")
    assert _unit_tally(db) == {"T001": (3, 2), "T002": (1, 1)}

    bad = write_csv(
        tmp_path / "units3.csv",
        UNIT_HEADER,
        [unit(**{"房号": "504", "身份证号": "", "转移登记": "已办结"}), unit(**{"转移登记": "?"})],
    )
    with pytest.raises(LedgerValidationError):
        import_ledger([bad], db=db, actor="tester")
    assert _unit_tally(db) == {"T001": (3, 2), "T002": (1, 1)}
    assert tally.differences(db) == []
    figures = {r.key: r for r in dashboard_service.registration(db=db)[1]}
    assert (figures["T001"].transfer_done, figures["T002"].transfer_done) == (2, 1)


def test_check_finds_a_total_gone_wrong_and_rebuild_mends_it(
    db: Session, capsys: pytest.CaptureFixture[str]
) -> None:
    """`python -m app.dashboard.tally check` exits 1 on a wrong total; `rebuild` recounts."""
    make_project(db, transfers=("done", "not_started"))
    make_petition(db, status="assigned")
    assert tally.differences(db) == []
    db.execute(update(PetitionTally).values(n=PetitionTally.n + 1))
    db.execute(update(UnitTally).values(transfer_done=0))
    found = tally.differences(db)
    assert any(line.startswith("petition_tally") for line in found)
    assert any(line.startswith("unit_tally") for line in found)
    tally.rebuild(db)
    assert tally.differences(db) == []


def test_the_cli_reports_in_chinese(monkeypatch: pytest.MonkeyPatch, db: Session, capsys) -> None:
    """check prints its verdict in Chinese and exits 0 when the totals agree; bad use exits 2."""
    import contextlib

    @contextlib.contextmanager
    def scope():
        yield db

    monkeypatch.setattr("app.core.database.session_scope", scope)
    make_petition(db, status="assigned")
    assert tally.main(["check"]) == 0
    assert "一致" in capsys.readouterr().out
    db.execute(update(PetitionTally).values(n=PetitionTally.n + 1))
    assert tally.main(["check"]) == 1
    assert tally.main(["rebuild"]) == 0
    assert tally.main(["check"]) == 0
    assert tally.main(["oops"]) == 2
    assert "用法" in capsys.readouterr().err
