"""The staff console at /console: server-rendered Chinese pages (Jinja2, htmx, no build step)."""

from __future__ import annotations

import functools
from collections.abc import Callable
from datetime import date, datetime
from pathlib import Path
from typing import Annotated, Any
from urllib.parse import quote

from fastapi import APIRouter, File, Form, Query, Request, UploadFile
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from fastapi.staticfiles import StaticFiles
from fastapi.templating import Jinja2Templates
from itsdangerous import BadSignature, URLSafeSerializer

from app.audit import service as audit
from app.core.config import settings
from app.core.database import DbSession
from app.core.errors import AppError
from app.core.workdays import SHANGHAI, today_shanghai
from app.dashboard import charts
from app.dashboard import service as dashboard_service
from app.petition import staff_service, workflow
from app.petition.models import STATUS_LABELS
from app.staff import ledger_upload, projects, roles
from app.staff import service as staff_service_accounts
from app.staff.auth import (
    LOGIN_CSRF_COOKIE,
    SESSION_COOKIE,
    ConsoleUser,
    check_form_csrf,
    check_login_rate,
    csrf_for,
    new_login_csrf,
    sign_session,
    unsign_session,
)
from app.staff.departments import blocker_names, department_name, departments
from app.staff.models import ROLE_LABELS, StaffUser
from app.status.models import TRANSFER_LABELS

HERE = Path(__file__).resolve().parent
STATIC_DIR = HERE / "static"
templates = Jinja2Templates(directory=str(HERE / "templates"))
router = APIRouter(prefix="/console", include_in_schema=False)
static_files = StaticFiles(directory=str(STATIC_DIR))

FLASH_COOKIE = "fb_flash"
FIELD_LABELS = {
    "status": "状态",
    "departments": "承办部门",
    "department": "部门",
    "closure_due": "办结期限",
    "outcome": "办理结果",
    "satisfaction": "群众评价",
    "version": "版本",
    "answer": "答复",
    "answer_due": "答复期限",
    "note": "备注",
    "text": "内容",
    "action": "操作",
    "notice_start": "公示开始",
    "notice_earliest_end": "公示最早结束",
    "code": "卡点",
    "expected_resolution_date": "预计化解日期",
    "role": "角色",
    "active": "启用",
    "note_id": "备注编号",
    "name": "项目名称",
    "aliases": "别名",
    "district": "区县",
    "address": "地址",
    "developer": "开发企业",
    "unit_count": "总套数",
    "initial_registration_done": "首次登记完成",
    "blockers": "卡点",
    "password": "密码",
}
CHANNEL_LABELS = {
    "wechat": "微信公众号",
    "webchat": "网页聊天",
    "bot": "智能客服",
    "phone": "电话",
    "visit": "来访",
    "console": "工作台录入",
}
BLOCKER_STATUS_LABELS = {"open": "未化解", "resolved": "已化解"}


def _fmt_dt(value: datetime | None) -> str:
    if value is None:
        return ""
    if value.tzinfo is None:
        from datetime import UTC

        value = value.replace(tzinfo=UTC)
    return value.astimezone(SHANGHAI).strftime("%Y-%m-%d %H:%M")


def _fmt_value(key: str, value: Any) -> str:
    if value is None or value == "":
        return "—"
    if key == "status" and isinstance(value, str):
        return STATUS_LABELS.get(value) or BLOCKER_STATUS_LABELS.get(value, value)
    if key == "blockers" and isinstance(value, list):
        names = blocker_names()
        return (
            "、".join(
                names.get(str(b.get("code")), str(b.get("code"))) if isinstance(b, dict) else str(b)
                for b in value
            )
            or "无"
        )
    if key == "aliases" and isinstance(value, list):
        return "、".join(str(v) for v in value) or "—"
    if key == "satisfaction" and isinstance(value, str):
        return workflow.SATISFACTION_LABELS.get(value, value)
    if key in ("department",) and isinstance(value, str):
        return department_name(value)
    if key == "departments" and isinstance(value, list):
        return "、".join(department_name(v) for v in value) or "—"
    if key == "code" and isinstance(value, str):
        return blocker_names().get(value, value)
    if key == "action" and isinstance(value, str):
        move = workflow.ACTIONS.get(value)
        return move.label if move else value
    if isinstance(value, dict):
        return "；".join(f"{department_name(k)} {v}" for k, v in value.items())
    if value is True:
        return "是"
    if value is False:
        return "否"
    return str(value)


def _changes(
    before: dict[str, Any] | None, after: dict[str, Any] | None
) -> list[tuple[str, str, str]]:
    keys = list(dict.fromkeys([*(before or {}), *(after or {})]))
    out = []
    for key in keys:
        if key == "version":
            continue
        b, a = (before or {}).get(key), (after or {}).get(key)
        if before is not None and b == a:
            continue
        out.append(
            (FIELD_LABELS.get(key, key), _fmt_value(key, b) if before else "", _fmt_value(key, a))
        )
    return out


