"""Staff JSON endpoints for petitions under /api/v1/staff (bearer token or console session)."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query

from app.audit import service as audit
from app.core.database import DbSession
from app.core.errors import AppError
from app.petition import procedure, staff_service
from app.petition.models import STATUS_LABELS
from app.petition.schemas import StaffPetitionDetail
from app.petition.staff_schemas import (
    AnswerBody,
    ApproveBody,
    AssignBody,
    AuditRead,
    CloseBody,
    CourtDocumentBody,
    MeetingBody,
    MeetingDecisionBody,
    NoteBody,
    ObjectionBody,
    PetitionList,
    PetitionListItem,
    ResettlementBody,
    TransitionBody,
)
from app.staff.auth import StaffDep

router = APIRouter(prefix="/staff", tags=["staff: petitions"])


@router.get("/petitions", response_model=PetitionList)
def list_petitions(
    db: DbSession,
    user: StaffDep,
    status: Annotated[str | None, Query(max_length=20)] = None,
    department: Annotated[str | None, Query(max_length=64)] = None,
    overdue: bool = False,
    q: Annotated[str | None, Query(max_length=64)] = None,
    page: Annotated[int, Query(ge=1, le=10_000)] = 1,
) -> PetitionList:
    """Petitions the caller may see, overdue first; officers see only their department's."""
    if status and status != "open" and status not in STATUS_LABELS:
        raise AppError(422, "bad_status", "没有这种状态。")
    rows, total = staff_service.list_petitions(
        db=db, user=user, status=status, department=department, overdue_only=overdue, q=q, page=page
    )
    items = [
        PetitionListItem(
            id=r.petition.id,
            number=r.petition.number,
            status=r.petition.status,
            status_label=r.petition.status_label,
            intake_date=r.petition.intake_date,
            next_due=r.next_due,
            overdue=r.overdue,
            project_name=r.project_name,
            address=r.petition.address,
            departments=[a.department for a in r.petition.assignments],
            version=r.petition.version,
        )
        for r in rows
    ]
    return PetitionList(total=total, page=page, items=items)


@router.get("/petitions/{ref}", response_model=StaffPetitionDetail)
def get_petition(ref: str, db: DbSession, user: StaffDep) -> StaffPetitionDetail:
    """One petition by id or number (404 when the caller may not see it)."""
    return _detail(db, user, ref)


@router.get("/petitions/{ref}/audit", response_model=list[AuditRead])
def get_audit(ref: str, db: DbSession, user: StaffDep) -> list[AuditRead]:
    """The petition's audit trail, oldest first (read-only)."""
    petition = staff_service.get_for(db=db, user=user, ref=ref)
    return [
        AuditRead(
            at=row.at,
            actor=row.actor,
            action=row.action,
            action_label=audit.action_label(row.action),
            before=row.before,
            after=row.after,
        )
        for row in staff_service.audit_trail(db=db, petition=petition)
    ]


def _detail(db: DbSession, user: StaffDep, ref: str) -> StaffPetitionDetail:
    petition = staff_service.get_for(db=db, user=user, ref=ref)
    data = staff_service.detail(db=db, user=user, petition=petition)
    return StaffPetitionDetail(**data, **procedure.detail(db, petition))


@router.post("/petitions/{ref}/assign", response_model=StaffPetitionDetail)
def assign(ref: str, body: AssignBody, db: DbSession, user: StaffDep) -> StaffPetitionDetail:
    """Send the petition to departments (each gets its own answer deadline)."""
    petition = staff_service.get_for(db=db, user=user, ref=ref)
    staff_service.assign(
        db=db, user=user, petition=petition, departments_=body.departments, version=body.version
    )
    return _detail(db, user, ref)


@router.post("/petitions/{ref}/transition", response_model=StaffPetitionDetail)
def transition(
    ref: str, body: TransitionBody, db: DbSession, user: StaffDep
) -> StaffPetitionDetail:
    """Move the petition: verify, start_notice, supervise or transfer."""
    petition = staff_service.get_for(db=db, user=user, ref=ref)
    staff_service.transition(
        db=db,
        user=user,
        petition=petition,
        action=body.action,
        version=body.version,
        note=body.note,
    )
    return _detail(db, user, ref)


@router.post("/petitions/{ref}/answer", response_model=StaffPetitionDetail)
def answer(ref: str, body: AnswerBody, db: DbSession, user: StaffDep) -> StaffPetitionDetail:
    """Record a department's written answer."""
    petition = staff_service.get_for(db=db, user=user, ref=ref)
    staff_service.answer(
        db=db,
        user=user,
        petition=petition,
        text=body.answer,
        version=body.version,
        department=body.department,
        publish=body.publish,
        resident_text=body.resident_text,
    )
    return _detail(db, user, ref)


