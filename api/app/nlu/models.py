"""The NLU inbox: residents' messages the bot misunderstood, masked before they are stored."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import JSON, DateTime, Float, Index, Integer, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from app.core.database import Base, utcnow

# Why a message landed in the inbox (docs/maintainers.md).
REASONS = ("low_confidence", "out_of_scope", "fallback", "misunderstood", "handoff", "staff_flag")
REASON_LABELS = {
    "low_confidence": "置信度低",
    "out_of_scope": "超出范围",
    "fallback": "没听懂",
    "misunderstood": "居民说答非所问",
    "handoff": "转了人工",
    "staff_flag": "工作人员标记",
}
STATUSES = ("new", "annotated", "out_of_scope", "deleted", "exported")
STATUS_LABELS = {
    "new": "待处理",
    "annotated": "已标注",
    "out_of_scope": "已标为无关",
    "deleted": "已删除",
    "exported": "已导出",
}


class NluInboxItem(Base):
    """One resident message for the maintainers; the sender only as a keyed pseudonym."""

    __tablename__ = "nlu_inbox_item"
    __table_args__ = (
        Index("ix_nlu_inbox_item_status", "status", "created_at"),
        Index("ix_nlu_inbox_item_sender", "sender", "created_at"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    # Masked (ID numbers, phones, names the bot knew); emptied when a maintainer deletes it.
    text: Mapped[str] = mapped_column(Text)
    # The NLU's guess (`policy_faq/<topic>` for a policy question); none for a staff flag.
    predicted_intent: Mapped[str | None] = mapped_column(String(64), nullable=True)
    confidence: Mapped[float | None] = mapped_column(Float, nullable=True)
    reason: Mapped[str] = mapped_column(String(16))
    channel: Mapped[str] = mapped_column(String(16))
    project_code: Mapped[str | None] = mapped_column(String(32), nullable=True, index=True)
    # app.core.security.pseudonym of the Rasa sender id (groups a conversation, names no one).
    sender: Mapped[str | None] = mapped_column(String(32), nullable=True)
    # The conversation around the message: [{from: resident|bot|staff, text}], masked.
    context: Mapped[list[dict[str, Any]]] = mapped_column(JSON, default=list)
    # What the NLU found: [{entity, start, end, value}] over the masked text.
    entities: Mapped[list[dict[str, Any]]] = mapped_column(JSON, default=list)
    model_id: Mapped[str | None] = mapped_column(String(64), nullable=True)
    status: Mapped[str] = mapped_column(String(16), default="new")
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    # The maintainer's correction: the intent and the entity spans [{entity, start, end, value}].
    intent: Mapped[str | None] = mapped_column(String(64), nullable=True)
    annotated_entities: Mapped[list[dict[str, Any]]] = mapped_column(JSON, default=list)
    annotated_by: Mapped[str | None] = mapped_column(String(64), nullable=True)
    annotated_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), nullable=True)
    # The export file it went into (nlu_data/inbox/<channel>-<date>.yml), or why it was skipped.
    exported_to: Mapped[str | None] = mapped_column(String(200), nullable=True)
    exported_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), nullable=True)
    export_skip: Mapped[str | None] = mapped_column(String(16), nullable=True)
    # A staff flag: the petition and the turn of its conversation.
    petition_number: Mapped[str | None] = mapped_column(String(20), nullable=True)
    position: Mapped[int | None] = mapped_column(Integer, nullable=True)
