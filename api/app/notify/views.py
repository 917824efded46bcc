"""Conversation endpoints the bot calls (service token) and the staff views of the outbox and of
live conversations (takeover, messages, hand back)."""

from __future__ import annotations

from typing import Literal

from fastapi import APIRouter, Query, Response

from app.core.database import DbSession
from app.core.errors import AppError
from app.core.params import RowId
from app.core.security import CallerDep
from app.notify import service
from app.notify.models import Notification, ResidentContact
from app.notify.schemas import (
    ContactIn,
    ConversationDetail,
    ConversationList,
    ConversationMessageRead,
    ConversationSummary,
    HandoffIn,
    HandoffOut,
    NotificationList,
    NotificationRead,
    NotifyIn,
    NotifyOut,
    StaffMessageIn,
    TurnIn,
    TurnOut,
)
from app.staff import roles
from app.staff.auth import StaffDep

router = APIRouter(prefix="/conversations", tags=["conversations"])
staff_router = APIRouter(prefix="/staff", tags=["staff: conversations"])

SERVICE_ONLY_MESSAGE = "此接口仅供智能客服调用。"
MISSING_SENDER_MESSAGE = "缺少会话标识（X-Sender-Id）。"


def _sender(caller: CallerDep) -> str:
    if not caller.is_service:
        raise AppError(403, "service_only", SERVICE_ONLY_MESSAGE)
    if not caller.sender_id:
        raise AppError(422, "missing_sender", MISSING_SENDER_MESSAGE)
    return caller.sender_id


@router.post("/turn", response_model=TurnOut)
def conversation_turn(data: TurnIn, db: DbSession, caller: CallerDep) -> TurnOut:
    """The start of every bot turn: bot, waiting or staff mode, notify choice, feedback due."""
    result = service.turn(db, sender_id=_sender(caller), channel=data.channel, text=data.text)
    return TurnOut(**result)


@router.post("/notify", response_model=NotifyOut)
def conversation_notify(data: NotifyIn, db: DbSession, caller: CallerDep) -> NotifyOut:
    """不用通知我了 / 恢复通知."""
    return NotifyOut(**service.set_notify(db, sender_id=_sender(caller), notify=data.notify))


@router.post("/handoff", response_model=HandoffOut)
def conversation_handoff(data: HandoffIn, db: DbSession, caller: CallerDep) -> HandoffOut:
    """转人工: join the waiting queue in office hours, else learn when a person is there."""
    return HandoffOut(**service.handoff(db, sender_id=_sender(caller), channel=data.channel))


@router.post("/contact", status_code=204)
def conversation_contact(data: ContactIn, db: DbSession, caller: CallerDep) -> Response:
    """The WeChat channel records how to reach this resident (openid stored encrypted)."""
    service.touch_contact(db, sender_id=_sender(caller), channel=data.channel, address=data.openid)
    return Response(status_code=204)


def _notification_read(row: Notification, keys: dict[str, str]) -> NotificationRead:
    read = NotificationRead.model_validate(row)
    read.petition_number = row.petition_number
    read.conversation = keys.get(row.sender_id) if row.sender_id else None
    return read


def _reads(db: DbSession, rows: list[Notification]) -> list[NotificationRead]:
    from sqlalchemy import select

    sender_ids = {r.sender_id for r in rows if r.sender_id}
    keys = {
        c.sender_id: service.conversation_key(c)
        for c in db.scalars(
            select(ResidentContact).where(ResidentContact.sender_id.in_(sender_ids))
        ).all()
    }
    return [_notification_read(r, keys) for r in rows]


@staff_router.get("/notifications", response_model=NotificationList)
def list_notifications(
    db: DbSession,
    user: StaffDep,
    status: Literal["pending", "sending", "delivered", "failed", "skipped"] | None = None,
    limit: int = Query(default=100, ge=1, le=500),
) -> NotificationList:
    """The outbox, newest first; `?status=failed` lists what could not be delivered."""
    roles.require(user, "notification.read")
    rows = list(service.list_notifications(db, status=status, limit=limit))
    return NotificationList(notifications=_reads(db, rows))


@staff_router.post("/notifications/{notification_id}/retry", response_model=NotificationRead)
def retry_notification(notification_id: RowId, db: DbSession, user: StaffDep) -> NotificationRead:
    """Send a failed notification again."""
    roles.require(user, "notification.retry")
    row = service.retry(db, notification_id=notification_id, user=user)
    return _reads(db, [row])[0]


def _summary(contact: ResidentContact) -> ConversationSummary:
    return ConversationSummary(
        key=service.conversation_key(contact),
        channel=contact.channel,
        mode=contact.mode,  # type: ignore[arg-type]
        staff_username=contact.staff_username,
        waiting_since=contact.waiting_since,
        last_inbound_at=contact.last_inbound_at,
        notify=contact.notify,
    )


def _detail(db: DbSession, contact: ResidentContact) -> ConversationDetail:
    messages = [
        ConversationMessageRead(
            at=m.at,
            sender=m.sender,  # type: ignore[arg-type]
            text=m.text,
            staff_username=m.staff_username,
        )
        for m in service.conversation_messages(db, contact.sender_id)
    ]
    return ConversationDetail(**_summary(contact).model_dump(), messages=messages)


@staff_router.get("/conversations", response_model=ConversationList)
def list_conversations(db: DbSession, user: StaffDep) -> ConversationList:
    """Residents waiting for a person first, then those taken over, then recent ones."""
    roles.require(user, "conversation.takeover")
    return ConversationList(conversations=[_summary(c) for c in service.active_conversations(db)])


@staff_router.get("/conversations/{key}", response_model=ConversationDetail)
def get_conversation(key: str, db: DbSession, user: StaffDep) -> ConversationDetail:
    """One conversation and its live messages."""
    roles.require(user, "conversation.takeover")
    return _detail(db, service.contact_by_key(db, key))


@staff_router.post("/conversations/{key}/takeover", response_model=ConversationDetail)
def take_over(key: str, db: DbSession, user: StaffDep) -> ConversationDetail:
    """Take the conversation over: the bot is silent until it is handed back."""
    roles.require(user, "conversation.takeover")
    contact = service.contact_by_key(db, key)
    service.take_over(db, sender_id=contact.sender_id, user=user)
    return _detail(db, contact)


@staff_router.post("/conversations/{key}/messages", response_model=ConversationDetail)
def send_message(
    key: str, data: StaffMessageIn, db: DbSession, user: StaffDep
) -> ConversationDetail:
    """Write to the resident (web chat bubble or WeChat customer-service message)."""
    roles.require(user, "conversation.takeover")
    contact = service.contact_by_key(db, key)
    service.send_staff_message(db, contact=contact, user=user, text=data.text)
    return _detail(db, contact)


@staff_router.post("/conversations/{key}/handback", response_model=ConversationDetail)
def hand_back(key: str, db: DbSession, user: StaffDep) -> ConversationDetail:
    """Give the conversation back to the bot."""
    roles.require(user, "conversation.takeover")
    contact = service.contact_by_key(db, key)
    service.hand_back(db, sender_id=contact.sender_id, user=user)
    return _detail(db, contact)
