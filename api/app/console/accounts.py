"""Console screen for staff accounts (admins)."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Form, Request
from fastapi.responses import HTMLResponse, Response

from app.console.common import (
    attempt,
    html_errors,
    redirect,
    render,
)
from app.core.database import DbSession
from app.core.errors import AppError
from app.policy.departments import departments
from app.staff import roles
from app.staff import service as staff_service_accounts
from app.staff.auth import (
    ConsoleUser,
    check_form_csrf,
)

router = APIRouter(prefix="/console", include_in_schema=False)


@router.get("/users", response_class=HTMLResponse)
@html_errors
def users_page(request: Request, db: DbSession, user: ConsoleUser) -> HTMLResponse:
    """Accounts (admin)."""
    roles.require(user, "users.manage")
    return render(
        request,
        "users.html",
        user,
        users=staff_service_accounts.list_users(db=db),
        departments=departments(),
    )


@router.post("/users", response_class=HTMLResponse)
def users_create(
    request: Request,
    db: DbSession,
    user: ConsoleUser,
    username: Annotated[str, Form(max_length=64)],
    role: Annotated[str, Form(max_length=16)],
    department: Annotated[str, Form(max_length=64)] = "",
    display_name: Annotated[str, Form(max_length=64)] = "",
    csrf_token: Annotated[str, Form()] = "",
) -> Response:
    """Create an account with a random password shown once."""
    check_form_csrf(request, csrf_token)
    roles.require(user, "users.manage")
    password = staff_service_accounts.generate_password()
    error = attempt(
        db,
        lambda: staff_service_accounts.create_user(
            db=db,
            username=username.strip(),
            password=password,
            role=role,
            department=department or None,
            display_name=display_name.strip(),
            actor=f"staff:{user.username}",
        ),
    )
    return render(
        request,
        "users.html",
        user,
        409 if error else 200,
        error,
        users=staff_service_accounts.list_users(db=db),
        departments=departments(),
        new_password=None if error else (username.strip(), password),
    )


@router.post("/users/{username}", response_class=HTMLResponse)
def users_update(
    username: str,
    request: Request,
    db: DbSession,
    user: ConsoleUser,
    op: Annotated[str, Form(max_length=16)],
    csrf_token: Annotated[str, Form()] = "",
) -> Response:
    """Disable, enable or reset the password of an account."""
    check_form_csrf(request, csrf_token)
    roles.require(user, "users.manage")
    target = staff_service_accounts.get_by_username(db=db, username=username)
    if target is None:
        raise AppError(404, "not_found", "没有这个账号。")
    password = None
    kwargs: dict[str, Any] = {}
    if op == "disable":
        if target.id == user.id:
            return redirect("/console/users", "不能停用自己的账号。")
        kwargs["active"] = False
    elif op == "enable":
        kwargs["active"] = True
    elif op == "reset":
        password = staff_service_accounts.generate_password()
        kwargs["password"] = password
    else:
        raise AppError(422, "bad_op", "没有这种操作。")
    staff_service_accounts.update_user(db=db, user=target, actor=f"staff:{user.username}", **kwargs)
    return render(
        request,
        "users.html",
        user,
        users=staff_service_accounts.list_users(db=db),
        departments=departments(),
        new_password=(target.username, password) if password else None,
    )
