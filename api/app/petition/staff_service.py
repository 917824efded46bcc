"""What staff do with petitions: list, read, assign, move, answer, note, close — each audited.

Every change checks the version the clerk saw (optimistic locking) and writes its audit row in
the same transaction; the caller's request or job boundary commits both or neither.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime
from typing import Any

from sqlalchemy import Select, and_, exists, func, or_, select
from sqlalchemy.orm import Session, selectinload
from sqlalchemy.orm.exc import StaleDataError
from sqlalchemy.sql.elements import ColumnElement

from app.audit import service as audit
from app.audit.models import AuditLog
from app.core.database import utcnow
from app.core.errors import AppError
from app.core.workdays import calendar, today_shanghai
from app.notify import service as notify
from app.petition import messages, workflow
from app.petition import service as petition_service
from app.petition.models import (
    OPEN_STATES,
    STATUS_LABELS,
    Petition,
    PetitionAssignment,
    PetitionDue,
    PetitionNote,
    PetitionNotice,
    compute_due,
)
from app.petition.procedure_models import (
    OBJECTION_OPEN,
    OBJECTION_TRANSFERRED,
    PetitionObjection,
    PetitionResettlement,
)
from app.policy.departments import (
    blocker_default_department,
    blocker_names,
    catalogue_setting,
    department_name,
    departments,
)
from app.staff import roles
from app.staff.models import StaffUser
from app.status.models import BLOCKER_OPEN, Blocker, Project

NOT_FOUND_MESSAGE = "没有找到这件信访，请核对编号。"
DEFAULT_FIRST_ANSWER_DAYS = 5
DEFAULT_CLOSURE_DAYS = 30
DEFAULT_NOTICE_DAYS = 15
DEFAULT_REVIEW_DAYS = 20
# 督办 of a department overdue on its part goes to the supervision group (a catalogue department).
SUPERVISION_DEPARTMENT = "discipline_commission"
RESETTLEMENT_BLOCKER = "resettlement_unconfirmed"


def first_answer_days() -> int:
    """Working days a department has to answer (catalogue setting, default 5)."""
    return catalogue_setting("first_answer_working_days", DEFAULT_FIRST_ANSWER_DAYS)


def closure_days() -> int:
    """Working days from intake to the closure target (catalogue setting)."""
    return catalogue_setting("closure_target_working_days", DEFAULT_CLOSURE_DAYS)


def notice_days() -> int:
    """Minimum working days of a public notice (catalogue setting, at least 15)."""
    return max(DEFAULT_NOTICE_DAYS, catalogue_setting("public_notice_working_days", 15))


def review_days() -> int:
    """Working days a review (复查) has, from the resident's 不满意 (policies/settings.yml)."""
    return catalogue_setting("review_days", DEFAULT_REVIEW_DAYS)


def actor_of(user: StaffUser) -> str:
    """How a staff member appears in the audit trail."""
    return f"staff:{user.username}"


# ---------------------------------------------------------------- reading


@dataclass
class PetitionRow:
    """One line of the petition list."""

    petition: Petition
    next_due: date | None
    overdue: bool
    project_name: str | None


def _visibility(user: StaffUser) -> ColumnElement[bool] | None:
    if roles.can(user, "petition.read_all"):
        return None
    if user.role != "officer":
        # Maintainers see masked inbox text only, never a petition.
        raise AppError(403, "forbidden", "您的角色没有这项权限。")
    return exists().where(
        PetitionAssignment.petition_id == Petition.id,
        PetitionAssignment.department == (user.department or ""),
    )


def _visible(stmt: Select[Any], user: StaffUser) -> Select[Any]:
    condition = _visibility(user)
    return stmt if condition is None else stmt.where(condition)


def overdue_condition(today: date) -> ColumnElement[bool]:
    """SQL: the petition is open and its next deadline has passed."""
    return and_(PetitionDue.rank == 0, PetitionDue.next_due < today)


