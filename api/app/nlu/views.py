"""The NLU inbox over HTTP: the bot's reports (service token) and the maintainers' endpoints
under /api/v1/staff/nlu (docs/maintainers.md)."""

from __future__ import annotations

import re
from datetime import date
from typing import Annotated, Any

from fastapi import APIRouter, Query, Response

from app.core.database import DbSession
from app.core.errors import AppError
from app.core.params import RowId
from app.core.security import CallerDep
from app.nlu import export as nlu_export
from app.nlu import service
from app.nlu.models import NluInboxItem
from app.nlu.schemas import (
    AnnotationIn,
    ExportOut,
    FlagIn,
    FlagOut,
    InboxItem,
    InboxList,
    ObservationIn,
    ObservationOut,
    Reason,
    Status,
)
from app.staff import roles
from app.staff.auth import StaffDep

router = APIRouter(prefix="/nlu", tags=["nlu inbox"])
staff_router = APIRouter(prefix="/staff/nlu", tags=["staff: nlu inbox"])

SERVICE_ONLY_MESSAGE = "此接口仅供智能客服调用。"
MISSING_SENDER_MESSAGE = "缺少会话标识（X-Sender-Id）。"


def item_read(item: NluInboxItem) -> InboxItem:
    """The staff view of an item: masked text and context, no petition or sender id."""
    return InboxItem(
        id=item.id,
        text=item.text,
        predicted_intent=item.predicted_intent,
        confidence=item.confidence,
        channel=item.channel,
        at=item.created_at,
        reason=item.reason,
        status=item.status,
        context=[
            {"from": str(t.get("from")), "text": str(t.get("text"))}  # type: ignore[misc]
            for t in item.context or []
        ],
        project_code=item.project_code,
        sender=item.sender,
        entities=list(item.entities or []),  # type: ignore[arg-type]
        intent=item.intent,
        annotated_entities=list(item.annotated_entities or []),  # type: ignore[arg-type]
        exported_to=item.exported_to,
    )


@router.post("/observations", status_code=201, response_model=ObservationOut)
def post_observation(
    data: ObservationIn, db: DbSession, caller: CallerDep, response: Response
) -> ObservationOut:
    """The bot reports a message that needs a look (masked again here; `id` null when the
    api's own NLU_INBOX_CONFIDENCE does not keep a `low_confidence` report)."""
    if not caller.is_service:
        raise AppError(403, "service_only", SERVICE_ONLY_MESSAGE)
    if not caller.sender_id:
        raise AppError(422, "missing_sender", MISSING_SENDER_MESSAGE)
    item = service.observe(db, sender_id=caller.sender_id, data=data)
    if item is None:
        response.status_code = 200
        return ObservationOut(id=None)
    return ObservationOut(id=item.id)


@staff_router.get("/inbox", response_model=InboxList)
def get_inbox(
    db: DbSession,
    user: StaffDep,
    intent: Annotated[str | None, Query(max_length=64)] = None,
    max_confidence: Annotated[float | None, Query(ge=0.0, le=1.0)] = None,
    channel: Annotated[str | None, Query(max_length=16)] = None,
    since: date | None = None,
    until: date | None = None,
    project: Annotated[str | None, Query(max_length=32)] = None,
    reason: Reason | None = None,
    status: Status | None = None,
    limit: Annotated[int, Query(ge=1, le=500)] = 100,
) -> InboxList:
    """Messages the bot misunderstood, newest first (masked); `since`/`until` are days."""
    roles.require(user, "nlu.read")
    rows = service.list_items(
        db,
        intent=intent,
        max_confidence=max_confidence,
        channel=channel,
        since=since,
        until=until,
        project=project,
        reason=reason,
        status=status,
        limit=limit,
    )
    return InboxList(items=[item_read(r) for r in rows])


@staff_router.post("/inbox/{item_id}/annotation", response_model=InboxItem)
def post_annotation(item_id: RowId, data: AnnotationIn, db: DbSession, user: StaffDep) -> InboxItem:
    """Correct intent and entities, mark out of scope, or delete the text (audited)."""
    roles.require(user, "nlu.annotate")
    item = service.get(db, item_id)
    service.annotate(db, item=item, data=data, user=user)
    return item_read(item)


@staff_router.post("/export", response_model=ExportOut)
def post_export(db: DbSession, user: StaffDep) -> ExportOut:
    """Write the annotated examples to nlu_data/inbox/<channel>-<date>.yml (de-duplicated)."""
    roles.require(user, "nlu.annotate")
    result = nlu_export.export(db, user=user)
    return ExportOut(
        files=result.files,  # type: ignore[arg-type]
        exported=result.exported,
        skipped=result.skipped,  # type: ignore[arg-type]
    )


@staff_router.post("/flag", response_model=FlagOut)
def post_flag(data: FlagIn, db: DbSession, user: StaffDep, response: Response) -> FlagOut:
    """A resident's turn of a petition's conversation, for the maintainers (201 when new)."""
    roles.require(user, "nlu.flag")
    item_id, created = service.flag(
        db, user=user, petition_ref=data.petition, position=data.position
    )
    response.status_code = 201 if created else 200
    return FlagOut(id=item_id, created=created)


@staff_router.get(
    "/conversations/{key}/case",
    response_class=Response,
    responses={200: {"content": {"application/x-yaml": {}}}},
)
def get_case(key: str, db: DbSession, user: StaffDep) -> Response:
    """The conversation around an item (key: item id or sender pseudonym) as a YAML case for
    tests/conversations/cases/, masked, with expectations to fill in."""
    roles.require(user, "nlu.read")
    if not re.fullmatch(r"[0-9a-f]{1,32}", key):
        raise AppError(404, "not_found", service.NOT_FOUND)
    text = service.case_yaml(db, key)
    headers: dict[str, Any] = {"Content-Disposition": f'attachment; filename="inbox-{key}.yml"'}
    return Response(text, media_type="application/x-yaml; charset=utf-8", headers=headers)
