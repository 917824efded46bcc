"""Staff notifications (我的提醒): what the deadline job and other parts tell one staff member."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import DateTime, ForeignKey, Index, Integer, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from app.core.database import Base, utcnow


class StaffNotification(Base):
    """One reminder for one staff member; `key` makes a reminder idempotent per user (the
    same key is never written twice for the same user). Texts carry no personal data."""

    __tablename__ = "staff_notification"
    __table_args__ = (
        UniqueConstraint("user_id", "key", name="uq_staff_notification_user_key"),
        Index("ix_staff_notification_unread", "user_id", "read_at"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("staff_user.id", ondelete="CASCADE"))
    kind: Mapped[str] = mapped_column(String(32))
    key: Mapped[str] = mapped_column(String(128))
    text: Mapped[str] = mapped_column(Text)
    link: Mapped[str] = mapped_column(String(256), default="")
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    read_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), nullable=True)
