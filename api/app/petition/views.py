"""Public petition endpoints: intake (idempotent) and the resident's status lookup."""

from __future__ import annotations

import logging
from typing import Annotated

from fastapi import APIRouter, Depends, Header, Response
from sqlalchemy.orm import Session

from app.core.config import settings
from app.core.database import DbSession
from app.core.errors import AppError
from app.core.ratelimit import limiter
from app.core.security import CallerDep
from app.petition import messages, staff_service
from app.petition import service as petition_service
from app.petition.models import Petition, PetitionNotice
from app.petition.schemas import (
    AnswerRead,
    FeedbackBody,
    FeedbackRead,
    PetitionCreate,
    PetitionCreated,
    PetitionLookup,
    PetitionLookupList,
    PetitionStatusRead,
)
from app.policy.departments import department_name

log = logging.getLogger("app.petition.lookup")

router = APIRouter(prefix="/petitions", tags=["petitions"])

NOT_FOUND_MESSAGE = "没有找到与该编号和手机号对应的信访记录，请核对后再试。"
# The same 404 whether the phone is unknown or the name differs: nothing tells which.
NOT_FOUND_BY_NAME_MESSAGE = (
    "没有找到与该手机号和姓名对应的信访记录，请核对后再试（手机号和姓名要与登记时一致）。"
)


@router.post(
    "",
    response_model=PetitionCreated,
    status_code=201,
    responses={200: {"description": "the petition an earlier request with this key created"}},
)
def create_petition(
    data: PetitionCreate,
    db: DbSession,
    caller: CallerDep,
    response: Response,
    idempotency_key: Annotated[str | None, Header(max_length=128)] = None,
) -> PetitionCreated:
    """Take in a petition; the same `Idempotency-Key` always answers with the same petition."""
    limiter.hit(
        "petition",
        caller.rate_keys,
        {"ip": settings.petition_rate_per_ip, "sender": 10},
        message="提交太频繁了，请稍后再试。",
    )
    petition, created = petition_service.create(
        db=db,
        data=data,
        idempotency_key=idempotency_key,
        # Only the action server names the conversation (how the resident hears back).
        sender_id=caller.sender_id if caller.is_service else None,
    )
    # Commit before answering: an acknowledged petition is in the database, whatever fails next.
    db.commit()
    if not created:
        response.status_code = 200
    return PetitionCreated(
        number=petition.number,
        status=petition.status,
        status_label=petition.status_label,
        answer_due=petition.answer_due,
        provisional=petition.answer_due_provisional,
    )


def petition_lookup_rate_limit(caller: CallerDep) -> None:
    """Count the lookup per sender and per IP before the body is validated, as POST /lookup
    does for ID numbers: nobody walks through numbers, phones or names (bad bodies count)."""
    limiter.hit(
        "petition_lookup",
        caller.rate_keys,
        {"ip": settings.lookup_rate_per_ip, "sender": settings.lookup_rate_per_sender},
    )


def _status_read(db: Session, petition: Petition) -> PetitionStatusRead:
    notice = db.get(PetitionNotice, petition.id) if petition.status == "public_notice" else None
    notice_end = notice.earliest_end if notice else None
    closed = petition.status == "closed"
    return PetitionStatusRead(
        number=petition.number,
        status=petition.status,
        status_label=petition.status_label,
        departments=petition_service.department_names(petition),
        updated_at=petition.updated_at,
        answer_due=petition.answer_due,
        answers=[
            AnswerRead(
                department=a.department,
                department_name=department_name(a.department),
                text=a.resident_text or "",
                at=a.approved_at,
            )
            for a in petition.assignments
            if a.approved_at is not None and a.resident_text
        ],
        outcome=petition.outcome if closed else None,
        closed_at=petition.closed_at if closed else None,
        closure_due=petition.closure_due,
        notice_end=notice_end,
        review_due=petition.review_due if petition.status == "review" else None,
        next_step=messages.next_step(petition, notice_end),
    )


@router.post(
    "/lookup",
    response_model=PetitionStatusRead | PetitionLookupList,
    dependencies=[Depends(petition_lookup_rate_limit)],
    responses={
        404: {"description": "编号（或姓名）与手机号对不上，或没有这样的信访记录"},
        422: {"description": "请求格式不对"},
        429: {"description": "查询太频繁"},
    },
)
def lookup_petition(data: PetitionLookup, db: DbSession) -> PetitionStatusRead | PetitionLookupList:
    """A petition's state when number and phone match; with `{phone, person_name}` instead,
    every petition of that phone and name, newest first. 404 otherwise (never which half)."""
    if data.person_name is not None:
        petitions = petition_service.list_by_phone_and_name(
            db=db, phone=data.phone, person_name=data.person_name
        )
        # Only the kind of lookup and the count: never the phone or the name.
        log.info("petition lookup by=name found=%d", len(petitions))
        if not petitions:
            raise AppError(404, "petition_not_found", NOT_FOUND_BY_NAME_MESSAGE)
        return PetitionLookupList(petitions=[_status_read(db, p) for p in petitions])
    assert data.petition_number is not None  # schema
    petition = petition_service.lookup(db=db, number=data.petition_number, phone=data.phone)
    log.info("petition lookup by=number found=%d", int(petition is not None))
    if petition is None:
        raise AppError(404, "petition_not_found", NOT_FOUND_MESSAGE)
    return _status_read(db, petition)


@router.post(
    "/{number}/feedback",
    response_model=FeedbackRead,
    responses={
        403: {"description": "not the action server"},
        404: {"description": "no such petition for this conversation"},
        409: {"description": "the petition is not closed"},
    },
)
def petition_feedback(
    number: str, data: FeedbackBody, db: DbSession, caller: CallerDep
) -> FeedbackRead:
    """The resident's satisfaction after 办结, from the conversation that filed the petition;
    不满意 reopens it as 复查中 (review) with the catalogue's review deadline."""
    if not caller.is_service or not caller.sender_id:
        raise AppError(403, "service_only", "请在对话中回复您的评价。")
    petition = petition_service.lookup_for_sender(
        db=db, number=number.strip().upper(), sender_id=caller.sender_id
    )
    if petition is None:
        raise AppError(404, "petition_not_found", "没有找到您在这次对话里提交的这件信访。")
    staff_service.resident_feedback(
        db=db,
        petition=petition,
        satisfaction=data.satisfaction,
        reason=data.reason,
        actor=f"resident:{petition.channel}",
    )
    db.commit()
    return FeedbackRead(
        number=petition.number,
        status=petition.status,
        status_label=petition.status_label,
        review_due=petition.review_due,
    )
