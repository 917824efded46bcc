"""The published procedure's steps around the state machine, each audited with the petition:

- 异议: an objection received during the public notice (who, what, when). While it is open the
  petition cannot close through the notice; it is transferred (转办) to the court with the
  reason, the resident is told, and it resumes (back to 公示中, the notice dates kept) once the
  court's document is recorded.
- 回迁确认书: for resettlement cases (blocker `resettlement_unconfirmed`), the 征收办's
  confirmation (date, document number) is recorded before the notice can start.
- 专题会议: a case flagged for the office meeting (一般情形 / 特殊情形) and the decision taken.

The refusals that depend on these records live in staff_service.refusal(), so the buttons and
the moves agree.
"""

from __future__ import annotations

from datetime import date
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from app.audit import service as audit
from app.core.errors import AppError
from app.core.workdays import today_shanghai
from app.petition import messages, workflow
from app.petition import staff_service as ss
from app.petition.models import Petition
from app.petition.procedure_models import (
    MEETING_KINDS,
    OBJECTION_DECIDED,
    OBJECTION_LABELS,
    OBJECTION_TRANSFERRED,
    PetitionMeeting,
    PetitionObjection,
    PetitionResettlement,
)
from app.staff import roles
from app.staff.models import StaffUser


def _text(value: str | None, what: str, limit: int = 2000) -> str:
    value = (value or "").strip()
    if not value:
        raise AppError(422, "field_required", f"请填写{what}。")
    if len(value) > limit:
        raise AppError(422, "field_too_long", f"{what}最多 {limit} 字。")
    return value


def _record(db: Session, user: StaffUser, petition: Petition, action: str, **after: Any) -> None:
    audit.record(
        db=db,
        actor=ss.actor_of(user),
        action=action,
        entity_type="petition",
        entity_id=petition.number,
        after=after | {"version": petition.version},
    )


def objections(*, db: Session, petition: Petition) -> list[PetitionObjection]:
    """The petition's objections, oldest first."""
    stmt = select(PetitionObjection).where(PetitionObjection.petition_id == petition.id)
    return list(db.scalars(stmt.order_by(PetitionObjection.id)))


def record_objection(
    *,
    db: Session,
    user: StaffUser,
    petition: Petition,
    raised_by: str,
    content: str,
    received_on: date | None,
    version: int | None,
    today: date | None = None,
) -> PetitionObjection:
    """An objection received during the notice (公示中 only)."""
    roles.require(user, "petition.transition")
    ss._check_version(petition, version)
    if petition.status != "public_notice":
        raise AppError(409, "not_in_notice", "只有公示中的信访才能登记异议。")
    today = today or today_shanghai()
    received = received_on or today
    row = ss.notice(db=db, petition=petition)
    if received > today or (row is not None and received < row.started_on):
        raise AppError(422, "bad_date", "收到异议的日期应在公示开始之后、今天之前。")
    objection = PetitionObjection(
        petition_id=petition.id,
        raised_by=_text(raised_by, "提出异议的人", 128),
        content=_text(content, "异议内容"),
        received_on=received,
        recorded_by=user.username,
    )
    db.add(objection)
    ss._save(db, petition)  # a new version: pages open elsewhere see the objection first
    _record(
        db,
        user,
        petition,
        "petition.objection",
        raised_by=objection.raised_by,
        content=objection.content,
        received_on=received,
    )
    return objection


def record_court_document(
    *,
    db: Session,
    user: StaffUser,
    petition: Petition,
    objection_id: int,
    document: str,
    document_on: date | None,
    summary: str,
    version: int | None,
    today: date | None = None,
) -> PetitionObjection:
    """The court's document on a transferred objection; the petition resumes (公示中 again,
    the notice dates kept) once no objection is left waiting for the court."""
    roles.require(user, "petition.transition")
    ss._check_version(petition, version)
    objection = next(
        (o for o in objections(db=db, petition=petition) if o.id == objection_id), None
    )
    if objection is None:
        raise AppError(404, "not_found", "没有找到这条异议。")
    if objection.status != OBJECTION_TRANSFERRED or petition.status != "transferred":
        raise AppError(409, "not_transferred", "异议转办法院后，才能登记法院文书。")
    today = today or today_shanghai()
    objection.court_document = _text(document, "法院文书文号", 128)
    objection.court_document_on = document_on or today
    objection.court_summary = _text(summary, "文书要点")
    objection.status = OBJECTION_DECIDED
    before = ss.snapshot(petition)
    waiting = [o for o in objections(db=db, petition=petition) if o.status != OBJECTION_DECIDED]
    if not waiting:
        petition.status = "public_notice"
    ss._save(db, petition)
    if petition.status == "public_notice":
        messages.tell(
            db,
            petition,
            "state",
            f"您的信访 {petition.number} 涉及的异议，法院已出具文书，现恢复办理，公示期满后办结。",
        )
    audit.record(
        db=db,
        actor=ss.actor_of(user),
        action="petition.court_document",
        entity_type="petition",
        entity_id=petition.number,
        before=before,
        after=ss.snapshot(petition)
        | {"court_document": objection.court_document, "document_on": objection.court_document_on},
    )
    return objection


