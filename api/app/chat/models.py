"""The web chat's transcript, kept server-side so a reload shows the conversation again."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import JSON, DateTime, Index, Integer, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from app.core.database import Base, utcnow


class ChatMessage(Base):
    """One bubble of a web-chat conversation; personal data in `text` is stored masked."""

    __tablename__ = "chat_message"
    __table_args__ = (Index("ix_chat_message_conversation", "conversation", "id"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    # Keyed digest of the conversation id from the signed cookie, never the id itself.
    conversation: Mapped[str] = mapped_column(String(64))
    # "user", "bot", "notice" (news of the resident's petition) or "staff" (a clerk who has
    # taken the conversation over).
    role: Mapped[str] = mapped_column(String(8))
    text: Mapped[str] = mapped_column(Text, default="")
    buttons: Mapped[list[dict[str, Any]] | None] = mapped_column(JSON, nullable=True)
    at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    # The outbox notification this bubble delivers: unique, so a delivery retried (at least
    # once) or raced by two workers leaves one bubble.
    notification_id: Mapped[int | None] = mapped_column(Integer, nullable=True, unique=True)
    # What the resident is shown of the clerk ("工作人员 李**"), nothing more.
    staff_name: Mapped[str | None] = mapped_column(String(40), nullable=True)