templates.env.filters["dt"] = _fmt_dt
templates.env.globals.update(
    STATUS_LABELS=STATUS_LABELS,
    CHANNEL_LABELS=CHANNEL_LABELS,
    ROLE_LABELS=ROLE_LABELS,
    SATISFACTION_LABELS=workflow.SATISFACTION_LABELS,
    SENDER_LABELS={"resident": "居民", "bot": "机器人", "staff": "工作人员"},
    TRANSFER_LABELS=TRANSFER_LABELS,
    department_name=department_name,
    action_label=audit.action_label,
    changes=_changes,
    can=roles.can,
    charts=charts.CHARTS,
)


def _flash_signer() -> URLSafeSerializer:
    return URLSafeSerializer(settings.secret_key, salt="console-flash")


def _redirect(url: str, flash: str | None = None) -> RedirectResponse:
    response = RedirectResponse(url, status_code=303)
    if flash:
        response.set_cookie(
            FLASH_COOKIE,
            str(_flash_signer().dumps(flash)),
            max_age=60,
            httponly=True,
            samesite="lax",
            path="/console",
        )
    return response


def _page(
    request: Request,
    name: str,
    user: StaffUser | None,
    status_code: int = 200,
    error: str | None = None,
    **context: Any,
) -> HTMLResponse:
    flash = None
    raw = request.cookies.get(FLASH_COOKIE)
    if raw:
        try:
            flash = _flash_signer().loads(raw)
        except BadSignature:
            flash = None
    token = getattr(request.state, "session_token", None)
    response = templates.TemplateResponse(
        request,
        name,
        {
            "user": user,
            "csrf": csrf_for(token) if token else "",
            "flash": flash,
            "error": error,
            "today": today_shanghai(),
            **context,
        },
        status_code=status_code,
    )
    if raw:
        response.delete_cookie(FLASH_COOKIE, path="/console")
    return response


def _attempt(db: DbSession, action: Callable[[], Any]) -> str | None:
    """Run a change; on a refused change roll everything back and return its Chinese message."""
    try:
        action()
    except AppError as exc:
        db.rollback()
        return exc.message
    return None


def html_errors(view: Callable[..., Any]) -> Callable[..., Any]:
    """Show a refused page (403/404) as a console page instead of JSON."""

    @functools.wraps(view)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return view(*args, **kwargs)
        except AppError as exc:
            request, user = kwargs.get("request"), kwargs.get("user")
            if request is None or exc.status_code not in (403, 404):
                raise
            return _page(
                request, "error.html", user, exc.status_code, exc.message, status=exc.status_code
            )

    return wrapper


def _safe_next(target: str | None) -> str:
    if target and target.startswith("/console") and "//" not in target:
        return target
    return "/console"


# ---------------------------------------------------------------- login


@router.get("/login", response_class=HTMLResponse)
def login_page(request: Request, next: str | None = None) -> HTMLResponse:
    """The login form (with a double-submit CSRF token)."""
    token = new_login_csrf()
    response = _page(request, "login.html", None, login_csrf=token, next=_safe_next(next))
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
        return _login_error(request, exc.message, 429, next)
    user = staff_service_accounts.authenticate(db=db, username=username, password=password)
    if user is None:
        return _login_error(request, "用户名或密码不对。", 401, next)
    secret, _ = staff_service_accounts.create_session(db=db, user=user, kind="console")
    response = _redirect(_safe_next(next))
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
    response = _page(
        request, "login.html", None, status, message, login_csrf=token, next=_safe_next(next)
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
    response = _redirect("/console/login", "已退出登录。")
    response.delete_cookie(SESSION_COOKIE, path="/")
    return response


# ---------------------------------------------------------------- petitions


@router.get("", response_class=HTMLResponse)
@router.get("/", response_class=HTMLResponse)
def home(user: ConsoleUser) -> Response:
    """Officers land on their open assignments; everyone else on the petition list."""
    return _redirect("/console/my" if user.role == "officer" else "/console/petitions")


@router.get("/my", response_class=HTMLResponse)
def my_assignments(request: Request, db: DbSession, user: ConsoleUser) -> HTMLResponse:
    """An officer's open assignments, due first."""
    rows = (
        staff_service.list_open_assignments(db=db, department=user.department)
        if user.department
        else []
    )
    return _page(request, "my.html", user, rows=rows)


@router.get("/petitions", response_class=HTMLResponse)
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
    return _page(
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
) -> HTMLResponse:
    petition = staff_service.get_for(db=db, user=user, ref=ref)
    data = staff_service.detail(db=db, user=user, petition=petition)
    trail = staff_service.audit_trail(db=db, petition=petition)
    assigned = {a["department"] for a in data["assignments"]}
    return _page(
        request,
        "petition.html",
        user,
        status_code,
        error,
        p=data,
        trail=trail,
        actions=[workflow.ACTIONS[a] for a in data["allowed_actions"]],
        free_departments={c: n for c, n in departments().items() if c not in assigned},
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
) -> Response:
    check_form_csrf(request, csrf_token or request.headers.get("X-CSRF-Token"))
    petition = staff_service.get_for(db=db, user=user, ref=ref)
    number = petition.number
    error = _attempt(db, lambda: change(petition))
    if error:
        return _petition_page(request, db, user, number, error, 409)
    return _redirect(f"/console/petitions/{number}", done)


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
    csrf_token: Annotated[str, Form()] = "",
) -> Response:
    """Record a department's written answer."""
    return _petition_post(
        request,
        db,
        user,
        ref,
        csrf_token,
        lambda p: staff_service.answer(
            db=db, user=user, petition=p, text=answer, version=version, department=department
        ),
        "答复已保存。",
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
    )