# ---------------------------------------------------------------- resettlement


def is_resettlement_case(db: Session, petition: Petition) -> bool:
    """A resettlement case (拆迁回迁): the bot explained the blocker, or the project has it open."""
    return ss.is_resettlement_case(db, petition)


def resettlement(db: Session, petition: Petition) -> PetitionResettlement | None:
    """The recorded 回迁确认书, if any."""
    return db.get(PetitionResettlement, petition.id)


def record_resettlement(
    *,
    db: Session,
    user: StaffUser,
    petition: Petition,
    document_number: str,
    confirmed_on: date | None,
    version: int | None,
    today: date | None = None,
) -> PetitionResettlement:
    """The 征收办 confirmed the resettlement contract: its 确认书 (number, date)."""
    roles.require(user, "petition.answer")
    if user.role == "officer" and user.department != "expropriation_office":
        raise AppError(403, "forbidden", "回迁确认书由征收办出具。")
    ss._check_version(petition, version)
    if not workflow.is_open(petition.status):
        raise AppError(409, "not_open", "这件信访已经办结或转办。")
    today = today or today_shanghai()
    if confirmed_on is not None and confirmed_on > today:
        raise AppError(422, "bad_date", "确认书日期不能晚于今天。")
    row = resettlement(db, petition) or PetitionResettlement(petition_id=petition.id)
    row.document_number = _text(document_number, "确认书文号", 128)
    row.confirmed_on = confirmed_on or today
    row.recorded_by = user.username
    db.add(row)
    ss._save(db, petition)
    _record(
        db,
        user,
        petition,
        "petition.resettlement",
        document_number=row.document_number,
        confirmed_on=row.confirmed_on,
    )
    return row


# ---------------------------------------------------------------- office meeting


def meeting(db: Session, petition: Petition) -> PetitionMeeting | None:
    """The petition's office-meeting flag, if any."""
    return db.get(PetitionMeeting, petition.id)


def flag_meeting(
    *,
    db: Session,
    user: StaffUser,
    petition: Petition,
    kind: str,
    reason: str,
    version: int | None,
) -> PetitionMeeting:
    """Put the case on the office meeting's list (一般情形 / 特殊情形)."""
    roles.require(user, "petition.transition")
    ss._check_version(petition, version)
    if kind not in MEETING_KINDS:
        raise AppError(422, "meeting_kind", "请选择：一般情形 或 特殊情形。")
    if not workflow.is_open(petition.status):
        raise AppError(409, "not_open", "这件信访已经办结或转办。")
    row = meeting(db, petition)
    if row is not None and row.decision is None:
        raise AppError(409, "already_flagged", "这件信访已提交专题会议，等待会议决定。")
    row = row or PetitionMeeting(petition_id=petition.id)
    row.kind, row.reason, row.flagged_by = kind, _text(reason, "提交会议的理由"), user.username
    row.decision = row.decided_on = row.decided_by = None
    db.add(row)
    ss._save(db, petition)
    _record(db, user, petition, "petition.meeting", kind=kind, reason=row.reason)
    return row


def record_meeting_decision(
    *,
    db: Session,
    user: StaffUser,
    petition: Petition,
    decision: str,
    decided_on: date | None,
    version: int | None,
    today: date | None = None,
) -> PetitionMeeting:
    """The office meeting's decision on a flagged case."""
    roles.require(user, "petition.transition")
    ss._check_version(petition, version)
    row = meeting(db, petition)
    if row is None:
        raise AppError(409, "not_flagged", "这件信访没有提交专题会议。")
    if row.decision is not None:
        raise AppError(409, "already_decided", "会议决定已经登记。")
    today = today or today_shanghai()
    if decided_on is not None and decided_on > today:
        raise AppError(422, "bad_date", "会议日期不能晚于今天。")
    row.decision = _text(decision, "会议决定")
    row.decided_on, row.decided_by = decided_on or today, user.username
    ss._save(db, petition)
    _record(
        db,
        user,
        petition,
        "petition.meeting_decision",
        decision=row.decision,
        decided_on=row.decided_on,
    )
    return row


def detail(db: Session, petition: Petition) -> dict[str, Any]:
    """The procedure records for the petition page and the staff API."""
    settle = resettlement(db, petition)
    flagged = meeting(db, petition)
    return {
        "objections": [
            {
                "id": o.id,
                "raised_by": o.raised_by,
                "content": o.content,
                "received_on": o.received_on,
                "status": o.status,
                "status_label": OBJECTION_LABELS[o.status],
                "court_document": o.court_document,
                "court_document_on": o.court_document_on,
                "court_summary": o.court_summary,
            }
            for o in objections(db=db, petition=petition)
        ],
        "resettlement_case": is_resettlement_case(db, petition),
        "resettlement": (
            {"document_number": settle.document_number, "confirmed_on": settle.confirmed_on}
            if settle
            else None
        ),
        "meeting": (
            {
                "kind": flagged.kind,
                "kind_label": MEETING_KINDS[flagged.kind],
                "reason": flagged.reason,
                "decision": flagged.decision,
                "decided_on": flagged.decided_on,
            }
            if flagged
            else None
        ),
    }
