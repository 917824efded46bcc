"""Who is the staff member behind a request: bearer token or console session, plus CSRF."""

from __future__ import annotations

import hashlib
import hmac
import logging
import math
import secrets
from typing import Annotated
from urllib.parse import quote

from fastapi import Depends, HTTPException, Request
from fastapi.security import OAuth2PasswordBearer
from itsdangerous import BadSignature, URLSafeSerializer

from app.core.config import settings
from app.core.database import DbSession
from app.core.errors import AppError
from app.core.ratelimit import limiter
from app.core.security import pseudonym
from app.staff import service as staff_service
from app.staff.models import StaffUser

SESSION_COOKIE = "fb_session"
LOGIN_CSRF_COOKIE = "fb_login_csrf"
CSRF_HEADER = "X-CSRF-Token"
SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})
# Attempts one address may make a minute, whatever their outcome.
LOGIN_LIMITS = {"ip": 30}
LOGIN_LIMIT_MESSAGE = "登录尝试太频繁了，请一分钟后再试。"
# Failures of one username from one address before each further attempt waits, and failures
# from one address over any usernames (someone trying many accounts) before it waits.
LOGIN_FREE_FAILURES = 5
LOGIN_IP_FREE_FAILURES = 30
LOGIN_BACKOFF_SECONDS = 30
LOGIN_BACKOFF_MAX_SECONDS = 15 * 60
# Failures are forgotten this long after the last one (or at once by the right password).
LOGIN_FAILURE_MEMORY_SECONDS = 3600
log = logging.getLogger("app.staff.auth")

oauth2_scheme = OAuth2PasswordBearer(tokenUrl="/api/v1/auth/token", auto_error=False)


def _signer() -> URLSafeSerializer:
    return URLSafeSerializer(settings.secret_key, salt="console-session")


def sign_session(token: str) -> str:
    """The cookie value for a session secret (signed with SECRET_KEY)."""
    return str(_signer().dumps(token))


def unsign_session(value: str) -> str | None:
    """The session secret inside a cookie value, or None when the signature is wrong."""
    try:
        token = _signer().loads(value)
    except BadSignature:
        return None
    return token if isinstance(token, str) else None


def csrf_for(session_token: str) -> str:
    """The CSRF token bound to one console session."""
    key = settings.secret_key.encode()
    return hmac.new(key, b"csrf|" + session_token.encode(), hashlib.sha256).hexdigest()[:40]


def new_login_csrf() -> str:
    """A random token for the login form (double-submitted as cookie and field)."""
    return secrets.token_urlsafe(24)


def _login_keys(request: Request, username: str) -> tuple[str, str]:
    ip = pseudonym(request.client.host if request.client else "unknown")
    return f"{pseudonym(username.strip().lower())}:{ip}", ip


def _wait_text(seconds: int) -> str:
    return f"{seconds} 秒" if seconds < 90 else f"{math.ceil(seconds / 60)} 分钟"


def _backoff(failures: int, free: int) -> int:
    """Seconds blocked after the `failures`-th failure: none before `free`, then 30 s doubling
    up to 15 minutes."""
    if failures < free:
        return 0
    return int(min(LOGIN_BACKOFF_MAX_SECONDS, LOGIN_BACKOFF_SECONDS * 2 ** (failures - free)))


def check_login_rate(request: Request, username: str) -> None:
    """Refuse a login attempt (429, Retry-After, Chinese) while its username + address is in
    backoff after repeated failures, while its address is after failing on many accounts, or
    past the attempts one address may make a minute. A stranger elsewhere never blocks an
    account: failures count per username *and* address."""
    pair, ip = _login_keys(request, username)
    limiter.hit("login", [("ip", ip)], LOGIN_LIMITS, message=LOGIN_LIMIT_MESSAGE)
    wait = max(limiter.remaining(f"login:block:{pair}"), limiter.remaining(f"login:block-ip:{ip}"))
    if wait:
        raise AppError(
            429,
            "login_backoff",
            f"密码错误次数太多，请{_wait_text(wait)}后再试；忘记密码请联系管理员重置。",
            {"retry_after": wait},
        )


def record_login_failure(request: Request, username: str) -> None:
    """A wrong username or password: the pair's failures and the address's go up; past the
    free ones the next attempt waits (30 s, 60 s, … 15 min)."""
    pair, ip = _login_keys(request, username)
    failures = limiter.add(f"login:fail:{pair}", LOGIN_FAILURE_MEMORY_SECONDS)
    wait = _backoff(failures, LOGIN_FREE_FAILURES)
    if wait:
        limiter.mark(f"login:block:{pair}", wait)
    spread = limiter.add(f"login:fail-ip:{ip}", LOGIN_FAILURE_MEMORY_SECONDS)
    wait = _backoff(spread, LOGIN_IP_FREE_FAILURES)
    if wait:
        limiter.mark(f"login:block-ip:{ip}", wait)
    log.info("staff login failed (%d in a row for this account and address)", failures)


def record_login_success(request: Request, username: str) -> None:
    """The right password: this pair's failures are forgotten."""
    pair, _ = _login_keys(request, username)
    limiter.forget(f"login:fail:{pair}", f"login:block:{pair}")


def _session_user(request: Request, db: DbSession) -> StaffUser | None:
    raw = request.cookies.get(SESSION_COOKIE)
    if not raw:
        return None
    token = unsign_session(raw)
    if token is None:
        return None
    user = staff_service.resolve_session(db=db, token=token, kind="console")
    if user is not None:
        request.state.session_token = token
    return user


def get_staff(
    request: Request,
    db: DbSession,
    bearer: Annotated[str | None, Depends(oauth2_scheme)] = None,
) -> StaffUser:
    """The staff member calling a /api/v1/staff endpoint, or a 401 `{code, message}`."""
    if bearer:
        user = staff_service.resolve_session(db=db, token=bearer, kind="bearer")
        if user is None:
            raise AppError(401, "unauthorized", "登录已过期或令牌无效，请重新登录。")
        return user
    user = _session_user(request, db)
    if user is None:
        raise AppError(401, "unauthorized", "请先登录。")
    # A browser session on a changing request must carry the CSRF header.
    if request.method not in SAFE_METHODS:
        sent = request.headers.get(CSRF_HEADER, "")
        if not hmac.compare_digest(sent, csrf_for(request.state.session_token)):
            raise AppError(403, "csrf", "页面已过期，请刷新后重试。")
    return user


StaffDep = Annotated[StaffUser, Depends(get_staff)]


def get_console_user(request: Request, db: DbSession) -> StaffUser:
    """The logged-in console user; otherwise a redirect to the login page."""
    user = _session_user(request, db)
    if user is None:
        target = request.url.path
        if request.url.query:
            target += "?" + request.url.query
        location = f"/console/login?next={quote(target, safe='')}"
        if request.headers.get("HX-Request"):
            # htmx follows HX-Redirect instead of swapping the login page into a fragment.
            raise HTTPException(401, headers={"HX-Redirect": location})
        raise HTTPException(303, headers={"Location": location})
    return user


ConsoleUser = Annotated[StaffUser, Depends(get_console_user)]


def check_form_csrf(request: Request, token: str | None) -> None:
    """Reject a console form whose CSRF token does not belong to this session."""
    session_token = getattr(request.state, "session_token", None)
    expected = csrf_for(session_token) if session_token else ""
    if not token or not expected or not hmac.compare_digest(token, expected):
        raise AppError(403, "csrf", "页面已过期，请刷新后重试。")
