"""Console screen for uploading a ledger."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, File, Form, Request, UploadFile
from fastapi.responses import HTMLResponse

from app.console.common import (
    html_errors,
    render,
)
from app.core.database import DbSession
from app.core.errors import AppError
from app.ledger import upload as ledger_upload
from app.staff import roles
from app.staff.auth import (
    ConsoleUser,
    check_form_csrf,
)

router = APIRouter(prefix="/console", include_in_schema=False)


@router.get("/ledger", response_class=HTMLResponse)
@html_errors
def ledger_page(request: Request, user: ConsoleUser) -> HTMLResponse:
    """The ledger upload form."""
    roles.require(user, "ledger.import")
    return render(request, "ledger.html", user)


@router.post("/ledger", response_class=HTMLResponse)
async def ledger_upload_post(
    request: Request,
    db: DbSession,
    user: ConsoleUser,
    files: Annotated[list[UploadFile], File()],
    csrf_token: Annotated[str, Form()] = "",
) -> HTMLResponse:
    """Import the uploaded ledger; row errors as a table, nothing half-imported."""
    check_form_csrf(request, csrf_token)
    roles.require(user, "ledger.import")
    contents = [(f.filename or "", await f.read()) for f in files]
    names = [n for n, c in contents if c]
    try:
        report, errors = ledger_upload.import_files(db=db, user=user, files=contents)
    except AppError as exc:
        db.rollback()
        return render(request, "ledger.html", user, exc.status_code, exc.message)
    if errors:
        db.rollback()
        return render(
            request,
            "ledger.html",
            user,
            422,
            f"台账有 {len(errors)} 处错误，未导入任何数据。请改正后重新上传。",
            errors=errors,
            names=names,
        )
    return render(request, "ledger.html", user, report=report, names=names)
