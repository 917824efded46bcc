"""Web chat: signed conversation ids, the transcript, and the thin proxy to Rasa's REST channel."""

from __future__ import annotations

import hashlib
import hmac
import logging
import re
import secrets
from dataclasses import dataclass
from typing import Any

from itsdangerous import BadSignature, SignatureExpired, TimestampSigner, URLSafeSerializer
from sqlalchemy import select
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.orm import Session

from app.chat import proxy
from app.chat.models import ChatMessage
from app.core.config import settings
from app.core.database import utcnow
from app.core.errors import AppError
from app.core.ratelimit import limiter
from app.core.security import mask_personal, pseudonym
from app.notify import channels as notify_channels
from app.notify import service as notify_service

log = logging.getLogger("app.chat")

COOKIE_NAME = "fb_chat"
COOKIE_MAX_AGE = 30 * 24 * 3600
MAX_CHARS = 500
HISTORY_LIMIT = 200

RATE_LIMITED_MESSAGE = "您发得太快了，请稍等一分钟再发。如需人工帮助，可以点“转人工”。"
BOT_DOWN_MESSAGE = proxy.BOT_DOWN_MESSAGE
BAD_CONVERSATION_MESSAGE = "会话已失效，请刷新页面重新开始。"
TOO_LONG_MESSAGE = f"消息太长了，请分几次发送（每条最多 {MAX_CHARS} 个字）。"
EMPTY_MESSAGE = "请输入您要咨询的内容。"

_CONVERSATION_ID = re.compile(r"^[A-Za-z0-9_-]{24}$")
_CONTROL_RE = re.compile(r"[\x00-\x08\x0b-\x1f\x7f]")


def _signer() -> TimestampSigner:
    return TimestampSigner(settings.secret_key, salt="fangben.chat.conversation")


def new_conversation() -> tuple[str, str]:
    """A fresh random conversation id and its signed cookie value."""
    conversation_id = secrets.token_urlsafe(18)
    return conversation_id, _signer().sign(conversation_id).decode()


def read_conversation(token: str | None) -> str:
    """The conversation id of a signed cookie value; a missing, forged or stale one is a 403."""
    if not token:
        raise AppError(403, "bad_conversation", BAD_CONVERSATION_MESSAGE)
    try:
        value = _signer().unsign(token, max_age=COOKIE_MAX_AGE).decode()
    except (BadSignature, SignatureExpired, UnicodeDecodeError) as exc:
        raise AppError(403, "bad_conversation", BAD_CONVERSATION_MESSAGE) from exc
    if not _CONVERSATION_ID.match(value):
        raise AppError(403, "bad_conversation", BAD_CONVERSATION_MESSAGE)
    return value


def _digest(purpose: str, conversation_id: str) -> str:
    key = settings.secret_key.encode()
    return hmac.new(key, f"{purpose}:{conversation_id}".encode(), hashlib.sha256).hexdigest()


def transcript_key(conversation_id: str) -> str:
    """The key the transcript is stored under (a keyed digest, so the table leaks no ids)."""
    return _digest("chat", conversation_id)


def rasa_sender_id(conversation_id: str) -> str:
    """The Rasa sender id of a conversation, derived server-side and never shown to browsers."""
    return "web-" + _digest("rasa", conversation_id)[:32]


def neutralize(text: str) -> str:
    """Make typed text plain: a leading "/" (Rasa's intent syntax) becomes a full-width "／"."""
    text = _CONTROL_RE.sub("", text).strip()
    if text.startswith("/"):
        text = "／" + text[1:]
    return text


@dataclass
class Reply:
    """One bot bubble as the browser shows it."""

    text: str
    buttons: list[dict[str, str]]


def _as_dict(message: ChatMessage, conversation_id: str) -> dict[str, Any]:
    return {
        "id": message.id,
        "role": message.role,
        "text": message.text,
        "buttons": [sign_button(conversation_id, b) for b in message.buttons or []],
        "staff_name": message.staff_name,
        "at": message.at.isoformat(),
    }