def list_petitions(
    *,
    db: Session,
    user: StaffUser,
    status: str | None = None,
    department: str | None = None,
    overdue_only: bool = False,
    q: str | None = None,
    page: int = 1,
    per_page: int = 50,
    today: date | None = None,
) -> tuple[list[PetitionRow], int]:
    """Petitions the user may see: open ones by nearest deadline (so overdue first), then the
    closed and transferred ones, newest first. Served from the petition_due index."""
    today = today or today_shanghai()
    conditions: list[ColumnElement[bool]] = []
    needs_petition = False
    visibility = _visibility(user)
    if visibility is not None:
        conditions.append(visibility)
        needs_petition = True
    if status == "open":
        conditions.append(PetitionDue.rank == 0)
    elif status:
        conditions.append(Petition.status == status)
        needs_petition = True
    if department:
        conditions.append(
            exists().where(
                PetitionAssignment.petition_id == Petition.id,
                PetitionAssignment.department == department,
            )
        )
        needs_petition = True
    if overdue_only:
        conditions.append(overdue_condition(today))
    if q and q.strip():
        conditions.append(search_condition(db, q))
        needs_petition = True

    count_stmt = select(func.count()).select_from(PetitionDue)
    if needs_petition:
        count_stmt = count_stmt.join(Petition, Petition.id == PetitionDue.petition_id)
    total = db.scalar(count_stmt.where(*conditions)) or 0

    stmt = (
        select(Petition, PetitionDue.next_due, Project.name)
        .select_from(PetitionDue)
        .join(Petition, Petition.id == PetitionDue.petition_id)
        .outerjoin(Project, Project.id == Petition.project_id)
        .where(*conditions)
        .order_by(
            PetitionDue.rank,
            PetitionDue.next_due.asc().nulls_last(),
            PetitionDue.petition_id,
        )
        .limit(per_page)
        .offset(max(page - 1, 0) * per_page)
        .options(selectinload(Petition.assignments))
    )
    rows = []
    for petition, due, project_name in db.execute(stmt).all():
        is_over = workflow.is_open(petition.status) and due is not None and due < today
        rows.append(PetitionRow(petition, due, is_over, project_name))
    return rows, total


def phone_digits(text: str) -> str | None:
    """The digits of a phone number as staff type it (全角, spaces, dashes, +86 removed), or
    None when the text is not a phone number or a part of one (4+ digits)."""
    value = re.sub(r"[\s\-()（）]", "", unicodedata.normalize("NFKC", text))
    if value.startswith("+86"):
        value = value[3:]
    elif value.startswith("0086"):
        value = value[4:]
    return value if value.isdigit() and len(value) >= 4 else None


def search_condition(db: Session, q: str) -> ColumnElement[bool]:
    """SQL for the search box: any part of the petition number, the resident's name, the phone
    (normalised), the address or the project's name."""
    term = unicodedata.normalize("NFKC", q).strip()
    # Every branch is on the petition row — the projects are looked up first (a few thousand
    # rows at most), so on PostgreSQL the trigram indexes of migration 0002 and the project_id
    # index answer the OR as one bitmap, without a scan of the petitions.
    projects = list(
        db.scalars(
            select(Project.id).where(Project.name.contains(term, autoescape=True)).limit(1000)
        )
    )
    clauses: list[ColumnElement[bool]] = [
        Petition.number.contains(term.upper(), autoescape=True),
        Petition.person_name.contains(term, autoescape=True),
        Petition.address.contains(term, autoescape=True),
    ]
    if projects:
        clauses.append(Petition.project_id.in_(projects))
    digits = phone_digits(term)
    if digits:
        clauses.append(Petition.phone.contains(digits, autoescape=True))
    return or_(*clauses)


def refresh_due(*, db: Session, petition: Petition) -> PetitionDue:
    """Recompute the petition's next deadline row after a change."""
    pending = [a.answer_due for a in petition.assignments if a.answer is None]
    rank, due = compute_due(petition.status, petition.answer_due, petition.closure_due, pending)
    row = db.get(PetitionDue, petition.id)
    if row is None:
        row = PetitionDue(petition_id=petition.id, rank=rank, next_due=due)
        db.add(row)
    else:
        row.rank, row.next_due = rank, due
    return row


def list_open_assignments(
    *, db: Session, department: str, today: date | None = None, limit: int = 100
) -> list[tuple[PetitionAssignment, Petition, bool]]:
    """A department's unanswered assignments on open petitions, due first (officer landing)."""
    today = today or today_shanghai()
    stmt = (
        select(PetitionAssignment, Petition)
        .join(Petition, Petition.id == PetitionAssignment.petition_id)
        .where(
            PetitionAssignment.department == department,
            PetitionAssignment.answer.is_(None),
            Petition.status.in_(OPEN_STATES),
        )
        .order_by(PetitionAssignment.answer_due, Petition.id)
        .limit(limit)
    )
    return [(a, p, a.answer_due < today) for a, p in db.execute(stmt).all()]