@router.post("/petitions/{ref}/answers/{department}/approve", response_model=StaffPetitionDetail)
def approve_answer(
    ref: str, department: str, body: ApproveBody, db: DbSession, user: StaffDep
) -> StaffPetitionDetail:
    """Approve (and optionally edit) what the resident sees of a department's answer; it is sent
    to the resident."""
    petition = staff_service.get_for(db=db, user=user, ref=ref)
    staff_service.approve_answer(
        db=db,
        user=user,
        petition=petition,
        department=department,
        version=body.version,
        resident_text=body.resident_text,
    )
    return _detail(db, user, ref)


@router.post("/petitions/{ref}/notes", response_model=StaffPetitionDetail)
def add_note(ref: str, body: NoteBody, db: DbSession, user: StaffDep) -> StaffPetitionDetail:
    """Append a staff note."""
    petition = staff_service.get_for(db=db, user=user, ref=ref)
    staff_service.add_note(db=db, user=user, petition=petition, text=body.text)
    return _detail(db, user, ref)


@router.post("/petitions/{ref}/close", response_model=StaffPetitionDetail)
def close(ref: str, body: CloseBody, db: DbSession, user: StaffDep) -> StaffPetitionDetail:
    """Close the case with its outcome; `satisfaction` only when a clerk reached the resident by
    phone (otherwise the resident is asked in the conversation)."""
    petition = staff_service.get_for(db=db, user=user, ref=ref)
    staff_service.close(
        db=db,
        user=user,
        petition=petition,
        outcome=body.outcome,
        satisfaction=body.satisfaction,
        version=body.version,
    )
    return _detail(db, user, ref)


@router.get("/assignments")
def my_assignments(db: DbSession, user: StaffDep) -> list[dict[str, object]]:
    """An officer's open assignments, due first (others: 403, they use the petition list)."""
    if user.role != "officer" or not user.department:
        raise AppError(403, "forbidden", "只有部门承办人有待答复清单。")
    rows = staff_service.list_open_assignments(db=db, department=user.department)
    return [
        {
            "number": p.number,
            "status": p.status,
            "status_label": p.status_label,
            "answer_due": a.answer_due,
            "overdue": overdue,
        }
        for a, p, overdue in rows
    ]


# ---------------------------------------------------------------- the procedure's other steps


@router.post("/petitions/{ref}/objections", response_model=StaffPetitionDetail)
def record_objection(
    ref: str, body: ObjectionBody, db: DbSession, user: StaffDep
) -> StaffPetitionDetail:
    """An objection (异议) received during the notice; the petition cannot close through the
    notice until it is transferred to the court and the court's document recorded."""
    petition = staff_service.get_for(db=db, user=user, ref=ref)
    procedure.record_objection(
        db=db,
        user=user,
        petition=petition,
        raised_by=body.raised_by,
        content=body.content,
        received_on=body.received_on,
        version=body.version,
    )
    return _detail(db, user, ref)


@router.post(
    "/petitions/{ref}/objections/{objection_id}/court-document",
    response_model=StaffPetitionDetail,
)
def record_court_document(
    ref: str, objection_id: int, body: CourtDocumentBody, db: DbSession, user: StaffDep
) -> StaffPetitionDetail:
    """The court's document on a transferred objection; the petition resumes its notice."""
    petition = staff_service.get_for(db=db, user=user, ref=ref)
    procedure.record_court_document(
        db=db,
        user=user,
        petition=petition,
        objection_id=objection_id,
        document=body.document,
        document_on=body.document_on,
        summary=body.summary,
        version=body.version,
    )
    return _detail(db, user, ref)


@router.post("/petitions/{ref}/resettlement", response_model=StaffPetitionDetail)
def record_resettlement(
    ref: str, body: ResettlementBody, db: DbSession, user: StaffDep
) -> StaffPetitionDetail:
    """The 征收办's 回迁确认书 (document number, date), needed before a resettlement notice."""
    petition = staff_service.get_for(db=db, user=user, ref=ref)
    procedure.record_resettlement(
        db=db,
        user=user,
        petition=petition,
        document_number=body.document_number,
        confirmed_on=body.confirmed_on,
        version=body.version,
    )
    return _detail(db, user, ref)


@router.post("/petitions/{ref}/meeting", response_model=StaffPetitionDetail)
def flag_meeting(ref: str, body: MeetingBody, db: DbSession, user: StaffDep) -> StaffPetitionDetail:
    """Flag the case for the office meeting (一般情形 general / 特殊情形 special)."""
    petition = staff_service.get_for(db=db, user=user, ref=ref)
    procedure.flag_meeting(
        db=db,
        user=user,
        petition=petition,
        kind=body.kind,
        reason=body.reason,
        version=body.version,
    )
    return _detail(db, user, ref)


@router.post("/petitions/{ref}/meeting/decision", response_model=StaffPetitionDetail)
def record_meeting_decision(
    ref: str, body: MeetingDecisionBody, db: DbSession, user: StaffDep
) -> StaffPetitionDetail:
    """The office meeting's decision on the case."""
    petition = staff_service.get_for(db=db, user=user, ref=ref)
    procedure.record_meeting_decision(
        db=db,
        user=user,
        petition=petition,
        decision=body.decision,
        decided_on=body.decided_on,
        version=body.version,
    )
    return _detail(db, user, ref)
