"""Console screens where a person steps in: residents waiting for one, a live conversation a
clerk takes over (the bot stays silent) and hands back, and notifications that could not be
delivered."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Form, Query, Request
from fastapi.responses import HTMLResponse, Response
from sqlalchemy import select

from app.chat.models import ChatMessage
from app.console.common import attempt, html_errors, redirect, render
from app.core.database import DbSession
from app.notify import service as notify
from app.notify.models import ResidentContact, decrypt_address
from app.petition.models import Petition
from app.staff import roles
from app.staff.auth import ConsoleUser, check_form_csrf

router = APIRouter(prefix="/console", include_in_schema=False)

MODE_LABELS = {"waiting": "等待人工", "staff": "人工接待中", "bot": "机器人接待"}
NOTIFICATION_STATUS_LABELS = {
    "pending": "待发送",
    "sending": "发送中",
    "delivered": "已送达",
    "failed": "发送失败",
    "skipped": "未发送（无联系方式或已退订）",
}
HISTORY_TURNS = 30


def _petitions_of(db: DbSession, sender_id: str) -> list[Petition]:
    return list(
        db.scalars(
            select(Petition)
            .where(Petition.sender_id == sender_id)
            .order_by(Petition.id.desc())
            .limit(10)
        )
    )


def _chat_history(db: DbSession, contact: ResidentContact) -> list[dict[str, Any]]:
    """The web chat's own transcript (already masked) before and during the takeover."""
    if contact.channel != "webchat":
        return []
    key = decrypt_address(contact.address_enc)
    if not key:
        return []
    rows = db.scalars(
        select(ChatMessage)
        .where(ChatMessage.conversation == key)
        .order_by(ChatMessage.id.desc())
        .limit(HISTORY_TURNS)
    ).all()
    who = {"user": "resident", "bot": "bot", "notice": "bot", "staff": "staff"}
    return [
        {
            "at": m.at,
            "sender": who.get(m.role, m.role),
            "text": m.text,
            "notice": m.role == "notice",
        }
        for m in reversed(rows)
    ]


def _messages(db: DbSession, contact: ResidentContact) -> list[dict[str, Any]]:
    history = _chat_history(db, contact)
    if history:
        return history
    return [
        {"at": m.at, "sender": m.sender, "text": m.text, "notice": False}
        for m in notify.conversation_messages(db, contact.sender_id, limit=HISTORY_TURNS)
    ]


@router.get("/conversations", response_class=HTMLResponse)
@html_errors
def conversations(request: Request, db: DbSession, user: ConsoleUser) -> HTMLResponse:
    """Residents waiting for a person (longest first), those taken over, recent ones."""
    roles.require(user, "conversation.takeover")
    rows = notify.active_conversations(db)
    return render(
        request,
        "conversations.html",
        user,
        rows=rows,
        MODE_LABELS=MODE_LABELS,
        waiting=sum(1 for r in rows if r.mode == "waiting"),
    )


@router.get("/conversations/badge", response_class=HTMLResponse)
def waiting_badge(db: DbSession, user: ConsoleUser) -> HTMLResponse:
    """The nav badge: how many residents wait for a person now (refreshed every 15 s)."""
    if not roles.can(user, "conversation.takeover"):
        return HTMLResponse("")
    n = sum(1 for c in notify.active_conversations(db) if c.mode == "waiting")
    label = f' <span class="tag red" title="{n} 位群众在等待人工">{n}</span>' if n else ""
    return HTMLResponse(label, headers={"Cache-Control": "no-store"})


def _conversation_page(
    request: Request, db: DbSession, user: Any, key: str, error: str | None = None
) -> HTMLResponse:
    contact = notify.contact_by_key(db, key)
    return render(
        request,
        "conversation.html",
        user,
        409 if error else 200,
        error,
        c=contact,
        key=key,
        messages=_messages(db, contact),
        petitions=_petitions_of(db, contact.sender_id),
        MODE_LABELS=MODE_LABELS,
        mine=contact.mode == "staff" and contact.staff_username == user.username,
    )