def _parse_ref(ref: str | int) -> tuple[str, Any]:
    text = str(ref).strip()
    if text.isdigit():
        return "id", int(text)
    return "number", text.upper()


def get_for(*, db: Session, user: StaffUser, ref: str | int) -> Petition:
    """A petition by id or number that the user may see; 404 otherwise (no hint it exists)."""
    kind, value = _parse_ref(ref)
    column = Petition.id if kind == "id" else Petition.number
    stmt = _visible(select(Petition).where(column == value), user).options(
        selectinload(Petition.assignments)
    )
    petition: Petition | None = db.scalar(stmt)
    if petition is None:
        raise AppError(404, "not_found", NOT_FOUND_MESSAGE)
    return petition


def is_overdue(petition: Petition, today: date | None = None) -> bool:
    """True when an open petition has passed an answer deadline or its closure target."""
    today = today or today_shanghai()
    if not workflow.is_open(petition.status):
        return False
    dues = [a.answer_due for a in petition.assignments if a.answer is None]
    if petition.status == "accepted":
        dues.append(petition.answer_due)
    if petition.closure_due:
        dues.append(petition.closure_due)
    return any(d < today for d in dues)


def notes(*, db: Session, petition: Petition) -> Sequence[PetitionNote]:
    """Staff notes of a petition, oldest first."""
    stmt = select(PetitionNote).where(PetitionNote.petition_id == petition.id)
    return db.scalars(stmt.order_by(PetitionNote.id)).all()


def notice(*, db: Session, petition: Petition) -> PetitionNotice | None:
    """The petition's public notice, if one was started."""
    return db.get(PetitionNotice, petition.id)


def audit_trail(*, db: Session, petition: Petition) -> Sequence[AuditLog]:
    """The petition's audit rows, oldest first."""
    return audit.list_for(db=db, entity_type="petition", entity_id=petition.number)


def snapshot(petition: Petition) -> dict[str, Any]:
    """The audited fields of a petition (no phone, no name)."""
    return {
        "status": petition.status,
        "departments": [a.department for a in petition.assignments],
        "closure_due": petition.closure_due,
        "outcome": petition.outcome,
        "satisfaction": petition.satisfaction,
        "satisfaction_source": petition.satisfaction_source,
        "version": petition.version,
    }


# ---------------------------------------------------------------- changing


def _check_version(petition: Petition, version: int | None) -> None:
    if version is None:
        raise AppError(422, "version_required", "缺少版本号，请刷新页面后重试。")
    if petition.version != version:
        raise AppError(
            409,
            "version_conflict",
            "这件信访刚被其他人修改过，您的修改没有保存。请刷新页面，查看最新情况后再操作。",
            {"current_version": petition.version},
        )


def _save(db: Session, petition: Petition) -> None:
    """Flush the change; a concurrent update that won first becomes a Chinese 409."""
    petition.updated_at = utcnow()
    try:
        with db.no_autoflush:
            refresh_due(db=db, petition=petition)
        db.flush()
    except StaleDataError as exc:
        raise AppError(
            409,
            "version_conflict",
            "这件信访刚被其他人修改过，您的修改没有保存。请刷新页面，查看最新情况后再操作。",
        ) from exc


def _require_action(user: StaffUser, petition: Petition, action: str) -> str:
    target = workflow.target_of(petition.status, action)
    roles.require(user, workflow.ACTIONS[action].permission)
    return target


def _waiting_for(petition: Petition) -> list[str]:
    return [a.department for a in petition.assignments if a.answer is None]


