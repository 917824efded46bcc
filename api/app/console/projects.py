"""Console screens for projects and their blockers."""

from __future__ import annotations

from collections.abc import Callable
from datetime import date, timedelta
from typing import Annotated, Any
from urllib.parse import quote

from fastapi import APIRouter, Form, Query, Request
from fastapi.responses import HTMLResponse, Response

from app.console.common import (
    attempt,
    audit_entries,
    html_errors,
    redirect,
    render,
)
from app.core.database import DbSession
from app.core.errors import AppError
from app.core.workdays import today_shanghai
from app.petition import cases as petition_cases
from app.policy.departments import blocker_names, departments
from app.staff import roles
from app.staff.auth import (
    ConsoleUser,
    check_form_csrf,
)
from app.staff.models import StaffUser
from app.status import editing as projects
from app.status import lookup_stats

LOOKUP_WINDOW_DAYS = 30

router = APIRouter(prefix="/console", include_in_schema=False)


@router.get("/projects", response_class=HTMLResponse)
@html_errors
def project_list(
    request: Request,
    db: DbSession,
    user: ConsoleUser,
    q: Annotated[str | None, Query(max_length=64)] = None,
    district: Annotated[str | None, Query(max_length=64)] = None,
) -> HTMLResponse:
    """Projects with their open blockers."""
    roles.require(user, "project.read")
    rows = projects.list_projects(db=db, q=q, district=district or None)
    return render(request, "projects.html", user, rows=rows, q=q or "", district=district or "")


def _project_page(
    request: Request,
    db: DbSession,
    user: StaffUser,
    code: str,
    error: str | None = None,
    status_code: int = 200,
) -> HTMLResponse:
    project = projects.get_project(db=db, code=code)
    used = {b.code for b in project.blockers if b.status == "open"}
    counts = petition_cases.project_petition_counts(db=db, user=user, project_id=project.id)
    since = today_shanghai() - timedelta(days=LOOKUP_WINDOW_DAYS - 1)
    return render(
        request,
        "project.html",
        user,
        status_code,
        error,
        project=project,
        units=projects.unit_counts(db=db, project=project),
        trail=audit_entries(db, projects.project_audit(db=db, project=project)),
        blocker_names=blocker_names(),
        free_blockers={c: n for c, n in blocker_names().items() if c not in used},
        departments=departments(),
        petition_counts=counts,
        petition_total=sum(counts.values()),
        petition_query=quote(project.name),
        project_cases=petition_cases.list_cases(db=db, user=user, project_id=project.id),
        lookups_total=lookup_stats.lookups_of(db, project.id),
        lookups_recent=lookup_stats.lookups_of(db, project.id, since=since),
        lookup_window=LOOKUP_WINDOW_DAYS,
    )


@router.get("/projects/{code}", response_class=HTMLResponse)
@html_errors
def project_page(code: str, request: Request, db: DbSession, user: ConsoleUser) -> HTMLResponse:
    """A project: blockers with owner, notes, expected date; forms to change them."""
    roles.require(user, "project.read")
    return _project_page(request, db, user, code)


def _project_post(
    request: Request,
    db: DbSession,
    user: StaffUser,
    code: str,
    csrf_token: str,
    change: Callable[[Any], Any],
    done: str,
) -> Response:
    check_form_csrf(request, csrf_token or request.headers.get("X-CSRF-Token"))
    roles.require(user, "project.edit")
    project = projects.get_project(db=db, code=code)
    error = attempt(db, lambda: change(project))
    if error:
        return _project_page(request, db, user, code, error, 409)
    return redirect(f"/console/projects/{quote(code)}", done)


@router.post("/projects/{code}/blockers")
def project_add_blocker(
    code: str,
    request: Request,
    db: DbSession,
    user: ConsoleUser,
    blocker: Annotated[str, Form(max_length=64)],
    department: Annotated[str, Form(max_length=64)] = "",
    note: Annotated[str, Form(max_length=2000)] = "",
    csrf_token: Annotated[str, Form()] = "",
) -> Response:
    """Add a blocker to the project."""
    return _project_post(
        request,
        db,
        user,
        code,
        csrf_token,
        lambda p: projects.add_blocker(
            db=db, user=user, project=p, code=blocker, department=department or None, note=note
        ),
        "卡点已添加。",
    )


@router.post("/projects/{code}/blockers/{blocker}/resolve")
def project_resolve_blocker(
    code: str,
    blocker: str,
    request: Request,
    db: DbSession,
    user: ConsoleUser,
    note: Annotated[str, Form(max_length=2000)] = "",
    csrf_token: Annotated[str, Form()] = "",
) -> Response:
    """Mark a blocker resolved."""
    return _project_post(
        request,
        db,
        user,
        code,
        csrf_token,
        lambda p: projects.resolve_blocker(
            db=db, user=user, project=p, blocker_code=blocker, note=note
        ),
        "卡点已标记为化解。",
    )


@router.post("/projects/{code}/blockers/{blocker}/edit")
def project_edit_blocker(
    code: str,
    blocker: str,
    request: Request,
    db: DbSession,
    user: ConsoleUser,
    note: Annotated[str, Form(max_length=2000)] = "",
    department: Annotated[str, Form(max_length=64)] = "",
    csrf_token: Annotated[str, Form()] = "",
) -> Response:
    """Change a blocker's note or owner."""
    return _project_post(
        request,
        db,
        user,
        code,
        csrf_token,
        lambda p: projects.update_blocker(
            db=db, user=user, project=p, blocker_code=blocker, note=note, department=department
        ),
        "卡点已更新。",
    )


@router.post("/projects/{code}/expected")
def project_expected(
    code: str,
    request: Request,
    db: DbSession,
    user: ConsoleUser,
    expected: Annotated[str, Form(max_length=10)] = "",
    csrf_token: Annotated[str, Form()] = "",
) -> Response:
    """Set the expected resolution date."""

    def change(project: Any) -> None:
        try:
            value = date.fromisoformat(expected) if expected else None
        except ValueError as exc:
            raise AppError(422, "bad_date", "日期格式应为 YYYY-MM-DD。") from exc
        projects.set_expected_date(db=db, user=user, project=project, expected=value)

    return _project_post(request, db, user, code, csrf_token, change, "预计化解日期已更新。")
