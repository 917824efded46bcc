"""The published procedure's steps beyond the state machine: objections to a public notice
(异议), the resettlement confirmation (回迁确认书) and the office meeting (专题会议)."""

from __future__ import annotations

from datetime import date, datetime

from sqlalchemy import Date, DateTime, ForeignKey, Index, Integer, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from app.core.database import Base, utcnow

OBJECTION_OPEN, OBJECTION_TRANSFERRED, OBJECTION_DECIDED = "open", "transferred", "decided"
OBJECTION_LABELS = {
    OBJECTION_OPEN: "待处理",
    OBJECTION_TRANSFERRED: "已转法院",
    OBJECTION_DECIDED: "法院文书已登记",
}
MEETING_KINDS = {"general": "一般情形", "special": "特殊情形"}


class PetitionObjection(Base):
    """An objection received during a petition's public notice: who, what, when; then the
    court document that settles it."""

    __tablename__ = "petition_objection"
    __table_args__ = (Index("ix_petition_objection_petition", "petition_id"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    petition_id: Mapped[int] = mapped_column(ForeignKey("petition.id", ondelete="CASCADE"))
    # Who objected as the clerk wrote it (e.g. "同楼住户"); staff data, never logged.
    raised_by: Mapped[str] = mapped_column(String(128))
    content: Mapped[str] = mapped_column(Text)
    received_on: Mapped[date] = mapped_column(Date)
    recorded_by: Mapped[str] = mapped_column(String(64))
    recorded_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    status: Mapped[str] = mapped_column(String(16), default=OBJECTION_OPEN)
    court_document: Mapped[str | None] = mapped_column(String(128), nullable=True)
    court_document_on: Mapped[date | None] = mapped_column(Date, nullable=True)
    court_summary: Mapped[str | None] = mapped_column(Text, nullable=True)


class PetitionResettlement(Base):
    """The 征收办's confirmation of a resettlement contract (回迁确认书), required before the
    notice of a resettlement case."""

    __tablename__ = "petition_resettlement"

    petition_id: Mapped[int] = mapped_column(
        ForeignKey("petition.id", ondelete="CASCADE"), primary_key=True
    )
    document_number: Mapped[str] = mapped_column(String(128))
    confirmed_on: Mapped[date] = mapped_column(Date)
    recorded_by: Mapped[str] = mapped_column(String(64))
    recorded_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)


class PetitionMeeting(Base):
    """A case flagged for the office meeting (一般情形 / 特殊情形) and the decision taken."""

    __tablename__ = "petition_meeting"

    petition_id: Mapped[int] = mapped_column(
        ForeignKey("petition.id", ondelete="CASCADE"), primary_key=True
    )
    kind: Mapped[str] = mapped_column(String(16))
    reason: Mapped[str] = mapped_column(Text)
    flagged_by: Mapped[str] = mapped_column(String(64))
    flagged_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    decision: Mapped[str | None] = mapped_column(Text, nullable=True)
    decided_on: Mapped[date | None] = mapped_column(Date, nullable=True)
    decided_by: Mapped[str | None] = mapped_column(String(64), nullable=True)
