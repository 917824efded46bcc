"""Deadlines that chase themselves: the periodic job's logic, with the day given (tests control
the clock). Idempotent: every reminder has a key per user, so a second run on the same day (or
an hourly schedule) tells nobody twice.

- the working day before an assignment's answer is due, the department's officers are reminded;
- an open petition past its next deadline goes to 督办 (supervised) through the same path as a
  supervisor's click (audited as `system:deadlines`, the resident told), supervisors are told;
- a project whose 预计化解日期 has passed with blockers still open: clerks and supervisors are
  told once per project and date value.
"""

from __future__ import annotations

import logging
from collections import defaultdict
from dataclasses import dataclass, field
from datetime import date

from sqlalchemy import exists, func, select
from sqlalchemy.orm import Session, selectinload

from app.core.errors import AppError
from app.core.workdays import calendar
from app.inbox import service as inbox
from app.petition import staff_service
from app.petition.models import OPEN_STATES, Petition, PetitionAssignment, PetitionDue
from app.policy.departments import department_name
from app.status.models import BLOCKER_OPEN, Blocker, Project

log = logging.getLogger("app.petition.deadlines")


@dataclass
class DeadlineRun:
    """What one run did."""

    reminders: int = 0
    supervised: list[str] = field(default_factory=list)
    slipped_projects: list[str] = field(default_factory=list)
    conflicts: int = 0
    # More overdue petitions are left than this run's batch took (the job runs another batch,
    # from the petition after `last_id`).
    more: bool = False
    last_id: int = 0


def _remind_departments(db: Session, today: date, run: DeadlineRun) -> None:
    # Due on the next working day (a Friday reminds of a Monday deadline).
    horizon, _ = calendar().add_working_days(today, 1)
    rows = db.execute(
        select(PetitionAssignment, Petition.number)
        .join(Petition, Petition.id == PetitionAssignment.petition_id)
        .where(
            PetitionAssignment.answer.is_(None),
            PetitionAssignment.answer_due > today,
            PetitionAssignment.answer_due <= horizon,
            Petition.status.in_(OPEN_STATES),
        )
        .order_by(PetitionAssignment.department, PetitionAssignment.id)
    ).all()
    by_department: dict[str, list[tuple[PetitionAssignment, str]]] = defaultdict(list)
    for assignment, number in rows:
        by_department[assignment.department].append((assignment, number))
    for department, items in by_department.items():
        officers = inbox.officers_of(db, department)
        for assignment, number in items:
            text = (
                f"答复提醒：信访 {number} 需要{department_name(department)}在"
                f"{assignment.answer_due:%Y年%m月%d日}前书面答复，请按时答复。"
            )
            made = inbox.notify_users(
                db,
                officers,
                kind="answer_due",
                key=f"answer_due:{assignment.id}:{assignment.answer_due.isoformat()}",
                text=text,
                link=f"/console/petitions/{number}",
            )
            run.reminders += len(made)


def _supervise_overdue(
    db: Session, today: date, run: DeadlineRun, limit: int | None, after_id: int
) -> None:
    stmt = (
        select(Petition.id)
        .join(PetitionDue, PetitionDue.petition_id == Petition.id)
        .where(
            staff_service.overdue_condition(today),
            Petition.status != "supervised",
            Petition.id > after_id,
        )
        .order_by(Petition.id)
    )
    ids = db.scalars(stmt if limit is None else stmt.limit(limit)).all()
    run.more = limit is not None and len(ids) == limit
    run.last_id = ids[-1] if ids else after_id
    if not ids:
        return
    supervisors = inbox.users_with_role(db, "supervisor")
    for petition_id in ids:
        petition = db.scalar(
            select(Petition)
            .where(Petition.id == petition_id)
            .options(selectinload(Petition.assignments))
        )
        if petition is None:
            continue
        try:
            with db.begin_nested():
                moved = staff_service.supervise_overdue(db=db, petition=petition, today=today)
        except AppError:
            # A clerk changed it at the same moment (version conflict): the next run looks again.
            run.conflicts += 1
            db.expire(petition)
            continue
        if not moved:
            continue
        run.supervised.append(petition.number)
        inbox.notify_users(
            db,
            supervisors,
            kind="supervised",
            key=f"supervised:{petition.id}:{today.isoformat()}",
            text=f"超期督办：信访 {petition.number} 已超过办理期限，系统已自动列入督办，请跟进。",
            link=f"/console/petitions/{petition.number}",
        )


def _slipped_projects(db: Session, today: date, run: DeadlineRun) -> None:
    open_count = (
        select(func.count())
        .where(Blocker.project_id == Project.id, Blocker.status == BLOCKER_OPEN)
        .scalar_subquery()
    )
    rows = db.execute(
        select(Project, open_count)
        .where(
            Project.expected_resolution_date.is_not(None),
            Project.expected_resolution_date < today,
            exists().where(Blocker.project_id == Project.id, Blocker.status == BLOCKER_OPEN),
        )
        .order_by(Project.id)
    ).all()
    if not rows:
        return
    staff = inbox.users_with_role(db, "clerk", "supervisor")
    for project, count in rows:
        expected = project.expected_resolution_date
        assert expected is not None
        made = inbox.notify_users(
            db,
            staff,
            kind="expected_date_passed",
            key=f"expected_date:{project.id}:{expected.isoformat()}",
            text=(
                f"预计化解日期已过：项目“{project.name}”预计{expected:%Y年%m月%d日}化解，"
                f"仍有{count}个卡点未化解。请推进化解或更新预计化解日期。"
            ),
            link=f"/console/projects/{project.code}",
        )
        if made:
            run.slipped_projects.append(project.code)


def run_deadlines(
    *, db: Session, today: date, supervise_limit: int | None = None, after_id: int = 0
) -> DeadlineRun:
    """One pass of the deadline job over the database (the caller commits). With
    `supervise_limit`, at most that many overdue petitions (with ids above `after_id`) are
    looked at; `run.more` and `run.last_id` say where the next batch starts, so that a large
    backlog is committed batch by batch."""
    run = DeadlineRun()
    first = after_id == 0  # reminders once per pass, not again with every batch
    if first:
        _remind_departments(db, today, run)
    _supervise_overdue(db, today, run, supervise_limit, after_id)
    if first:
        _slipped_projects(db, today, run)
    db.flush()
    log.info(
        "deadlines %s: %d reminders, %d supervised, %d projects past their date, %d conflicts",
        today.isoformat(),
        run.reminders,
        len(run.supervised),
        len(run.slipped_projects),
        run.conflicts,
    )
    return run
