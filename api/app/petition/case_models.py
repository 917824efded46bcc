"""Collective cases (并单): petitions about the same project and blocker handled as one.

A petition is in at most one *open* case: `open_key` holds the petition id while the case is
open (unique; NULLs never collide), and is cleared when the case closes, so a petition reopened
for review (复查) may join a new case later.
"""

from __future__ import annotations

from datetime import date, datetime

from sqlalchemy import Date, DateTime, ForeignKey, Index, Integer, String, Text
from sqlalchemy.orm import Mapped, mapped_column, relationship

from app.core.database import Base, utcnow

CASE_STATUS_LABELS = {"open": "办理中", "closed": "已全部销号"}


class PetitionCase(Base):
    """A collective case: one assignment and one answer for every member petition."""

    __tablename__ = "petition_case"
    __table_args__ = (Index("ix_petition_case_project", "project_id", "status"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    number: Mapped[str] = mapped_column(String(20), unique=True)
    project_id: Mapped[int] = mapped_column(ForeignKey("project.id", ondelete="CASCADE"))
    blocker: Mapped[str] = mapped_column(String(64))
    title: Mapped[str] = mapped_column(String(128))
    status: Mapped[str] = mapped_column(String(16), default="open")
    created_by: Mapped[str] = mapped_column(String(64))
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    closed_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), nullable=True)
    # The last answer recorded for the whole case (each member keeps its own copy too).
    answer_department: Mapped[str | None] = mapped_column(String(64), nullable=True)
    answer_text: Mapped[str | None] = mapped_column(Text, nullable=True)
    answered_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), nullable=True)

    members: Mapped[list[PetitionCaseMember]] = relationship(
        back_populates="case", cascade="all, delete-orphan", order_by="PetitionCaseMember.id"
    )

    @property
    def status_label(self) -> str:
        """The Chinese label of the case state."""
        return CASE_STATUS_LABELS.get(self.status, self.status)


class PetitionCaseMember(Base):
    """A petition in a case."""

    __tablename__ = "petition_case_member"
    __table_args__ = (Index("ix_petition_case_member_petition", "petition_id"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    case_id: Mapped[int] = mapped_column(ForeignKey("petition_case.id", ondelete="CASCADE"))
    petition_id: Mapped[int] = mapped_column(ForeignKey("petition.id", ondelete="CASCADE"))
    # = petition_id while the case is open, NULL after: one open case per petition.
    open_key: Mapped[int | None] = mapped_column(Integer, unique=True, nullable=True)
    added_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)

    case: Mapped[PetitionCase] = relationship(back_populates="members")


class PetitionCaseDayCounter(Base):
    """Last sequence number used for a day's case numbers (BD-YYYYMMDD-NNNN)."""

    __tablename__ = "petition_case_day_counter"

    day: Mapped[date] = mapped_column(Date, primary_key=True)
    last: Mapped[int] = mapped_column(Integer, default=0)
