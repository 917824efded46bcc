"""Console screens for collective cases (并单): the suggestions with a confirm button, the case
list, and the case page with its one assignment and one answer."""

from __future__ import annotations

from collections.abc import Callable
from typing import Annotated, Any
from urllib.parse import quote

from fastapi import APIRouter, Form, Request
from fastapi.responses import HTMLResponse, Response

from app.console.common import attempt, audit_entries, html_errors, redirect, render
from app.core.database import DbSession
from app.petition import cases
from app.petition.case_models import PetitionCase
from app.policy.departments import blocker_names, departments
from app.staff import roles
from app.staff.auth import ConsoleUser, check_form_csrf
from app.staff.models import StaffUser
from app.status.models import Project

router = APIRouter(prefix="/console", include_in_schema=False)


def _list_page(
    request: Request,
    db: DbSession,
    user: StaffUser,
    error: str | None = None,
    status_code: int = 200,
) -> HTMLResponse:
    suggested = cases.suggestions(db=db, user=user) if roles.can(user, "petition.assign") else []
    return render(
        request,
        "cases.html",
        user,
        status_code,
        error,
        suggestions=suggested,
        rows=cases.list_cases(db=db, user=user),
        blocker_names=blocker_names(),
    )


@router.get("/cases", response_class=HTMLResponse)
@html_errors
def case_list(request: Request, db: DbSession, user: ConsoleUser) -> HTMLResponse:
    """Suggested groups (for clerks to confirm) and the cases."""
    return _list_page(request, db, user)


@router.post("/cases")
@html_errors
def case_create(
    request: Request,
    db: DbSession,
    user: ConsoleUser,
    blocker: Annotated[str, Form(max_length=64)],
    petitions: Annotated[list[str] | None, Form()] = None,
    title: Annotated[str, Form(max_length=128)] = "",
    csrf_token: Annotated[str, Form()] = "",
) -> Response:
    """Confirm a suggested case with the ticked petitions."""
    check_form_csrf(request, csrf_token or request.headers.get("X-CSRF-Token"))
    made: list[PetitionCase] = []
    error = attempt(
        db,
        lambda: made.append(
            cases.create_case(
                db=db, user=user, refs=petitions or [], blocker=blocker, title=title or None
            )
        ),
    )
    if error or not made:
        return _list_page(request, db, user, error, 409)
    case = made[0]
    return redirect(
        f"/console/cases/{quote(case.number)}",
        f"已确认并单 {case.number}，共 {len(case.members)} 件。",
    )


def _case_page(
    request: Request,
    db: DbSession,
    user: StaffUser,
    ref: str,
    error: str | None = None,
    status_code: int = 200,
    typed: dict[str, Any] | None = None,
) -> HTMLResponse:
    case = cases.get_case(db=db, user=user, ref=ref)
    members = cases.members(db=db, user=user, case=case)
    assigned = sorted({a.department for p in members for a in p.assignments})
    return render(
        request,
        "case.html",
        user,
        status_code,
        error,
        case=case,
        project=db.get(Project, case.project_id),
        members=members,
        blocker_name=blocker_names().get(case.blocker, case.blocker),
        departments=departments(),
        suggested=cases.suggested_departments(db=db, case=case),
        assigned=assigned,
        trail=audit_entries(db, cases.audit_trail(db=db, case=case)),
        typed=typed or {},
    )


@router.get("/cases/{ref}", response_class=HTMLResponse)
@html_errors
def case_page(ref: str, request: Request, db: DbSession, user: ConsoleUser) -> HTMLResponse:
    """A case: each household's state, the one assignment, the one answer, the audit trail."""
    return _case_page(request, db, user, ref)


def _outcome_text(lead: str, outcome: cases.CaseOutcome) -> str:
    text = f"{lead} {len(outcome.done)} 件。"
    if outcome.skipped:
        text += "未处理：" + "；".join(f"{n}（{why}）" for n, why in outcome.skipped) + "。"
    return text


def _case_post(
    request: Request,
    db: DbSession,
    user: StaffUser,
    ref: str,
    csrf_token: str,
    change: Callable[[PetitionCase], cases.CaseOutcome],
    lead: str,
    typed: dict[str, Any],
) -> Response:
    check_form_csrf(request, csrf_token or request.headers.get("X-CSRF-Token"))
    case = cases.get_case(db=db, user=user, ref=ref)
    number = case.number
    done: list[cases.CaseOutcome] = []
    error = attempt(db, lambda: done.append(change(case)))
    if error or not done:
        # What the clerk typed stays in the form.
        return _case_page(request, db, user, number, error, 409, typed)
    return redirect(f"/console/cases/{quote(number)}", _outcome_text(lead, done[0]))


@router.post("/cases/{ref}/assign")
@html_errors
def case_assign(
    ref: str,
    request: Request,
    db: DbSession,
    user: ConsoleUser,
    departments_: Annotated[list[str] | None, Form(alias="departments")] = None,
    csrf_token: Annotated[str, Form()] = "",
) -> Response:
    """Assign every open member to the ticked departments."""
    return _case_post(
        request,
        db,
        user,
        ref,
        csrf_token,
        lambda c: cases.assign_case(db=db, user=user, case=c, departments_=departments_ or []),
        "已统一分派",
        {"departments": departments_ or []},
    )


@router.post("/cases/{ref}/answer")
@html_errors
def case_answer(
    ref: str,
    request: Request,
    db: DbSession,
    user: ConsoleUser,
    answer: Annotated[str, Form(max_length=5000)] = "",
    department: Annotated[str, Form(max_length=64)] = "",
    resident_text: Annotated[str, Form(max_length=2000)] = "",
    csrf_token: Annotated[str, Form()] = "",
) -> Response:
    """Record one department answer on every member; each resident is sent it."""
    return _case_post(
        request,
        db,
        user,
        ref,
        csrf_token,
        lambda c: cases.answer_case(
            db=db,
            user=user,
            case=c,
            text=answer,
            department=department or None,
            resident_text=resident_text or None,
        ),
        "答复已发给每位信访人，共",
        {"answer": answer, "department": department, "resident_text": resident_text},
    )