def refusal(
    *, db: Session, petition: Petition, action: str, today: date | None = None
) -> AppError | None:
    """Why `action` would be refused on this petition now, whatever is typed (None: it can
    succeed). The moves themselves raise the same errors, so the console only offers buttons
    that work, and no path — 督办 or 转办 included — closes a petition while its notice runs."""
    if not workflow.is_legal(petition.status, action):
        try:
            workflow.target_of(petition.status, action)
        except AppError as exc:
            return exc
    today = today or today_shanghai()
    if action == "verify":
        if not petition.assignments:
            return AppError(409, "no_assignment", "还没有分派部门，不能开始核实。")
        waiting = _waiting_for(petition)
        if waiting:
            names = "、".join(department_name(c) for c in waiting)
            return AppError(
                409, "answers_missing", f"还在等 {names} 的书面答复，收齐后才能开始核实。"
            )
    elif action == "start_notice":
        if is_resettlement_case(db, petition) and db.get(PetitionResettlement, petition.id) is None:
            return AppError(
                409,
                "resettlement_unconfirmed",
                "这是拆迁回迁类信访：公示前须由征收办出具回迁确认书，请先登记确认书的日期和文号。",
            )
    elif action == "close":
        if unsettled_objections(db, petition):
            return AppError(
                409,
                "objection_open",
                "公示期间收到异议：不能按公示办结，请转办法院，登记法院文书、恢复办理后再办结。",
            )
        row = db.get(PetitionNotice, petition.id)
        if row is not None and today < row.earliest_end:
            return AppError(
                409,
                "notice_running",
                f"公示期不少于{notice_days()}个工作日，{row.earliest_end:%Y年%m月%d日}起才能办结。",
                {"notice_earliest_end": row.earliest_end.isoformat()},
            )
        waiting = _waiting_for(petition) if petition.status == "review" else []
        if waiting:
            names = "、".join(department_name(c) for c in waiting)
            return AppError(409, "answers_missing", f"复查还在等 {names} 的书面答复。")
    elif action == "assign":
        assigned = {a.department for a in petition.assignments}
        if set(departments()) <= assigned:
            return AppError(409, "already_assigned", "所有部门都已经分派过了。")
    return None


def unsettled_objections(db: Session, petition: Petition) -> list[PetitionObjection]:
    """Objections to the notice not yet settled by a court document."""
    stmt = select(PetitionObjection).where(
        PetitionObjection.petition_id == petition.id,
        PetitionObjection.status.in_((OBJECTION_OPEN, OBJECTION_TRANSFERRED)),
    )
    return list(db.scalars(stmt.order_by(PetitionObjection.id)))


def is_resettlement_case(db: Session, petition: Petition) -> bool:
    """A resettlement case (拆迁回迁): the bot explained the blocker, or the project has it open."""
    if RESETTLEMENT_BLOCKER in (petition.blockers or []):
        return True
    return any(
        RESETTLEMENT_BLOCKER in s["blockers"]
        for s in suggested_departments(db=db, petition=petition)
    )


def _check_refusal(db: Session, petition: Petition, action: str, today: date | None) -> None:
    error = refusal(db=db, petition=petition, action=action, today=today)
    if error is not None:
        raise error


def _add_note(db: Session, user: StaffUser, petition: Petition, text: str) -> PetitionNote:
    note = PetitionNote(petition_id=petition.id, author=user.username, text=text)
    db.add(note)
    return note


def assign(
    *,
    db: Session,
    user: StaffUser,
    petition: Petition,
    departments_: Sequence[str],
    version: int | None,
    today: date | None = None,
) -> Petition:
    """Send the petition to one or more departments, each with its own answer deadline."""
    target = _require_action(user, petition, "assign")
    _check_version(petition, version)
    known = departments()
    codes = list(dict.fromkeys(c.strip() for c in departments_ if c and c.strip()))
    if not codes:
        raise AppError(422, "departments_required", "请至少选择一个承办部门。")
    unknown = [c for c in codes if c not in known]
    if unknown:
        raise AppError(422, "unknown_department", "部门目录里没有：" + "、".join(unknown))
    already = {a.department for a in petition.assignments}
    new = [c for c in codes if c not in already]
    if not new:
        raise AppError(409, "already_assigned", "所选部门都已经分派过了。")
    today = today or today_shanghai()
    before = snapshot(petition)
    due, provisional = calendar().add_working_days(today, first_answer_days())
    for code in new:
        petition.assignments.append(
            PetitionAssignment(department=code, answer_due=due, answer_due_provisional=provisional)
        )
    if petition.closure_due is None:
        petition.closure_due, _ = calendar().add_working_days(petition.intake_date, closure_days())
    petition.status = target
    _save(db, petition)
    messages.tell(db, petition, "state", messages.assigned(petition, new, due))
    after = snapshot(petition) | {"answer_due": {c: due for c in new}}
    audit.record(
        db=db,
        actor=actor_of(user),
        action="petition.assign",
        entity_type="petition",
        entity_id=petition.number,
        before=before,
        after=after,
    )
    return petition