@router.get("/conversations/{key}", response_class=HTMLResponse)
@html_errors
def conversation(key: str, request: Request, db: DbSession, user: ConsoleUser) -> HTMLResponse:
    """One live conversation, with take over / write / hand back."""
    roles.require(user, "conversation.takeover")
    return _conversation_page(request, db, user, key)


@router.get("/conversations/{key}/messages", response_class=HTMLResponse)
@html_errors
def conversation_messages(
    key: str, request: Request, db: DbSession, user: ConsoleUser
) -> HTMLResponse:
    """The message list alone (the page refreshes it every few seconds)."""
    roles.require(user, "conversation.takeover")
    contact = notify.contact_by_key(db, key)
    return render(request, "conversation_messages.html", user, messages=_messages(db, contact))


def _post(
    request: Request, db: DbSession, user: Any, key: str, csrf_token: str, change: Any, done: str
) -> Response:
    check_form_csrf(request, csrf_token)
    roles.require(user, "conversation.takeover")
    contact = notify.contact_by_key(db, key)
    error = attempt(db, lambda: change(contact))
    if error:
        return _conversation_page(request, db, user, key, error)
    db.commit()
    return redirect(f"/console/conversations/{key}", done)


@router.post("/conversations/{key}/takeover")
def conversation_takeover(
    key: str,
    request: Request,
    db: DbSession,
    user: ConsoleUser,
    csrf_token: Annotated[str, Form()] = "",
) -> Response:
    """Take the conversation: from now on the bot stays silent for this resident."""
    return _post(
        request,
        db,
        user,
        key,
        csrf_token,
        lambda c: notify.take_over(db, sender_id=c.sender_id, user=user),
        "已接管，机器人暂停回复。请在下方给群众回复。",
    )


@router.post("/conversations/{key}/messages")
def conversation_send(
    key: str,
    request: Request,
    db: DbSession,
    user: ConsoleUser,
    text: Annotated[str, Form(max_length=1000)] = "",
    csrf_token: Annotated[str, Form()] = "",
) -> Response:
    """Write to the resident (web chat or WeChat customer-service message)."""
    return _post(
        request,
        db,
        user,
        key,
        csrf_token,
        lambda c: notify.send_staff_message(db, contact=c, user=user, text=text),
        "已发送。",
    )


@router.post("/conversations/{key}/handback")
def conversation_handback(
    key: str,
    request: Request,
    db: DbSession,
    user: ConsoleUser,
    csrf_token: Annotated[str, Form()] = "",
) -> Response:
    """Give the conversation back to the bot."""
    return _post(
        request,
        db,
        user,
        key,
        csrf_token,
        lambda c: notify.hand_back(db, sender_id=c.sender_id, user=user),
        "已交还机器人。",
    )


@router.get("/notifications", response_class=HTMLResponse)
@html_errors
def notifications(
    request: Request,
    db: DbSession,
    user: ConsoleUser,
    status: Annotated[str, Query(max_length=16)] = "failed",
) -> HTMLResponse:
    """Notifications by status; the undeliverable ones first of all, with 重发."""
    roles.require(user, "notification.read")
    if status not in NOTIFICATION_STATUS_LABELS:
        status = "failed"
    rows = notify.list_notifications(db, status=status)
    return render(
        request,
        "notifications.html",
        user,
        rows=rows,
        status=status,
        STATUS=NOTIFICATION_STATUS_LABELS,
    )


@router.post("/notifications/{notification_id}/retry")
def notification_retry(
    notification_id: int,
    request: Request,
    db: DbSession,
    user: ConsoleUser,
    csrf_token: Annotated[str, Form()] = "",
) -> Response:
    """Send an undeliverable notification again."""
    check_form_csrf(request, csrf_token)
    roles.require(user, "notification.retry")
    error = attempt(db, lambda: notify.retry(db, notification_id=notification_id, user=user))
    if error:
        return redirect("/console/notifications", error)
    db.commit()
    return redirect("/console/notifications", "已重新排队发送。")
