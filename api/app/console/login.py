"""Console sign-in and sign-out."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Form, Request
from fastapi.responses import HTMLResponse, Response

from app.console.common import (
    redirect,
    render,
    safe_next,
)
from app.core.config import settings
from app.core.database import DbSession
from app.core.errors import AppError
from app.staff import service as staff_service_accounts
from app.staff.auth import (
    LOGIN_CSRF_COOKIE,
    SESSION_COOKIE,
    ConsoleUser,
    check_form_csrf,
    check_login_rate,
    new_login_csrf,
    record_login_failure,
    record_login_success,
    sign_session,
    unsign_session,
)

router = APIRouter(prefix="/console", include_in_schema=False)


@router.get("/login", response_class=HTMLResponse)
def login_page(request: Request, next: str | None = None) -> HTMLResponse:
    """The login form (with a double-submit CSRF token)."""
    token = new_login_csrf()
    response = render(request, "login.html", None, login_csrf=token, next=safe_next(next))
    response.set_cookie(
        LOGIN_CSRF_COOKIE, token, max_age=3600, httponly=True, samesite="strict", path="/console"
    )
    return response


@router.post("/login", response_class=HTMLResponse)
def login(
    request: Request,
    db: DbSession,
    username: Annotated[str, Form(max_length=64)],
    password: Annotated[str, Form(max_length=256)],
    csrf_token: Annotated[str, Form(max_length=100)] = "",
    next: Annotated[str, Form(max_length=300)] = "/console",
) -> Response:
    """Check the password and open a console session."""
    cookie = request.cookies.get(LOGIN_CSRF_COOKIE, "")
    if not cookie or not csrf_token or cookie != csrf_token:
        return _login_error(request, "页面已过期，请重新登录。", 403, next)
    try:
        check_login_rate(request, username)
    except AppError as exc:
        refused = _login_error(request, exc.message, 429, next)
        if "retry_after" in exc.extra:
            refused.headers["Retry-After"] = str(exc.extra["retry_after"])
        return refused
    user = staff_service_accounts.authenticate(db=db, username=username, password=password)
    if user is None:
        record_login_failure(request, username)
        return _login_error(request, "用户名或密码不对。", 401, next)
    record_login_success(request, username)
    secret, _ = staff_service_accounts.create_session(db=db, user=user, kind="console")
    response = redirect(safe_next(next))
    response.set_cookie(
        SESSION_COOKIE,
        sign_session(secret),
        max_age=settings.session_max_age_seconds,
        httponly=True,
        samesite="lax",
        secure=settings.environment == "production",
        path="/",
    )
    response.delete_cookie(LOGIN_CSRF_COOKIE, path="/console")
    return response


def _login_error(request: Request, message: str, status: int, next: str) -> HTMLResponse:
    token = new_login_csrf()
    response = render(
        request, "login.html", None, status, message, login_csrf=token, next=safe_next(next)
    )
    response.set_cookie(
        LOGIN_CSRF_COOKIE, token, max_age=3600, httponly=True, samesite="strict", path="/console"
    )
    return response


@router.post("/logout")
def logout(
    request: Request, db: DbSession, user: ConsoleUser, csrf_token: Annotated[str, Form()] = ""
) -> Response:
    """End the console session."""
    check_form_csrf(request, csrf_token)
    raw = request.cookies.get(SESSION_COOKIE, "")
    token = unsign_session(raw) if raw else None
    if token:
        staff_service_accounts.end_session(db=db, token=token)
    response = redirect("/console/login", "已退出登录。")
    response.delete_cookie(SESSION_COOKIE, path="/")
    return response