def list_history(
    *, db: Session, conversation_id: str, after: int | None = None
) -> list[dict[str, Any]]:
    """The stored bubbles of a conversation, oldest first: the last HISTORY_LIMIT, or with
    `after` the (first HISTORY_LIMIT) bubbles newer than the bubble of that id, for polling."""
    key = transcript_key(conversation_id)
    query = select(ChatMessage).where(ChatMessage.conversation == key)
    if after is not None:
        rows = db.scalars(
            query.where(ChatMessage.id > after).order_by(ChatMessage.id).limit(HISTORY_LIMIT)
        ).all()
        return [_as_dict(m, conversation_id) for m in rows]
    rows = db.scalars(query.order_by(ChatMessage.id.desc()).limit(HISTORY_LIMIT)).all()
    return [_as_dict(m, conversation_id) for m in reversed(rows)]


NOTICE_ROLES = frozenset({"notice", "staff"})


def deliver_notice(
    db: Session,
    *,
    transcript_key: str,
    notification_id: int,
    role: str,
    text: str,
    staff_name: str | None = None,
) -> bool:
    """Put a notification's bubble (`notice`: news of a petition, `staff`: a clerk's message)
    into a web-chat transcript once per notification id; True if it was inserted now, False if
    it was already there (deliveries are at least once and two workers may race)."""
    if role not in NOTICE_ROLES:
        raise ValueError(f"role must be one of {sorted(NOTICE_ROLES)}")
    if not transcript_key or len(transcript_key) > 64:
        raise ValueError("transcript_key must be a stored transcript key")
    values = {
        "conversation": transcript_key,
        "role": role,
        "text": mask_personal(text),
        "buttons": None,
        "at": utcnow(),
        "notification_id": int(notification_id),
        "staff_name": mask_personal(staff_name)[:40] if staff_name else None,
    }
    # INSERT … ON CONFLICT DO NOTHING (PostgreSQL and SQLite, the two databases we run on): a
    # concurrent insert of the same id waits for the other transaction, then does nothing if
    # it committed, so a race leaves one row and raises nothing.
    upsert = pg_insert if db.get_bind().dialect.name == "postgresql" else sqlite_insert
    stmt = (
        upsert(ChatMessage)
        .values(**values)
        .on_conflict_do_nothing(index_elements=["notification_id"])
        .returning(ChatMessage.id)
    )
    return db.execute(stmt).scalar_one_or_none() is not None


# The notifier delivers into the web chat through this (it sits below the chat area).
notify_channels.register_webchat(deliver_notice)


def _payload_serializer(conversation_id: str) -> URLSafeSerializer:
    return URLSafeSerializer(
        settings.secret_key, salt="fangben.chat.payload." + transcript_key(conversation_id)
    )


def sign_button(conversation_id: str, button: dict[str, str]) -> dict[str, str]:
    """A button as the browser gets it: its payload sealed to this conversation."""
    token = _payload_serializer(conversation_id).dumps([button["payload"], button["title"]])
    return {"title": button["title"], "payload": str(token)}


def _open_button(conversation_id: str, token: str) -> tuple[str, str] | None:
    """(payload, title) of a chip this conversation was offered; None for anything else."""
    try:
        payload, title = _payload_serializer(conversation_id).loads(token)
    except (BadSignature, ValueError, TypeError):
        return None
    return str(payload), str(title)


def _clean_buttons(raw: Any) -> list[dict[str, str]]:
    buttons: list[dict[str, str]] = []
    for b in raw or []:
        if isinstance(b, dict) and b.get("title"):
            title = str(b["title"])[:40]
            buttons.append({"title": title, "payload": str(b.get("payload") or title)[:200]})
    return buttons[:10]


