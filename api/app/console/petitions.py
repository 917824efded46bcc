"""Console screens for petitions: the lists, the petition page and its forms."""

from __future__ import annotations

from collections.abc import Callable
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
from app.petition import cases as petition_cases
from app.petition import procedure, staff_service, workflow
from app.petition.models import STATUS_LABELS
from app.policy.departments import blocker_names, departments
from app.staff import service as staff_accounts
from app.staff.auth import (
    ConsoleUser,
    check_form_csrf,
)
from app.staff.models import StaffUser

router = APIRouter(prefix="/console", include_in_schema=False)


@router.get("", response_class=HTMLResponse)
@router.get("/", response_class=HTMLResponse)
def home(user: ConsoleUser) -> Response:
    """Officers land on their open assignments, maintainers on the NLU inbox, everyone else on
    the petition list."""
    if user.role == "maintainer":
        return redirect("/console/nlu")
    return redirect("/console/my" if user.role == "officer" else "/console/petitions")


@router.get("/my", response_class=HTMLResponse)
def my_assignments(request: Request, db: DbSession, user: ConsoleUser) -> HTMLResponse:
    """An officer's open assignments, due first."""
    rows = (
        staff_service.list_open_assignments(db=db, department=user.department)
        if user.department
        else []
    )
    return render(request, "my.html", user, rows=rows)