def transition(
    *,
    db: Session,
    user: StaffUser,
    petition: Petition,
    action: str,
    version: int | None,
    note: str = "",
    today: date | None = None,
) -> Petition:
    """A state move other than assign/close: verify, start_notice, supervise, transfer."""
    if action in ("assign", "close"):
        raise AppError(422, "use_specific_endpoint", "分派和办结请使用各自的表单。")
    target = _require_action(user, petition, action)
    _check_version(petition, version)
    today = today or today_shanghai()
    note = (note or "").strip()
    extra: dict[str, Any] = {}
    notice_end: date | None = None
    _check_refusal(db, petition, action, today)
    if action == "start_notice":
        end, provisional = calendar().add_working_days(today, notice_days())
        row = db.get(PetitionNotice, petition.id)
        if row is None:
            db.add(
                PetitionNotice(
                    petition_id=petition.id,
                    started_on=today,
                    earliest_end=end,
                    provisional=provisional,
                )
            )
        else:
            row.started_on, row.earliest_end, row.provisional = today, end, provisional
        extra = {"notice_start": today, "notice_earliest_end": end}
        notice_end = end
    elif action == "transfer" and not note:
        raise AppError(422, "reason_required", "转办请写明转往哪个机关以及原因。")
    if note:
        _add_note(db, user, petition, f"【{workflow.ACTIONS[action].label}】{note}")
    return _move(
        db,
        petition,
        action=action,
        target=target,
        actor=actor_of(user),
        note=note,
        extra=extra,
        notice_end=notice_end,
        today=today,
    )


def _move(
    db: Session,
    petition: Petition,
    *,
    action: str,
    target: str,
    actor: str,
    note: str = "",
    extra: dict[str, Any] | None = None,
    notice_end: date | None = None,
    today: date | None = None,
) -> Petition:
    """The common end of a state move (a staff member's or the deadline job's): 督办 of an
    overdue department reaches 纪委监委, 转办 takes open objections to the court, the new state
    saved (version checked by the mapper), the resident told, the audit row in the same
    transaction."""
    today = today or today_shanghai()
    before = snapshot(petition)
    extra = dict(extra or {})
    text = messages.moved(petition, action, notice_end=notice_end)
    if action == "supervise":
        extra |= _supervise_overdue(petition, today)
    if action == "transfer":
        sent = [o for o in unsettled_objections(db, petition) if o.status == OBJECTION_OPEN]
        for objection in sent:
            objection.status = OBJECTION_TRANSFERRED
        if sent:
            extra["objections_to_court"] = [o.id for o in sent]
            text = (
                f"您的信访 {petition.number} 公示期间收到异议，已转法院依法处理，"
                "法院出具文书后恢复办理，我们会再告诉您。"
            )
    petition.status = target
    _save(db, petition)
    messages.tell(db, petition, "state", text)
    audit.record(
        db=db,
        actor=actor,
        action="petition.transition",
        entity_type="petition",
        entity_id=petition.number,
        before=before,
        after=snapshot(petition) | {"action": action, "note": note or None} | extra,
    )
    return petition


def _supervise_overdue(petition: Petition, today: date) -> dict[str, Any]:
    """督办 of a petition a department is overdue on: the supervision group (纪委监委) gets it
    too, with its own answer deadline; returns what the audit row records."""
    late = [a.department for a in petition.assignments if a.answer is None and a.answer_due < today]
    if not late or SUPERVISION_DEPARTMENT not in departments():
        return {}
    if all(a.department != SUPERVISION_DEPARTMENT for a in petition.assignments):
        due, provisional = calendar().add_working_days(today, first_answer_days())
        petition.assignments.append(
            PetitionAssignment(
                department=SUPERVISION_DEPARTMENT,
                answer_due=due,
                answer_due_provisional=provisional,
            )
        )
    return {"overdue_departments": late, "supervision": SUPERVISION_DEPARTMENT}


SYSTEM_DEADLINES = "system:deadlines"


def supervise_overdue(*, db: Session, petition: Petition, today: date) -> bool:
    """督办 raised by the deadline job: an open, overdue petition not yet supervised moves to
    `supervised` through the same path as a supervisor's click. False when nothing was done."""
    if petition.status == "supervised" or not workflow.is_legal(petition.status, "supervise"):
        return False
    if not is_overdue(petition, today):
        return False
    if petition.status == "public_notice":
        # The notice's minimum period is the law's wait, not a department's delay: raising it
        # to 督办 mid-notice would only open a path to closing before the period ends.
        row = db.get(PetitionNotice, petition.id)
        if row is not None and today < row.earliest_end:
            return False
    _move(
        db,
        petition,
        action="supervise",
        target=workflow.target_of(petition.status, "supervise"),
        actor=SYSTEM_DEADLINES,
        note="超期自动督办",
        today=today,
    )
    return True


