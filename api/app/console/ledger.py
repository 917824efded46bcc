"""Console screen for uploading a ledger: the upload queues an import job; its page follows
the job (a meta refresh while it is queued or running: no script, CSP allows none inline)."""

from __future__ import annotations

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response

from app.console.common import (
    html_errors,
    render,
)
from app.core.database import DbSession
from app.core.errors import AppError
from app.ledger import intake
from app.ledger.views import error_read, get_import, template_response
from app.staff import roles
from app.staff.auth import (
    ConsoleUser,
    check_form_csrf,
)

router = APIRouter(prefix="/console", include_in_schema=False)

REFRESH_SECONDS = 2


@router.get("/ledger", response_class=HTMLResponse)
@html_errors
def ledger_page(request: Request, user: ConsoleUser) -> HTMLResponse:
    """The ledger upload form."""
    roles.require(user, "ledger.import")
    return render(request, "ledger.html", user)


@router.get("/ledger/template.xlsx", response_model=None)
@html_errors
def ledger_template(request: Request, user: ConsoleUser) -> Response:
    """The template workbook (the same as the staff API's)."""
    roles.require(user, "ledger.import")
    return template_response()


@router.post("/ledger", response_model=None)
async def ledger_upload_post(request: Request, db: DbSession, user: ConsoleUser) -> Response:
    """Take the upload (the session and permission checked before the body is read), queue its
    import and show its page; a refused upload is shown on the form."""
    try:
        roles.require(user, "ledger.import")
        row = await intake.take_upload(
            request,
            db,
            f"staff:{user.username}",
            check_fields=lambda fields: check_form_csrf(request, fields.get("csrf_token")),
        )
    except AppError as exc:
        return render(request, "ledger.html", user, exc.status_code, exc.message)
    return RedirectResponse(f"/console/ledger/imports/{row.public_id}", status_code=303)


@router.get("/ledger/imports/{import_id}", response_class=HTMLResponse)
@html_errors
def ledger_import_page(
    request: Request, import_id: str, db: DbSession, user: ConsoleUser
) -> HTMLResponse:
    """One upload: queued or running (the page refreshes itself), done with its report, or
    refused with its row errors (nothing imported)."""
    roles.require(user, "ledger.import")
    row = get_import(db, import_id)
    error = None
    if row.state == "failed":
        if row.error_total:
            error = f"台账有 {row.error_total} 处错误，未导入任何数据。请改正后重新上传。"
        else:
            error = row.message or "导入失败，未导入任何数据。"
    return render(
        request,
        "ledger.html",
        user,
        200,
        error,
        upload=row,
        names=list(row.files),
        errors=[error_read(e) for e in row.errors or []],
        error_total=row.error_total,
        report=row.report if row.state == "done" else None,
        refresh=REFRESH_SECONDS if not row.finished else None,
    )