@router.post("/petitions/{ref}/close")
def petition_close(
    ref: str,
    request: Request,
    db: DbSession,
    user: ConsoleUser,
    version: Annotated[int, Form()],
    outcome: Annotated[str, Form(max_length=5000)] = "",
    satisfaction: Annotated[str, Form(max_length=16)] = "",
    csrf_token: Annotated[str, Form()] = "",
) -> Response:
    """Close the case with outcome and satisfaction."""
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
            satisfaction=satisfaction,
            version=version,
        ),
        "已办结。",
    )


# ---------------------------------------------------------------- projects


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
    return _page(request, "projects.html", user, rows=rows, q=q or "", district=district or "")


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
    return _page(
        request,
        "project.html",
        user,
        status_code,
        error,
        project=project,
        units=projects.unit_counts(db=db, project=project),
        trail=projects.project_audit(db=db, project=project),
        blocker_names=blocker_names(),
        free_blockers={c: n for c, n in blocker_names().items() if c not in used},
        departments=departments(),
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
    error = _attempt(db, lambda: change(project))
    if error:
        return _project_page(request, db, user, code, error, 409)
    return _redirect(f"/console/projects/{quote(code)}", done)


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


# ---------------------------------------------------------------- ledger


@router.get("/ledger", response_class=HTMLResponse)
@html_errors
def ledger_page(request: Request, user: ConsoleUser) -> HTMLResponse:
    """The ledger upload form."""
    roles.require(user, "ledger.import")
    return _page(request, "ledger.html", user)


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
        return _page(request, "ledger.html", user, exc.status_code, exc.message)
    if errors:
        db.rollback()
        return _page(
            request,
            "ledger.html",
            user,
            422,
            f"台账有 {len(errors)} 处错误，未导入任何数据。请改正后重新上传。",
            errors=errors,
            names=names,
        )
    return _page(request, "ledger.html", user, report=report, names=names)


# ---------------------------------------------------------------- dashboard


@router.get("/dashboard", response_class=HTMLResponse)
@html_errors
def dashboard(request: Request, db: DbSession, user: ConsoleUser) -> HTMLResponse:
    """Registration and petition figures with server-rendered SVG charts."""
    roles.require(user, "dashboard.read")
    d = dashboard_service.build(db=db)
    svgs = {name: charts.render(name, d) for name in charts.CHARTS}
    return _page(request, "dashboard.html", user, d=d, svgs=svgs)


@router.get("/dashboard/{name}.svg")
def dashboard_chart(name: str, db: DbSession, user: ConsoleUser) -> Response:
    """One chart as a downloadable SVG file."""
    roles.require(user, "dashboard.read")
    if name not in charts.CHARTS:
        raise AppError(404, "not_found", "没有这张图表。")
    d = dashboard_service.build(db=db)
    return Response(
        charts.render(name, d),
        media_type="image/svg+xml",
        headers={"Content-Disposition": f'attachment; filename="{name}-{d.today:%Y%m%d}.svg"'},
    )


@router.get("/dashboard.{fmt}")
def dashboard_export(fmt: str, db: DbSession, user: ConsoleUser) -> Response:
    """The same figures as CSV or XLSX."""
    roles.require(user, "dashboard.read")
    d = dashboard_service.build(db=db)
    if fmt == "csv":
        body, media = dashboard_service.to_csv(d), "text/csv; charset=utf-8"
    elif fmt == "xlsx":
        body = dashboard_service.to_xlsx(d)
        media = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"
    else:
        raise AppError(404, "not_found", "只能导出 CSV 或 XLSX。")
    return Response(
        body,
        media_type=media,
        headers={"Content-Disposition": f'attachment; filename="dashboard-{d.today:%Y%m%d}.{fmt}"'},
    )


# ---------------------------------------------------------------- accounts


@router.get("/users", response_class=HTMLResponse)
@html_errors
def users_page(request: Request, db: DbSession, user: ConsoleUser) -> HTMLResponse:
    """Accounts (admin)."""
    roles.require(user, "users.manage")
    return _page(
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
    error = _attempt(
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
    return _page(
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
            return _redirect("/console/users", "不能停用自己的账号。")
        kwargs["active"] = False
    elif op == "enable":
        kwargs["active"] = True
    elif op == "reset":
        password = staff_service_accounts.generate_password()
        kwargs["password"] = password
    else:
        raise AppError(422, "bad_op", "没有这种操作。")
    staff_service_accounts.update_user(db=db, user=target, actor=f"staff:{user.username}", **kwargs)
    return _page(
        request,
        "users.html",
        user,
        users=staff_service_accounts.list_users(db=db),
        departments=departments(),
        new_password=(target.username, password) if password else None,
    )
