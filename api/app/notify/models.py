"""Resident contacts, the notification outbox and the live conversation of a takeover."""

from __future__ import annotations

import base64
import functools
from datetime import datetime

from cryptography.fernet import Fernet, InvalidToken
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.kdf.hkdf import HKDF
from sqlalchemy import Boolean, DateTime, ForeignKey, Index, Integer, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from app.core.config import settings
from app.core.database import Base, utcnow

CHANNELS = ("webchat", "wechat")
MODES = ("bot", "waiting", "staff")
STATUSES = ("pending", "sending", "delivered", "failed", "skipped")
KINDS = ("state", "answer", "closed", "staff_message", "review")


class ResidentContact(Base):
    """How to reach one resident (one row per Rasa sender id) and who is talking to them."""

    __tablename__ = "resident_contact"
    __table_args__ = (Index("ix_resident_contact_mode", "mode", "waiting_since"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    sender_id: Mapped[str] = mapped_column(String(128), unique=True)
    # "webchat" or "wechat" ("bot" for a channel the api cannot write to).
    channel: Mapped[str] = mapped_column(String(16))
    # Fernet token of the transcript key (web chat) or the openid (WeChat).
    address_enc: Mapped[str | None] = mapped_column(Text, nullable=True)
    last_inbound_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    notify: Mapped[bool] = mapped_column(Boolean, default=True)
    mode: Mapped[str] = mapped_column(String(16), default="bot")
    staff_username: Mapped[str | None] = mapped_column(String(64), nullable=True)
    waiting_since: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    # For the maintainers' quality figures (containment, transfer rate): no text, only counts.
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    turns: Mapped[int] = mapped_column(Integer, default=0)
    handoff_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), nullable=True)
    staff_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), nullable=True)


class Notification(Base):
    """One message to a resident in the outbox, added in the same transaction as its cause."""

    __tablename__ = "notification"
    __table_args__ = (
        Index("ix_notification_status", "status", "next_attempt_at"),
        Index("ix_notification_sender", "sender_id", "id"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    petition_id: Mapped[int | None] = mapped_column(
        ForeignKey("petition.id", ondelete="SET NULL"), nullable=True, index=True
    )
    # The petition as it was when the notification was written (for the WeChat template).
    petition_number: Mapped[str | None] = mapped_column(String(20), nullable=True)
    status_label: Mapped[str | None] = mapped_column(String(16), nullable=True)
    # A `closed` notification asks the resident how satisfied they are until they answer.
    awaiting_reply: Mapped[bool] = mapped_column(Boolean, default=False)
    sender_id: Mapped[str | None] = mapped_column(String(128), nullable=True)
    channel: Mapped[str | None] = mapped_column(String(16), nullable=True)
    kind: Mapped[str] = mapped_column(String(16))
    text: Mapped[str] = mapped_column(Text)
    status: Mapped[str] = mapped_column(String(16), default="pending")
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    next_attempt_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    claimed_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    delivered_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    # "webchat", "custom" or "template": how it reached the resident.
    via: Mapped[str | None] = mapped_column(String(16), nullable=True)
    # A short code ("http 502", "errcode 45015"), never personal data.
    last_error: Mapped[str | None] = mapped_column(String(200), nullable=True)
    # Who wrote a staff message (for the conversation record).
    staff_username: Mapped[str | None] = mapped_column(String(64), nullable=True)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)


class ConversationMessage(Base):
    """One message of a live conversation while a clerk has it (text stored masked)."""

    __tablename__ = "conversation_message"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    sender_id: Mapped[str] = mapped_column(String(128), index=True)
    at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    # "resident", "bot" or "staff".
    sender: Mapped[str] = mapped_column(String(16))
    text: Mapped[str] = mapped_column(Text)
    staff_username: Mapped[str | None] = mapped_column(String(64), nullable=True)


@functools.lru_cache(maxsize=4)
def _fernet(secret_key: str) -> Fernet:
    # A key of its own for addresses, derived from SECRET_KEY (HKDF-SHA256).
    key = HKDF(
        algorithm=hashes.SHA256(), length=32, salt=b"fangben.contact", info=b"address_enc"
    ).derive(secret_key.encode())
    return Fernet(base64.urlsafe_b64encode(key))


def encrypt_address(value: str) -> str:
    """Fernet token of an address (transcript key or openid)."""
    return _fernet(settings.secret_key).encrypt(value.encode()).decode()


def decrypt_address(token: str | None) -> str | None:
    """The address inside a token; None when missing or not readable with this SECRET_KEY."""
    if not token:
        return None
    try:
        return _fernet(settings.secret_key).decrypt(token.encode()).decode()
    except (InvalidToken, ValueError):
        return None