def close(
    *,
    db: Session,
    user: StaffUser,
    petition: Petition,
    outcome: str,
    satisfaction: str | None,
    version: int | None,
    today: date | None = None,
) -> Petition:
    """Close the case with its outcome (销号). `satisfaction` is given only when a clerk reached
    the resident by phone; otherwise the resident is asked in the conversation."""
    target = _require_action(user, petition, "close")
    _check_version(petition, version)
    today = today or today_shanghai()
    _check_refusal(db, petition, "close", today)
    outcome = (outcome or "").strip()
    if not outcome:
        raise AppError(422, "outcome_required", "办结前请填写办理结果。")
    satisfaction = satisfaction or None
    if satisfaction is not None and satisfaction not in workflow.SATISFACTION_LABELS:
        labels = "、".join(workflow.SATISFACTION_LABELS.values())
        raise AppError(422, "satisfaction_invalid", f"群众评价只能是：{labels}。")
    before = snapshot(petition)
    petition.status = target
    petition.outcome = outcome
    if satisfaction is not None:
        petition.satisfaction = satisfaction
        petition.satisfaction_source = "clerk_phone"
        petition.satisfaction_reason = None
    else:
        # A new outcome: the resident's earlier answer was about the previous one.
        petition.satisfaction = petition.satisfaction_source = petition.satisfaction_reason = None
    petition.closed_at = utcnow()
    _save(db, petition)
    text = messages.closed(petition)
    # Asked in the conversation unless a clerk already heard the answer on the phone.
    ask = satisfaction in (None, "unreached")
    if not ask:
        text = text.split("\n")[0]
    messages.tell(db, petition, "closed" if ask else "state", text)
    audit.record(
        db=db,
        actor=actor_of(user),
        action="petition.close",
        entity_type="petition",
        entity_id=petition.number,
        before=before,
        after=snapshot(petition),
    )
    return petition


def resident_feedback(
    *,
    db: Session,
    petition: Petition,
    satisfaction: str,
    reason: str | None,
    actor: str,
    today: date | None = None,
) -> Petition:
    """The resident's own answer after 办结; 不满意 reopens the petition as 复查中 (review)."""
    if petition.status != "closed":
        raise AppError(409, "not_closed", "这件信访还没有办结，办结后再请您评价。")
    if satisfaction not in ("satisfied", "basically_satisfied", "unsatisfied"):
        raise AppError(422, "satisfaction_invalid", "请回复：满意、基本满意 或 不满意。")
    today = today or today_shanghai()
    before = snapshot(petition)
    petition.satisfaction = satisfaction
    petition.satisfaction_source = "resident"
    petition.satisfaction_reason = (reason or "").strip()[:500] or None
    if satisfaction == "unsatisfied":
        petition.status = "review"
        petition.review_count = (petition.review_count or 0) + 1
        petition.review_due, _ = calendar().add_working_days(today, review_days())
        petition.closure_due = petition.review_due
    _save(db, petition)
    notify.reply_received(db, petition_id=petition.id)
    if petition.status == "review":
        messages.tell(db, petition, "review", messages.reopened(petition))
    audit.record(
        db=db,
        actor=actor,
        action="petition.feedback",
        entity_type="petition",
        entity_id=petition.number,
        before=before,
        after=snapshot(petition) | {"review_due": petition.review_due},
    )
    return petition