@router.get("/petitions", response_class=HTMLResponse)
@html_errors
def petitions(
    request: Request,
    db: DbSession,
    user: ConsoleUser,
    status: Annotated[str | None, Query(max_length=20)] = None,
    department: Annotated[str | None, Query(max_length=64)] = None,
    overdue: Annotated[str | None, Query(max_length=5)] = None,
    q: Annotated[str | None, Query(max_length=64)] = None,
    page: Annotated[int, Query(ge=1, le=10_000)] = 1,
) -> HTMLResponse:
    """The petition list with filters, overdue first."""
    status = status if status in STATUS_LABELS or status == "open" else None
    rows, total = staff_service.list_petitions(
        db=db,
        user=user,
        status=status,
        department=department or None,
        overdue_only=bool(overdue),
        q=q or None,
        page=page,
    )
    filters = {
        "status": status or "",
        "department": department or "",
        "overdue": bool(overdue),
        "q": q or "",
    }
    query = "&".join(f"{k}={quote(str(v))}" for k, v in filters.items() if v)
    return render(
        request,
        "petitions.html",
        user,
        rows=rows,
        total=total,
        page=page,
        pages=max(1, (total + 49) // 50),
        filters=filters,
        query=query,
        departments=departments(),
    )


def _petition_page(
    request: Request,
    db: DbSession,
    user: StaffUser,
    ref: str,
    error: str | None = None,
    status_code: int = 200,
    kept: dict[str, Any] | None = None,
) -> HTMLResponse:
    """The petition page; after a refused change `kept` holds what the clerk had typed (and
    which form it was in), so the page comes back with it instead of empty fields."""
    petition = staff_service.get_for(db=db, user=user, ref=ref)
    data = staff_service.detail(db=db, user=user, petition=petition)
    rows = staff_service.audit_trail(db=db, petition=petition)
    assigned = {a["department"] for a in data["assignments"]}
    names = blocker_names()
    suggested = [
        s | {"reason": "、".join(names.get(b, b) for b in s["blockers"]) + " → " + s["name"]}
        for s in data["suggested_departments"]
    ]
    kept = kept or {}
    # Property disputes go to the court (转办): the reason is offered, the clerk confirms it.
    disputed = "property_dispute" in (petition.blockers or []) or any(
        "property_dispute" in s["blockers"] for s in suggested
    )
    if disputed and not kept.get("form"):
        kept = {"form": "transfer", "note": "产权纠纷，转法院依法处理"}
    if kept.get("form") == "assign":
        ticked = set(kept.get("departments") or [])
    else:
        ticked = {s["code"] for s in suggested if s["code"] not in assigned}
    staff_names = staff_accounts.display_names(
        db=db,
        usernames=[n["author"] for n in data["notes"]]
        + [a["answered_by"] or "" for a in data["assignments"]],
    )
    return render(
        request,
        "petition.html",
        user,
        status_code,
        error,
        p=data,
        trail=audit_entries(db, rows),
        actions=[workflow.ACTIONS[a] for a in data["allowed_actions"]],
        free_departments={c: n for c, n in departments().items() if c not in assigned},
        suggested=[s for s in suggested if s["code"] not in assigned],
        ticked=ticked,
        kept=kept,
        staff_names=staff_names,
        case=petition_cases.case_of(db=db, petition_id=petition.id),
        pr=procedure.detail(db, petition),
    )


@router.get("/petitions/{ref}", response_class=HTMLResponse)
@html_errors
def petition_page(ref: str, request: Request, db: DbSession, user: ConsoleUser) -> HTMLResponse:
    """A petition: details, assignments and answers, notes, state buttons, audit trail."""
    return _petition_page(request, db, user, ref)


def _petition_post(
    request: Request,
    db: DbSession,
    user: StaffUser,
    ref: str,
    csrf_token: str,
    change: Callable[[Any], Any],
    done: str,
    kept: dict[str, Any] | None = None,
) -> Response:
    check_form_csrf(request, csrf_token or request.headers.get("X-CSRF-Token"))
    petition = staff_service.get_for(db=db, user=user, ref=ref)
    number = petition.number
    error = attempt(db, lambda: change(petition))
    if error:
        return _petition_page(request, db, user, number, error, 409, kept)
    return redirect(f"/console/petitions/{number}", done)


@router.post("/petitions/{ref}/assign")
def petition_assign(
    ref: str,
    request: Request,
    db: DbSession,
    user: ConsoleUser,
    version: Annotated[int, Form()],
    departments_: Annotated[list[str] | None, Form(alias="departments")] = None,
    csrf_token: Annotated[str, Form()] = "",
) -> Response:
    """Assign the petition to the ticked departments."""
    return _petition_post(
        request,
        db,
        user,
        ref,
        csrf_token,
        lambda p: staff_service.assign(
            db=db, user=user, petition=p, departments_=departments_ or [], version=version
        ),
        "已分派。",
        {"form": "assign", "departments": departments_ or []},
    )


@router.post("/petitions/{ref}/transition")
def petition_transition(
    ref: str,
    request: Request,
    db: DbSession,
    user: ConsoleUser,
    action: Annotated[str, Form(max_length=20)],
    version: Annotated[int, Form()],
    note: Annotated[str, Form(max_length=2000)] = "",
    csrf_token: Annotated[str, Form()] = "",
) -> Response:
    """Move the petition (核实、公示、督办、转办)."""
    label = workflow.ACTIONS[action].label if action in workflow.ACTIONS else action
    return _petition_post(
        request,
        db,
        user,
        ref,
        csrf_token,
        lambda p: staff_service.transition(
            db=db, user=user, petition=p, action=action, version=version, note=note
        ),
        f"已{label}。",
        {"form": action, "note": note},
    )


@router.post("/petitions/{ref}/answer")
def petition_answer(
    ref: str,
    request: Request,
    db: DbSession,
    user: ConsoleUser,
    answer: Annotated[str, Form(max_length=5000)],
    version: Annotated[int, Form()],
    department: Annotated[str | None, Form(max_length=64)] = None,
    resident_text: Annotated[str, Form(max_length=2000)] = "",
    publish: Annotated[str, Form(max_length=8)] = "",
    csrf_token: Annotated[str, Form()] = "",
) -> Response:
    """Record a department's written answer (and publish it to the resident if ticked)."""
    return _petition_post(
        request,
        db,
        user,
        ref,
        csrf_token,
        lambda p: staff_service.answer(
            db=db,
            user=user,
            petition=p,
            text=answer,
            version=version,
            department=department,
            publish=bool(publish),
            resident_text=resident_text or None,
        ),
        "答复已保存，并已发给信访人。" if publish else "答复已保存，待受理员审核后发给信访人。",
        {
            "form": f"answer:{department or user.department or ''}",
            "answer": answer,
            "resident_text": resident_text,
            "publish": bool(publish),
        },
    )


@router.post("/petitions/{ref}/answers/{department}/approve")
def petition_approve_answer(
    ref: str,
    department: str,
    request: Request,
    db: DbSession,
    user: ConsoleUser,
    version: Annotated[int, Form()],
    resident_text: Annotated[str, Form(max_length=2000)] = "",
    csrf_token: Annotated[str, Form()] = "",
) -> Response:
    """Approve what the resident sees of a department's answer; it is sent to them."""
    return _petition_post(
        request,
        db,
        user,
        ref,
        csrf_token,
        lambda p: staff_service.approve_answer(
            db=db,
            user=user,
            petition=p,
            department=department,
            version=version,
            resident_text=resident_text or None,
        ),
        "已审核，答复已发给信访人。",
        {"form": f"approve:{department}", "resident_text": resident_text},
    )


@router.post("/petitions/{ref}/notes")
def petition_note(
    ref: str,
    request: Request,
    db: DbSession,
    user: ConsoleUser,
    text: Annotated[str, Form(max_length=2000)],
    csrf_token: Annotated[str, Form()] = "",
) -> Response:
    """Append a staff note."""
    return _petition_post(
        request,
        db,
        user,
        ref,
        csrf_token,
        lambda p: staff_service.add_note(db=db, user=user, petition=p, text=text),
        "备注已添加。",
        {"form": "note", "text": text},
    )


@router.post("/petitions/{ref}/close")
def petition_close(
    ref: str,
    request: Request,
    db: DbSession,
    user: ConsoleUser,
    version: Annotated[int, Form()],
    outcome: Annotated[str, Form(max_length=5000)] = "",
    satisfaction: Annotated[str, Form(max_length=24)] = "",
    csrf_token: Annotated[str, Form()] = "",
) -> Response:
    """Close the case with its outcome (and the phone satisfaction, when a clerk called)."""
    return _petition_post(
        request,
        db,
        user,
        ref,
        csrf_token,
        lambda p: staff_service.close(
            db=db,
            user=user,
            petition=p,
            outcome=outcome,
            satisfaction=satisfaction or None,
            version=version,
        ),
        "已办结。" if satisfaction else "已办结，已请信访人在对话中评价。",
        {"form": "close", "outcome": outcome, "satisfaction": satisfaction},
    )
