"""The periodic deadline job, with a controlled clock: the department reminded the working day
before its answer is due, an overdue petition raised to 督办 (audited, the resident and the
supervisors told), a project whose expected resolution date passed with blockers open flagged
to staff once and told to residents as slipped. Every run twice: nothing is sent twice."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import date, datetime, timedelta

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select
from sqlalchemy.orm import Session
from staff.staffkit import make_petition, make_project, make_user

from app.audit.models import AuditLog
from app.core.database import get_db
from app.core.workdays import today_shanghai
from app.inbox.models import StaffNotification
from app.notify.models import Notification
from app.petition.deadlines import run_deadlines
from app.petition.models import Petition, PetitionNotice
from app.staff.models import StaffUser
from app.status.models import BLOCKER_RESOLVED

INTAKE = date(2026, 11, 2)  # a Monday: answers assigned that day are due Monday 11-09
DUE = date(2026, 11, 9)
FRIDAY_BEFORE = date(2026, 11, 6)
AFTER_DUE = date(2026, 11, 10)


@pytest.fixture
def client(db: Session) -> Iterator[TestClient]:
    from app.main import app

    def _override() -> Iterator[Session]:
        yield db
        db.commit()

    app.dependency_overrides[get_db] = _override
    with TestClient(app) as c:
        yield c
    app.dependency_overrides.pop(get_db, None)


def inbox_of(db: Session, user: StaffUser) -> list[StaffNotification]:
    stmt = select(StaffNotification).where(StaffNotification.user_id == user.id)
    return list(db.scalars(stmt.order_by(StaffNotification.id)).all())


def audit_rows(db: Session, petition: Petition) -> list[AuditLog]:
    stmt = select(AuditLog).where(
        AuditLog.entity_type == "petition", AuditLog.entity_id == petition.number
    )
    return list(db.scalars(stmt.order_by(AuditLog.id)).all())


def resident_messages(db: Session, petition: Petition) -> list[str]:
    stmt = select(Notification.text).where(Notification.petition_id == petition.id)
    return list(db.scalars(stmt.order_by(Notification.id)).all())


def assigned(db: Session, status: str = "assigned", **kw: object) -> Petition:
    petition = make_petition(
        db, status=status, intake=INTAKE, departments=("housing_bureau",), **kw
    )
    petition.sender_id = f"web-{petition.number}"
    db.flush()
    return petition


# ---------------------------------------------------------------- the day before


def test_department_reminded_the_working_day_before_once(db):
    """Friday before a Monday deadline: every active officer of the department gets one reminder
    naming the petition (never the resident); a second run and the weekend add nothing."""
    one, two = make_user(db, "officer"), make_user(db, "officer")
    gone = make_user(db, "officer")
    gone.active = False
    other = make_user(db, "officer", department="tax_bureau")
    petition = assigned(db)

    assert run_deadlines(db=db, today=date(2026, 11, 5)).reminders == 0  # two working days early
    assert inbox_of(db, one) == []

    first = run_deadlines(db=db, today=FRIDAY_BEFORE)
    again = run_deadlines(db=db, today=FRIDAY_BEFORE)
    saturday = run_deadlines(db=db, today=date(2026, 11, 7))
    assert (first.reminders, again.reminders, saturday.reminders) == (2, 0, 0)
    for officer in (one, two):
        [note] = inbox_of(db, officer)
        assert petition.number in note.text and "2026年11月09日" in note.text
        assert "张三" not in note.text and "13812345678" not in note.text
        assert note.link == f"/console/petitions/{petition.number}"
        assert note.read_at is None
    assert inbox_of(db, gone) == [] and inbox_of(db, other) == []
    assert petition.status == "assigned"  # a reminder moves nothing


def test_answered_or_closed_assignments_are_not_reminded(db):
    officer = make_user(db, "officer")
    make_petition(db, status="verifying", intake=INTAKE, answered=True)
    make_petition(db, status="closed", intake=INTAKE)
    assert run_deadlines(db=db, today=FRIDAY_BEFORE).reminders == 0
    assert inbox_of(db, officer) == []


# ---------------------------------------------------------------- overdue → 督办


def test_overdue_petition_goes_to_supervised_audited_and_told(db):
    supervisors = [make_user(db, "supervisor"), make_user(db, "supervisor")]
    clerk = make_user(db, "clerk")
    petition = assigned(db)
    version = petition.version

    run = run_deadlines(db=db, today=AFTER_DUE)
    assert run.supervised == [petition.number]
    db.refresh(petition)
    assert petition.status == "supervised"
    assert petition.version == version + 1

    [row] = audit_rows(db, petition)
    assert row.actor == "system:deadlines"
    assert row.action == "petition.transition"
    assert row.before["status"] == "assigned"
    assert row.after["status"] == "supervised" and row.after["action"] == "supervise"

    [told] = resident_messages(db, petition)
    assert petition.number in told and "督办" in told

    for supervisor in supervisors:
        [note] = inbox_of(db, supervisor)
        assert note.kind == "supervised" and petition.number in note.text
        assert "张三" not in note.text and "13812345678" not in note.text
    assert inbox_of(db, clerk) == []

    # The next run (same day or the next) finds it supervised: nothing twice.
    assert run_deadlines(db=db, today=AFTER_DUE).supervised == []
    assert run_deadlines(db=db, today=AFTER_DUE + timedelta(days=1)).supervised == []
    assert len(audit_rows(db, petition)) == 1
    assert len(resident_messages(db, petition)) == 1
    assert all(len(inbox_of(db, s)) == 1 for s in supervisors)


def test_overdue_first_answer_while_still_accepted_is_supervised(db):
    """已受理 and never assigned past its first-answer date: overdue too."""
    supervisor = make_user(db, "supervisor")
    petition = make_petition(db, status="accepted", intake=INTAKE)
    run_deadlines(db=db, today=AFTER_DUE)
    db.refresh(petition)
    assert petition.status == "supervised"
    assert len(inbox_of(db, supervisor)) == 1


@pytest.mark.parametrize("status", ["supervised", "closed", "transferred"])
def test_supervised_closed_or_transferred_are_untouched(db, status):
    supervisor = make_user(db, "supervisor")
    petition = assigned(db, status=status)
    version = petition.version
    run = run_deadlines(db=db, today=AFTER_DUE + timedelta(days=30))
    db.refresh(petition)
    assert run.supervised == []
    assert petition.status == status and petition.version == version
    assert audit_rows(db, petition) == []
    assert resident_messages(db, petition) == []
    assert inbox_of(db, supervisor) == []


def test_overdue_during_a_running_notice_waits_for_the_notice_to_end(db):
    """公示 (at least 15 working days) past the closure target: not raised mid-notice (督办 must
    not become a way round the notice); once the notice period is over it is."""
    supervisor = make_user(db, "supervisor")
    petition = make_petition(
        db,
        status="public_notice",
        intake=INTAKE,
        departments=("housing_bureau",),
        answered=True,
        closure_due=date(2026, 11, 13),
    )
    notice_end = db.get(PetitionNotice, petition.id).earliest_end
    assert notice_end > date(2026, 11, 16)
    assert run_deadlines(db=db, today=date(2026, 11, 16)).supervised == []
    assert petition.status == "public_notice" and inbox_of(db, supervisor) == []
    assert run_deadlines(db=db, today=notice_end).supervised == [petition.number]
    assert petition.status == "supervised"


def test_not_yet_overdue_is_untouched(db):
    petition = assigned(db)
    run_deadlines(db=db, today=DUE)  # due today is not overdue yet
    db.refresh(petition)
    assert petition.status == "assigned"


# ---------------------------------------------------------------- 预计化解日期


def _status(client: TestClient, code: str) -> dict:
    response = client.get(f"/api/v1/projects/{code}/status")
    assert response.status_code == 200
    return response.json()


def test_expected_date_passed_with_open_blockers_told_once_and_answer_says_slipped(db, client):
    today = today_shanghai()
    clerk, supervisor = make_user(db, "clerk"), make_user(db, "supervisor")
    officer = make_user(db, "officer")
    project = make_project(db, name="观象山庄")
    project.expected_resolution_date = today - timedelta(days=3)
    db.flush()

    first = run_deadlines(db=db, today=today)
    assert first.slipped_projects == [project.code]
    assert run_deadlines(db=db, today=today).slipped_projects == []
    assert run_deadlines(db=db, today=today + timedelta(days=1)).slipped_projects == []
    for user in (clerk, supervisor):
        [note] = inbox_of(db, user)
        assert note.kind == "expected_date_passed"
        assert "观象山庄" in note.text and "1个卡点" in note.text
        assert note.link == f"/console/projects/{project.code}"
    assert inbox_of(db, officer) == []

    answer = _status(client, project.code)
    assert answer["expected_date_passed"] is True
    assert answer["expected_resolution_date"] == project.expected_resolution_date.isoformat()

    # A new date that passes again is a new slip: told once more.
    project.expected_resolution_date = today - timedelta(days=1)
    db.flush()
    assert run_deadlines(db=db, today=today).slipped_projects == [project.code]
    assert len(inbox_of(db, clerk)) == 2


def test_expected_date_passed_but_blockers_resolved_tells_nobody(db, client):
    today = today_shanghai()
    clerk = make_user(db, "clerk")
    project = make_project(db)
    project.expected_resolution_date = today - timedelta(days=3)
    for blocker in project.blockers:
        blocker.status = BLOCKER_RESOLVED
    db.flush()
    assert run_deadlines(db=db, today=today).slipped_projects == []
    assert inbox_of(db, clerk) == []
    assert _status(client, project.code)["expected_date_passed"] is False


def test_future_expected_date_is_not_slipped(db, client):
    today = today_shanghai()
    clerk = make_user(db, "clerk")
    project = make_project(db)
    project.expected_resolution_date = today + timedelta(days=30)
    db.flush()
    assert run_deadlines(db=db, today=today).slipped_projects == []
    assert inbox_of(db, clerk) == []
    assert _status(client, project.code)["expected_date_passed"] is False


def test_the_job_is_registered_on_the_queue_hourly():
    """The worker imports app.tasks: the deadline job is one of its periodic tasks, hourly."""
    import app.tasks
    from app.jobs.queue import huey

    task_class = app.tasks.chase_deadlines.task_class
    assert task_class in huey._registry._periodic_tasks
    assert task_class().validate_datetime(datetime(2026, 11, 6, 9, 7))
    assert not task_class().validate_datetime(datetime(2026, 11, 6, 9, 8))


# ---------------------------------------------------------------- optimistic locking


def test_a_clerks_concurrent_change_wins_and_the_next_run_supervises(committed_db):
    """The job holds a stale copy while a clerk commits a change: the job's move is refused by
    the version check (counted as a conflict, nothing half-written), the next run does it."""
    from app.core.database import Base

    sessions = committed_db.sessions
    try:
        with sessions() as setup:
            petition = assigned(setup)
            setup.commit()
            number, version = petition.number, petition.version
        job = sessions()
        stale = job.scalar(select(Petition).where(Petition.number == number))
        assert stale is not None and stale.version == version
        with sessions() as clerk:
            fresh = clerk.scalar(select(Petition).where(Petition.number == number))
            fresh.outcome = "已电话联系"
            clerk.commit()
        run = run_deadlines(db=job, today=AFTER_DUE)
        job.commit()
        assert run.conflicts == 1 and run.supervised == []
        job.close()
        with sessions() as check:
            row = check.scalar(select(Petition).where(Petition.number == number))
            assert row.status == "assigned" and row.version == version + 1
            assert audit_rows(check, row) == []
            run = run_deadlines(db=check, today=AFTER_DUE)
            check.commit()
            assert run.supervised == [number]
            assert check.scalar(select(Petition.status).where(Petition.number == number)) == (
                "supervised"
            )
    finally:
        with committed_db.engine.begin() as conn:
            for table in reversed(Base.metadata.sorted_tables):
                conn.execute(table.delete())


# ---------------------------------------------------------------- the job itself


def test_the_job_commits_a_backlog_batch_by_batch_to_the_end(outbox_db):
    """What the worker runs: a backlog is raised one committed batch at a time, past petitions
    it must leave alone (a notice still running heads the list), and a rerun does nothing."""
    from app.petition.tasks import chase

    with outbox_db.sessions() as db:
        supervisor = make_user(db, "supervisor")
        waiting = make_petition(
            db,
            status="public_notice",
            intake=INTAKE,
            departments=("housing_bureau",),
            answered=True,
            closure_due=date(2026, 11, 13),
        )
        backlog = [assigned(db).number for _ in range(5)]
        db.commit()
        supervisor_id, waiting_number = supervisor.id, waiting.number

    assert chase(date(2026, 11, 16), batch=2) == 5
    assert chase(date(2026, 11, 16), batch=2) == 0
    with outbox_db.sessions() as db:
        states = dict(db.execute(select(Petition.number, Petition.status)).all())
        assert {states[n] for n in backlog} == {"supervised"}
        assert states[waiting_number] == "public_notice"
        notes = db.scalars(
            select(StaffNotification).where(StaffNotification.user_id == supervisor_id)
        ).all()
        assert len(notes) == 5
