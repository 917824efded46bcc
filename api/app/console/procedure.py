"""Console forms for the procedure's steps around the state machine: 异议 during the notice and
the court's document, the 回迁确认书 of resettlement cases, the office meeting and its decision.
Each posts like the petition page's other forms: refused → the page again with the typed text."""

from __future__ import annotations

from datetime import date
from typing import Annotated

from fastapi import APIRouter, Form, Request
from fastapi.responses import Response

from app.console.petitions import _petition_post
from app.core.database import DbSession
from app.petition import procedure
from app.staff.auth import ConsoleUser

router = APIRouter(prefix="/console", include_in_schema=False)


def _day(text: str) -> date | None:
    try:
        return date.fromisoformat(text) if text else None
    except ValueError:
        return None


@router.post("/petitions/{ref}/objections")
def objection(
    ref: str,
    request: Request,
    db: DbSession,
    user: ConsoleUser,
    version: Annotated[int, Form()],
    raised_by: Annotated[str, Form(max_length=128)] = "",
    content: Annotated[str, Form(max_length=2000)] = "",
    received_on: Annotated[str, Form(max_length=10)] = "",
    csrf_token: Annotated[str, Form()] = "",
) -> Response:
    """Record an objection received during the notice."""
    return _petition_post(
        request,
        db,
        user,
        ref,
        csrf_token,
        lambda p: procedure.record_objection(
            db=db,
            user=user,
            petition=p,
            raised_by=raised_by,
            content=content,
            received_on=_day(received_on),
            version=version,
        ),
        "异议已登记：请转办法院，法院出具文书后恢复办理。",
        {"form": "objection", "raised_by": raised_by, "content": content},
    )


@router.post("/petitions/{ref}/objections/{objection_id}/court-document")
def court_document(
    ref: str,
    objection_id: int,
    request: Request,
    db: DbSession,
    user: ConsoleUser,
    version: Annotated[int, Form()],
    document: Annotated[str, Form(max_length=128)] = "",
    document_on: Annotated[str, Form(max_length=10)] = "",
    summary: Annotated[str, Form(max_length=2000)] = "",
    csrf_token: Annotated[str, Form()] = "",
) -> Response:
    """Record the court's document; the petition resumes its notice."""
    return _petition_post(
        request,
        db,
        user,
        ref,
        csrf_token,
        lambda p: procedure.record_court_document(
            db=db,
            user=user,
            petition=p,
            objection_id=objection_id,
            document=document,
            document_on=_day(document_on),
            summary=summary,
            version=version,
        ),
        "法院文书已登记，信访恢复办理。",
        {"form": f"court:{objection_id}", "document": document, "summary": summary},
    )


@router.post("/petitions/{ref}/resettlement")
def resettlement(
    ref: str,
    request: Request,
    db: DbSession,
    user: ConsoleUser,
    version: Annotated[int, Form()],
    document_number: Annotated[str, Form(max_length=128)] = "",
    confirmed_on: Annotated[str, Form(max_length=10)] = "",
    csrf_token: Annotated[str, Form()] = "",
) -> Response:
    """Record the 征收办's 回迁确认书."""
    return _petition_post(
        request,
        db,
        user,
        ref,
        csrf_token,
        lambda p: procedure.record_resettlement(
            db=db,
            user=user,
            petition=p,
            document_number=document_number,
            confirmed_on=_day(confirmed_on),
            version=version,
        ),
        "回迁确认书已登记，可以开始公示。",
        {"form": "resettlement", "document_number": document_number},
    )


@router.post("/petitions/{ref}/meeting")
def meeting(
    ref: str,
    request: Request,
    db: DbSession,
    user: ConsoleUser,
    version: Annotated[int, Form()],
    kind: Annotated[str, Form(max_length=16)] = "",
    reason: Annotated[str, Form(max_length=2000)] = "",
    csrf_token: Annotated[str, Form()] = "",
) -> Response:
    """Flag the case for the office meeting."""
    return _petition_post(
        request,
        db,
        user,
        ref,
        csrf_token,
        lambda p: procedure.flag_meeting(
            db=db, user=user, petition=p, kind=kind, reason=reason, version=version
        ),
        "已提交专题会议。",
        {"form": "meeting", "kind": kind, "reason": reason},
    )


@router.post("/petitions/{ref}/meeting/decision")
def meeting_decision(
    ref: str,
    request: Request,
    db: DbSession,
    user: ConsoleUser,
    version: Annotated[int, Form()],
    decision: Annotated[str, Form(max_length=2000)] = "",
    decided_on: Annotated[str, Form(max_length=10)] = "",
    csrf_token: Annotated[str, Form()] = "",
) -> Response:
    """Record the office meeting's decision."""
    return _petition_post(
        request,
        db,
        user,
        ref,
        csrf_token,
        lambda p: procedure.record_meeting_decision(
            db=db,
            user=user,
            petition=p,
            decision=decision,
            decided_on=_day(decided_on),
            version=version,
        ),
        "会议决定已登记。",
        {"form": "decision", "decision": decision},
    )