def _is_takeover(reply: dict[str, Any]) -> bool:
    custom = reply.get("custom")
    return isinstance(custom, dict) and custom.get("takeover") is True


def _touch_contact(db: Session, *, sender_id: str, address: str) -> str:
    """Record that this resident is reachable in the web chat (the notifier delivers there);
    the conversation's mode (`bot`, `waiting`, `staff`)."""
    contact = notify_service.touch_contact(
        db, sender_id=sender_id, channel="webchat", address=address
    )
    return contact.mode


def _count(conversation_id: str, ip: str) -> None:
    key = transcript_key(conversation_id)
    limiter.hit(
        "chat",
        [("conversation", key[:32]), ("ip", pseudonym(ip))],
        {"conversation": settings.chat_rate_per_conversation, "ip": settings.chat_rate_per_ip},
        message=RATE_LIMITED_MESSAGE,
    )


def _outgoing(conversation_id: str, text: str, payload: str | None) -> tuple[str, str]:
    """(what Rasa gets, what the bubble shows) for a typed message or a chip tap."""
    shown = _CONTROL_RE.sub("", text).strip()
    if len(shown) > MAX_CHARS:
        raise AppError(422, "too_long", TOO_LONG_MESSAGE)
    if not shown:
        raise AppError(422, "empty", EMPTY_MESSAGE)
    outgoing = neutralize(shown)
    if payload is not None:
        # A chip tap: the payload is used only when the bot offered it to this conversation
        # (sealed by `sign_button`), so no one can smuggle an intent in through it.
        opened = _open_button(conversation_id, payload)
        if opened is not None:
            outgoing, shown = opened
    return outgoing, shown


def _store(
    db: Session, conversation_id: str, shown: str, replies: list[dict[str, Any]]
) -> dict[str, Any]:
    """Store the resident's bubble and the bot's; the answer of the send endpoint."""
    key = transcript_key(conversation_id)
    user = ChatMessage(conversation=key, role="user", text=mask_personal(shown), at=utcnow())
    mode = _touch_contact(db, sender_id=rasa_sender_id(conversation_id), address=key)
    db.add(user)
    stored: list[ChatMessage] = []
    # While a clerk has taken the conversation over the bot says nothing (the REST channel
    # drops its custom marker {"takeover": true}; dropped here too): not an error, and the
    # page says a staff member is answering.
    takeover = mode == "staff" or any(_is_takeover(reply) for reply in replies)
    for reply in replies:
        if "custom" in reply:
            continue
        buttons = _clean_buttons(reply.get("buttons"))
        body = str(reply.get("text") or "")
        if not body and not buttons:
            continue
        stored.append(
            ChatMessage(
                conversation=key, role="bot", text=mask_personal(body), buttons=buttons or None
            )
        )
    db.add_all(stored)
    db.flush()
    return {
        "user": _as_dict(user, conversation_id),
        "replies": [_as_dict(m, conversation_id) for m in stored],
        "takeover": takeover,
    }


async def send(
    *, db: Session, conversation_id: str, text: str, payload: str | None, ip: str
) -> dict[str, Any]:
    """Store the resident's message, pass it to Rasa, store and return the bot's replies.

    Beyond `CHAT_MAX_IN_FLIGHT` messages with Rasa this answers at once with 429 "稍等"
    (app/chat/proxy.py says why); no thread is held while Rasa thinks."""
    if not proxy.in_flight.enter():
        raise proxy.busy()
    try:
        await proxy.in_chat_thread(_count, conversation_id, ip)
        outgoing, shown = _outgoing(conversation_id, text, payload)
        # Rasa before any database work: no connection is held while the bot thinks (its
        # actions call this api), and when Rasa is down nothing is stored and the resident
        # sends again.
        replies = await proxy.call_rasa(rasa_sender_id(conversation_id), outgoing)
        return await proxy.in_chat_thread(_store, db, conversation_id, shown, replies)
    finally:
        proxy.in_flight.leave()
