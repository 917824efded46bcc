"""Public petition endpoints: intake (idempotent) and the resident's status lookup."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Header, Response

from app.core.config import settings
from app.core.database import DbSession
from app.core.errors import AppError
from app.core.ratelimit import limiter
from app.core.security import CallerDep
from app.petition import service as petition_service
from app.petition.schemas import (
    PetitionCreate,
    PetitionCreated,
    PetitionLookup,
    PetitionStatusRead,
)

router = APIRouter(prefix="/petitions", tags=["petitions"])

NOT_FOUND_MESSAGE = "没有找到与该编号和手机号对应的信访记录，请核对后再试。"


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
    petition, created = petition_service.create(db=db, data=data, idempotency_key=idempotency_key)
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


@router.post("/lookup", response_model=PetitionStatusRead)
def lookup_petition(data: PetitionLookup, db: DbSession, caller: CallerDep) -> PetitionStatusRead:
    """A petition's state, only when number and phone match (404 otherwise)."""
    limiter.hit(
        "petition_lookup",
        caller.rate_keys,
        {"ip": settings.lookup_rate_per_ip, "sender": settings.lookup_rate_per_sender},
    )
    petition = petition_service.lookup(db=db, number=data.petition_number, phone=data.phone)
    if petition is None:
        raise AppError(404, "petition_not_found", NOT_FOUND_MESSAGE)
    return PetitionStatusRead(
        number=petition.number,
        status=petition.status,
        status_label=petition.status_label,
        departments=petition_service.department_names(petition),
        updated_at=petition.updated_at,
        answer_due=petition.answer_due,
    )
