"""Console screen: register a petition taken by phone (电话) or at the counter (来访).

The clerk types what the caller says; the petition goes through the same intake as the bot's
(number, deadlines, masking of ID numbers typed in the description), with the caller's consent
noted, and the audit trail names the clerk who registered it. A hidden key makes a double
click or a resent form one petition, not two.
"""

from __future__ import annotations

import secrets
from typing import Annotated, Any

from fastapi import APIRouter, Form, Request
from fastapi.responses import HTMLResponse, Response
from pydantic import ValidationError

from app.audit import service as audit
from app.console.common import redirect, render
from app.core.database import DbSession
from app.core.errors import AppError, validation_message
from app.petition import service as petition_service
from app.petition import staff_service
from app.petition.schemas import PetitionCreate
from app.staff import roles
from app.staff.auth import ConsoleUser, check_form_csrf
from app.staff.models import StaffUser

router = APIRouter(prefix="/console", include_in_schema=False)

INTAKE_CHANNELS = {"phone": "电话", "visit": "来访"}


def _form_page(
    request: Request,
    user: StaffUser,
    values: dict[str, Any] | None = None,
    error: str | None = None,
    status_code: int = 200,
) -> HTMLResponse:
    values = {"channel": "phone", "form_key": secrets.token_urlsafe(16)} | (values or {})
    return render(
        request,
        "intake.html",
        user,
        status_code,
        error,
        v=values,
        channels=INTAKE_CHANNELS,
    )


@router.get("/petitions/new", response_class=HTMLResponse)
def intake_form(request: Request, user: ConsoleUser) -> HTMLResponse:
    """The empty form (clerks, supervisors, admins)."""
    roles.require(user, "petition.assign")
    return _form_page(request, user)


@router.post("/petitions/new", response_class=HTMLResponse)
def intake_submit(
    request: Request,
    db: DbSession,
    user: ConsoleUser,
    channel: Annotated[str, Form(max_length=16)],
    person_name: Annotated[str, Form(max_length=64)] = "",
    phone: Annotated[str, Form(max_length=32)] = "",
    address: Annotated[str, Form(max_length=256)] = "",
    project_code: Annotated[str, Form(max_length=32)] = "",
    description: Annotated[str, Form(max_length=4000)] = "",
    consent: Annotated[str, Form(max_length=8)] = "",
    form_key: Annotated[str, Form(max_length=64)] = "",
    csrf_token: Annotated[str, Form()] = "",
) -> Response:
    """Register the petition; a refused form comes back with everything typed."""
    check_form_csrf(request, csrf_token or request.headers.get("X-CSRF-Token"))
    roles.require(user, "petition.assign")
    values = {
        "channel": channel,
        "person_name": person_name,
        "phone": phone,
        "address": address,
        "project_code": project_code,
        "description": description,
        "consent": bool(consent),
        "form_key": form_key or secrets.token_urlsafe(16),
    }
    if channel not in INTAKE_CHANNELS:
        return _form_page(request, user, values, "请选择来源：电话或来访。", 422)
    if not consent:
        return _form_page(
            request, user, values, "请先征得来电人/来访人同意登记并转交相关部门，再勾选。", 422
        )
    try:
        data = PetitionCreate(
            person_name=person_name,
            phone=phone,
            address=address or None,
            project_code=project_code or None,
            description=description,
            consent=True,
            channel=channel,  # type: ignore[arg-type]  # checked against INTAKE_CHANNELS above
        )
    except ValidationError as exc:
        return _form_page(request, user, values, validation_message(exc)[0], 422)
    try:
        petition, created = petition_service.create(
            db=db, data=data, idempotency_key=f"console:{values['form_key']}"
        )
        if created:
            audit.record(
                db=db,
                actor=staff_service.actor_of(user),
                action="petition.register",
                entity_type="petition",
                entity_id=petition.number,
                after={"channel": channel, "consent": True},
            )
    except AppError as exc:
        db.rollback()
        return _form_page(request, user, values, exc.message, exc.status_code)
    label = INTAKE_CHANNELS[channel]
    return redirect(
        f"/console/petitions/{petition.number}", f"已登记{label}信访，编号 {petition.number}。"
    )
