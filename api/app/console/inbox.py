"""Console screen: the staff member's own reminders (我的提醒), mark one or all read."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Form, Request
from fastapi.responses import HTMLResponse, Response

from app.console.common import html_errors, redirect, render
from app.core.database import DbSession
from app.core.params import RowId
from app.inbox import service
from app.staff.auth import ConsoleUser, check_form_csrf

router = APIRouter(prefix="/console", include_in_schema=False)

KIND_LABELS = {
    "answer_due": "答复提醒",
    "supervised": "超期督办",
    "expected_date_passed": "预计化解日期已过",
}


@router.get("/inbox", response_class=HTMLResponse)
@html_errors
def inbox_page(request: Request, db: DbSession, user: ConsoleUser) -> HTMLResponse:
    """The user's reminders, unread first."""
    rows = service.list_for(db, user)
    return render(request, "inbox.html", user, rows=rows, kinds=KIND_LABELS)


@router.post("/inbox/read-all")
def inbox_read_all(
    request: Request,
    db: DbSession,
    user: ConsoleUser,
    csrf_token: Annotated[str, Form()] = "",
) -> Response:
    """Mark every reminder read."""
    check_form_csrf(request, csrf_token)
    marked = service.mark_all_read(db, user)
    return redirect("/console/inbox", f"已将 {marked} 条提醒标为已读。")


@router.post("/inbox/{notification_id}/read")
def inbox_read_one(
    notification_id: RowId,
    request: Request,
    db: DbSession,
    user: ConsoleUser,
    csrf_token: Annotated[str, Form()] = "",
) -> Response:
    """Mark one reminder read."""
    check_form_csrf(request, csrf_token)
    service.mark_read(db, user, notification_id)
    return redirect("/console/inbox", "已标为已读。")