def answer(
    *,
    db: Session,
    user: StaffUser,
    petition: Petition,
    text: str,
    version: int | None,
    department: str | None = None,
    publish: bool = False,
    resident_text: str | None = None,
) -> PetitionAssignment:
    """Record a department's written answer (officers: only their own department's). It counts
    for the workflow at once; residents see `resident_text` (default: the answer) only once it is
    approved — at once with `publish`, else by a clerk."""
    roles.require(user, "petition.answer")
    if user.role == "officer":
        if department and department != user.department:
            raise AppError(403, "forbidden", "只能答复本部门承办的信访。")
        department = user.department
    if petition.status not in ("assigned", "verifying", "supervised", "review"):
        label = STATUS_LABELS.get(petition.status, petition.status)
        raise AppError(409, "illegal_transition", f"“{label}”状态的信访不能再录入部门答复。")
    assignment = next((a for a in petition.assignments if a.department == department), None)
    if assignment is None:
        raise AppError(404, "not_assigned", "这件信访没有分派给该部门。")
    _check_version(petition, version)
    text = (text or "").strip()
    if not text:
        raise AppError(422, "answer_required", "答复内容不能为空。")
    shown = (resident_text or "").strip() or text
    before = {
        "department": assignment.department,
        "answer": assignment.answer,
        "resident_text": assignment.resident_text,
    }
    assignment.answer = text
    assignment.answered_at = utcnow()
    assignment.answered_by = user.username
    assignment.resident_text = shown
    assignment.approved_at = assignment.approved_by = None
    if publish:
        _publish(db, user, petition, assignment)
    _save(db, petition)
    audit.record(
        db=db,
        actor=actor_of(user),
        action="petition.answer",
        entity_type="petition",
        entity_id=petition.number,
        before=before,
        after={
            "department": assignment.department,
            "answer": text,
            "resident_text": shown,
            "published": publish,
            "version": petition.version,
        },
    )
    return assignment


def _publish(
    db: Session, user: StaffUser, petition: Petition, assignment: PetitionAssignment
) -> None:
    assignment.approved_at = utcnow()
    assignment.approved_by = user.username
    messages.tell(
        db,
        petition,
        "answer",
        messages.answered(petition, assignment.department, assignment.resident_text or ""),
    )


def approve_answer(
    *,
    db: Session,
    user: StaffUser,
    petition: Petition,
    department: str,
    version: int | None,
    resident_text: str | None = None,
) -> PetitionAssignment:
    """A clerk approves what the resident sees of an answer (editing it if needed); it is sent."""
    roles.require(user, "petition.approve")
    assignment = next((a for a in petition.assignments if a.department == department), None)
    if assignment is None:
        raise AppError(404, "not_assigned", "这件信访没有分派给该部门。")
    if assignment.answer is None:
        raise AppError(409, "no_answer", "该部门还没有答复，没有可审核的内容。")
    if assignment.approved_at is not None:
        raise AppError(409, "already_published", "这条答复已经发给居民了。")
    _check_version(petition, version)
    before = {"department": department, "resident_text": assignment.resident_text}
    text = (resident_text or "").strip()
    if text:
        assignment.resident_text = text
    _publish(db, user, petition, assignment)
    _save(db, petition)
    audit.record(
        db=db,
        actor=actor_of(user),
        action="petition.approve_answer",
        entity_type="petition",
        entity_id=petition.number,
        before=before,
        after={"department": department, "resident_text": assignment.resident_text},
    )
    return assignment


def add_note(*, db: Session, user: StaffUser, petition: Petition, text: str) -> PetitionNote:
    """Append a staff note (append-only, so it does not need the version)."""
    roles.require(user, "petition.note")
    text = (text or "").strip()
    if not text:
        raise AppError(422, "note_required", "备注内容不能为空。")
    if len(text) > 2000:
        raise AppError(422, "note_too_long", "备注最多 2000 字。")
    note = _add_note(db, user, petition, text)
    db.flush()
    audit.record(
        db=db,
        actor=actor_of(user),
        action="petition.note",
        entity_type="petition",
        entity_id=petition.number,
        after={"note_id": note.id, "text": text},
    )
    return note


def allowed_actions(
    user: StaffUser, petition: Petition, *, db: Session, today: date | None = None
) -> list[workflow.Action]:
    """The moves this user may make on this petition now and that can succeed (the buttons)."""
    return [
        a
        for a in workflow.actions_from(petition.status)
        if roles.can(user, a.permission)
        and refusal(db=db, petition=petition, action=a.code, today=today) is None
    ]


def unavailable_actions(
    user: StaffUser, petition: Petition, *, db: Session, today: date | None = None
) -> list[dict[str, str]]:
    """The moves of this state the user's role allows but that would be refused now, with why
    (e.g. 办结 while the notice runs), so the page says what to wait for."""
    out = []
    for a in workflow.actions_from(petition.status):
        if not roles.can(user, a.permission):
            continue
        error = refusal(db=db, petition=petition, action=a.code, today=today)
        if error is not None:
            out.append({"code": a.code, "label": a.label, "reason": error.message})
    return out


