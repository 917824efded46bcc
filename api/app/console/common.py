"""What every console screen shares: templates, formatting, flash messages, error pages."""

from __future__ import annotations

import functools
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

from fastapi import Request
from fastapi.responses import HTMLResponse, RedirectResponse
from fastapi.templating import Jinja2Templates
from itsdangerous import BadSignature, URLSafeSerializer
from sqlalchemy.orm import Session, object_session

from app.audit import service as audit
from app.audit.models import AuditLog
from app.core.config import settings
from app.core.database import DbSession
from app.core.errors import AppError
from app.core.workdays import SHANGHAI, today_shanghai
from app.dashboard import charts
from app.petition import workflow
from app.petition.models import STATUS_LABELS
from app.policy.departments import blocker_names, department_name
from app.staff import roles
from app.staff import service as staff_accounts
from app.staff.auth import (
    csrf_for,
)
from app.staff.models import ROLE_LABELS, StaffUser
from app.status.models import TRANSFER_LABELS

HERE = Path(__file__).resolve().parent
STATIC_DIR = HERE / "static"
templates = Jinja2Templates(directory=str(HERE / "templates"))

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
    "satisfaction_source": "评价来源",
    "resident_text": "给信访人的文字",
    "published": "已发给信访人",
    "review_due": "复查期限",
    "petitions": "信访件",
    "skipped": "未处理",
    "case": "并单",
    "project": "项目",
    "channel": "来源",
    "consent": "本人同意",
    "raised_by": "提出人",
    "content": "异议内容",
    "received_on": "收到日期",
    "court_document": "法院文书",
    "document_on": "文书日期",
    "document_number": "确认书文号",
    "confirmed_on": "确认书日期",
    "kind": "会议类型",
    "reason": "理由",
    "decision": "会议决定",
    "decided_on": "会议日期",
    "overdue_departments": "超期部门",
    "supervision": "督办转至",
    "objections_to_court": "转法院的异议",
}
SATISFACTION_SOURCE_LABELS = {"resident": "居民在对话中评价", "clerk_phone": "电话回访"}
CHANNEL_LABELS = {
    "wechat": "微信公众号",
    "webchat": "网页聊天",
    "bot": "智能客服",
    "phone": "电话",
    "visit": "来访",
    "console": "工作台录入",
}
BLOCKER_STATUS_LABELS = {"open": "未化解", "resolved": "已化解"}


def fmt_dt(value: datetime | None) -> str:
    if value is None:
        return ""
    if value.tzinfo is None:
        from datetime import UTC

        value = value.replace(tzinfo=UTC)
    return value.astimezone(SHANGHAI).strftime("%Y-%m-%d %H:%M")


def fmt_value(key: str, value: Any) -> str:
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
    if key in ("aliases", "petitions", "skipped") and isinstance(value, list):
        return "、".join(str(v) for v in value) or "—"
    if key == "satisfaction_source" and isinstance(value, str):
        return SATISFACTION_SOURCE_LABELS.get(value, value)
    if key == "satisfaction" and isinstance(value, str):
        return workflow.SATISFACTION_LABELS.get(value, value)
    if key == "channel" and isinstance(value, str):
        return CHANNEL_LABELS.get(value, value)
    if key == "kind" and isinstance(value, str):
        return {"general": "一般情形", "special": "特殊情形"}.get(value, value)
    if key == "overdue_departments" and isinstance(value, list):
        return "、".join(department_name(str(v)) for v in value) or "—"
    if key == "objections_to_court" and isinstance(value, list):
        return f"{len(value)} 条"
    if key in ("department", "supervision") and isinstance(value, str):
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


def changes_of(
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
            (FIELD_LABELS.get(key, key), fmt_value(key, b) if before else "", fmt_value(key, a))
        )
    return out


ACTOR_KINDS = {"resident": "信访人", "system": "系统", "trainer": "训练程序", "cli": "命令行"}


def actor_label(actor: str, names: dict[str, str] | None = None) -> str:
    """An audit actor as people read it: a staff member's display name, 信访人（电话）, 系统."""
    kind, _, who = actor.partition(":")
    if kind == "staff":
        return (names or {}).get(who) or who
    if kind == "resident":
        channel = CHANNEL_LABELS.get(who, "")
        return f"信访人（{channel}）" if channel else "信访人"
    return ACTOR_KINDS.get(kind, actor)


def entry_label(action: str, after: dict[str, Any] | None) -> str:
    """An audit row's action in words: a state move is named by its button (督办, 开始公示)."""
    if action == "petition.transition" and after and after.get("action") in workflow.ACTIONS:
        return workflow.ACTIONS[str(after["action"])].label
    return audit.action_label(action)


@dataclass(frozen=True)
class AuditEntry:
    """An audit row as the console shows it: who by name, what in words."""

    at: datetime
    actor: str
    label: str
    before: dict[str, Any] | None
    after: dict[str, Any] | None


def audit_entries(db: Session, rows: Sequence[AuditLog]) -> list[AuditEntry]:
    """Audit rows newest first, staff by display name (one query), moves by their button."""
    names = staff_accounts.display_names(
        db=db, usernames=[r.actor.partition(":")[2] for r in rows if r.actor.startswith("staff:")]
    )
    return [
        AuditEntry(
            r.at, actor_label(r.actor, names), entry_label(r.action, r.after), r.before, r.after
        )
        for r in sorted(rows, key=lambda r: (r.at, r.id), reverse=True)
    ]


templates.env.filters["dt"] = fmt_dt
templates.env.globals.update(
    STATUS_LABELS=STATUS_LABELS,
    CHANNEL_LABELS=CHANNEL_LABELS,
    ROLE_LABELS=ROLE_LABELS,
    SATISFACTION_LABELS=workflow.SATISFACTION_LABELS,
    SENDER_LABELS={"resident": "居民", "bot": "机器人", "staff": "工作人员"},
    TRANSFER_LABELS=TRANSFER_LABELS,
    department_name=department_name,
    action_label=audit.action_label,
    entry_label=entry_label,
    actor_label=actor_label,
    changes=changes_of,
    can=roles.can,
    charts=charts.CHARTS,
)


def flash_signer() -> URLSafeSerializer:
    return URLSafeSerializer(settings.secret_key, salt="console-flash")


def redirect(url: str, flash: str | None = None) -> RedirectResponse:
    response = RedirectResponse(url, status_code=303)
    if flash:
        response.set_cookie(
            FLASH_COOKIE,
            str(flash_signer().dumps(flash)),
            max_age=60,
            httponly=True,
            samesite="lax",
            path="/console",
        )
    return response


def _inbox_unread(user: StaffUser | None) -> int:
    """The header badge: the user's unread reminders, one COUNT in the request's session."""
    if user is None:
        return 0
    session = object_session(user)
    if session is None:
        return 0
    from app.inbox.service import unread_count

    return unread_count(session, user.id)


def render(
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
            flash = flash_signer().loads(raw)
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
            "inbox_unread": _inbox_unread(user),
            **context,
        },
        status_code=status_code,
    )
    if raw:
        response.delete_cookie(FLASH_COOKIE, path="/console")
    return response


def attempt(db: DbSession, action: Callable[[], Any]) -> str | None:
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
            return render(
                request, "error.html", user, exc.status_code, exc.message, status=exc.status_code
            )

    return wrapper


def safe_next(target: str | None) -> str:
    if target and target.startswith("/console") and "//" not in target:
        return target
    return "/console"