def suggested_departments(*, db: Session, petition: Petition) -> list[dict[str, Any]]:
    """Departments for the project's open blockers: the ledger's 责任单位 of each blocker where
    it names one, else the catalogue's default; without a project, the blockers the bot
    explained. `[{code, name, blockers: [code…]}]`, in blocker order."""
    known = departments()
    if petition.project_id is not None:
        rows = db.scalars(
            select(Blocker)
            .where(Blocker.project_id == petition.project_id, Blocker.status == BLOCKER_OPEN)
            .order_by(Blocker.id)
        ).all()
        pairs: list[tuple[str, str | None]] = [(b.code, b.department) for b in rows]
    else:
        pairs = [(code, None) for code in petition.blockers or []]
    groups: dict[str, list[str]] = {}
    for code, ledger_department in pairs:
        department = ledger_department if ledger_department in known else None
        department = department or blocker_default_department(code)
        if department in known and code not in groups.setdefault(department, []):
            groups[department].append(code)
    return [{"code": c, "name": known[c], "blockers": codes} for c, codes in groups.items()]


def detail(*, db: Session, user: StaffUser, petition: Petition) -> dict[str, Any]:
    """The petition page's data; the phone is masked unless the role may call residents."""
    from app.core.security import mask_phone

    today = today_shanghai()
    project = db.get(Project, petition.project_id) if petition.project_id else None
    show_phone = roles.can(user, "petition.phone")
    row = notice(db=db, petition=petition)
    assignments = petition.assignments
    return {
        "id": petition.id,
        "number": petition.number,
        "status": petition.status,
        "status_label": STATUS_LABELS.get(petition.status, petition.status),
        "person_name": petition.person_name,
        "phone": petition.phone if show_phone else mask_phone(petition.phone),
        "phone_masked": not show_phone,
        "address": petition.address,
        "project_code": project.code if project else None,
        "project_name": project.name if project else None,
        "description": petition.description,
        "channel": petition.channel,
        "intake_date": petition.intake_date,
        "answer_due": petition.answer_due,
        "closure_due": petition.closure_due,
        "notice_earliest_end": row.earliest_end if row else None,
        "overdue": is_overdue(petition, today),
        "outcome": petition.outcome,
        "satisfaction": petition.satisfaction,
        "satisfaction_source": petition.satisfaction_source,
        "satisfaction_reason": petition.satisfaction_reason,
        "review_due": petition.review_due,
        "blockers": [
            {"code": c, "name": blocker_names().get(c, c)} for c in petition.blockers or []
        ],
        "version": petition.version,
        "assignments": [
            {
                "department": a.department,
                "department_name": department_name(a.department),
                "assigned_at": a.assigned_at,
                "answer_due": a.answer_due,
                "answer_due_provisional": a.answer_due_provisional,
                "answer": a.answer,
                "answered_at": a.answered_at,
                "answered_by": a.answered_by,
                "resident_text": a.resident_text,
                "approved_at": a.approved_at,
                "approved_by": a.approved_by,
                "overdue": a.answer is None
                and workflow.is_open(petition.status)
                and a.answer_due < today,
            }
            for a in assignments
        ],
        "notes": [
            {"author": n.author, "text": n.text, "created_at": n.created_at}
            for n in notes(db=db, petition=petition)
        ],
        "allowed_actions": [a.code for a in allowed_actions(user, petition, db=db, today=today)],
        "unavailable_actions": unavailable_actions(user, petition, db=db, today=today),
        "suggested_departments": suggested_departments(db=db, petition=petition),
        "conversation": conversation_of(db, petition),
        "conversation_key": _conversation_key(db, petition),
    }


def _aware(moment: datetime) -> datetime:
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


def conversation_of(db: Session, petition: Petition) -> list[dict[str, Any]]:
    """The conversation that led to the petition, then what was said with a person since."""
    turns = [
        {"at": m.at, "sender": m.sender, "text": m.text}
        for m in petition_service.conversation(db=db, petition=petition)
    ]
    if petition.sender_id:
        since = _aware(petition.created_at)
        turns += [
            {"at": m.at, "sender": m.sender, "text": m.text}
            for m in notify.conversation_messages(db, petition.sender_id)
            if _aware(m.at) >= since
        ]
    return sorted(turns, key=lambda t: _aware(t["at"]))


def _conversation_key(db: Session, petition: Petition) -> str | None:
    contact = notify.get_contact(db, petition.sender_id) if petition.sender_id else None
    return notify.conversation_key(contact) if contact else None
