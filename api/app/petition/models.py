"""Petitions (信访件): assignments, the conversation, staff notes, the public notice, the
deadline index that keeps the console's overdue-first list cheap, and the number counter."""

from __future__ import annotations

from datetime import date, datetime
from typing import Any

from sqlalchemy import (
    JSON,
    Boolean,
    Date,
    DateTime,
    ForeignKey,
    Index,
    Integer,
    String,
    Text,
    UniqueConstraint,
    event,
    insert,
)
from sqlalchemy.orm import Mapped, mapped_column, relationship

from app.core.database import Base, utcnow

STATUS_LABELS = {
    "accepted": "已受理",
    "assigned": "已分派",
    "verifying": "核实中",
    "public_notice": "公示中",
    "closed": "已办结",
    "supervised": "督办",
    "transferred": "转办",
    "review": "复查中",
}


class Petition(Base):
    """A resident's petition; `version` guards against two clerks overwriting each other."""

    __tablename__ = "petition"
    # The dashboard counts a date range's petitions per project from this index alone.
    __table_args__ = (Index("ix_petition_intake_project", "intake_date", "project_id"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    number: Mapped[str] = mapped_column(String(20), unique=True)
    status: Mapped[str] = mapped_column(String(20), default="accepted")
    person_name: Mapped[str] = mapped_column(String(64))
    # Kept so staff can call back; never logged, masked in every list view.
    phone: Mapped[str] = mapped_column(String(11), index=True)
    project_id: Mapped[int | None] = mapped_column(
        ForeignKey("project.id", ondelete="SET NULL"), nullable=True, index=True
    )
    unit_id: Mapped[int | None] = mapped_column(
        ForeignKey("unit.id", ondelete="SET NULL"), nullable=True
    )
    address: Mapped[str] = mapped_column(String(256), default="")
    description: Mapped[str] = mapped_column(Text)
    consent: Mapped[bool] = mapped_column(Boolean)
    channel: Mapped[str] = mapped_column(String(16))
    intake_date: Mapped[date] = mapped_column(Date)
    answer_due: Mapped[date] = mapped_column(Date)
    answer_due_provisional: Mapped[bool] = mapped_column(Boolean, default=False)
    closure_due: Mapped[date | None] = mapped_column(Date, nullable=True)
    idempotency_key: Mapped[str | None] = mapped_column(String(128), unique=True, nullable=True)
    # SHA-256 of the request body that used the key: the same key with another body is refused.
    idempotency_fingerprint: Mapped[str | None] = mapped_column(String(64), nullable=True)
    outcome: Mapped[str | None] = mapped_column(Text, nullable=True)
    satisfaction: Mapped[str | None] = mapped_column(String(24), nullable=True)
    # "resident" (answered in the conversation) or "clerk_phone" (a clerk reached them by phone).
    satisfaction_source: Mapped[str | None] = mapped_column(String(16), nullable=True)
    satisfaction_reason: Mapped[str | None] = mapped_column(Text, nullable=True)
    # The Rasa sender id of the conversation that filed it: how the resident is told of changes.
    sender_id: Mapped[str | None] = mapped_column(String(128), nullable=True, index=True)
    # Blocker codes the bot explained to the resident before the petition was filed.
    blockers: Mapped[list[str] | None] = mapped_column(JSON, nullable=True)
    review_due: Mapped[date | None] = mapped_column(Date, nullable=True)
    review_count: Mapped[int] = mapped_column(Integer, default=0)
    closed_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), nullable=True)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    version: Mapped[int] = mapped_column(Integer, default=1)

    assignments: Mapped[list[PetitionAssignment]] = relationship(
        back_populates="petition", cascade="all, delete-orphan", order_by="PetitionAssignment.id"
    )
    messages: Mapped[list[PetitionMessage]] = relationship(
        back_populates="petition",
        cascade="all, delete-orphan",
        order_by="PetitionMessage.position",
        passive_deletes=True,
    )

    __mapper_args__ = {"version_id_col": version}

    @property
    def status_label(self) -> str:
        """The Chinese label of the state."""
        return STATUS_LABELS[self.status]


class PetitionAssignment(Base):
    """A department a petition was sent to, its answer deadline and its written answer."""

    __tablename__ = "petition_assignment"
    __table_args__ = (UniqueConstraint("petition_id", "department"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    petition_id: Mapped[int] = mapped_column(ForeignKey("petition.id", ondelete="CASCADE"))
    department: Mapped[str] = mapped_column(String(64))
    assigned_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    answer_due: Mapped[date] = mapped_column(Date)
    answer_due_provisional: Mapped[bool] = mapped_column(Boolean, default=False)
    answer: Mapped[str | None] = mapped_column(Text, nullable=True)
    answered_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), nullable=True)
    answered_by: Mapped[str | None] = mapped_column(String(64), nullable=True)
    # What residents see of the answer, once a clerk (or the answering officer) approved it.
    resident_text: Mapped[str | None] = mapped_column(Text, nullable=True)
    approved_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), nullable=True)
    approved_by: Mapped[str | None] = mapped_column(String(64), nullable=True)

    petition: Mapped[Petition] = relationship(back_populates="assignments")


class PetitionMessage(Base):
    """One turn of the conversation that led to a petition, stored masked, for the staff."""

    __tablename__ = "petition_messages"
    __table_args__ = (UniqueConstraint("petition_id", "position"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    petition_id: Mapped[int] = mapped_column(ForeignKey("petition.id", ondelete="CASCADE"))
    position: Mapped[int] = mapped_column(Integer)
    at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    # "resident" | "bot" (from intake); "staff" is kept for replies written in the console later.
    sender: Mapped[str] = mapped_column(String(16))
    text: Mapped[str] = mapped_column(Text)

    petition: Mapped[Petition] = relationship(back_populates="messages")


class PetitionDayCounter(Base):
    """Last sequence number used for a day's petition numbers (XF-YYYYMMDD-NNNN)."""

    __tablename__ = "petition_day_counter"

    day: Mapped[date] = mapped_column(Date, primary_key=True)
    last: Mapped[int] = mapped_column(Integer, default=0)


class PetitionNote(Base):
    """A staff note on a petition (never shown to the resident)."""

    __tablename__ = "petition_note"
    __table_args__ = (Index("ix_petition_note_petition", "petition_id"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    petition_id: Mapped[int] = mapped_column(ForeignKey("petition.id", ondelete="CASCADE"))
    author: Mapped[str] = mapped_column(String(64))
    text: Mapped[str] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)


class PetitionNotice(Base):
    """The public notice (公示) of a petition: when it began and the earliest day it may end."""

    __tablename__ = "petition_notice"

    petition_id: Mapped[int] = mapped_column(
        ForeignKey("petition.id", ondelete="CASCADE"), primary_key=True
    )
    started_on: Mapped[date] = mapped_column(Date)
    earliest_end: Mapped[date] = mapped_column(Date)
    provisional: Mapped[bool] = mapped_column(Boolean, default=False)


class PetitionDue(Base):
    """Each petition's next deadline, kept current on every change so that the console can list
    50,000 petitions overdue-first from an index: rank 0 = open (sorted by next_due, so the
    overdue ones come first), rank 1 = closed or transferred."""

    __tablename__ = "petition_due"
    __table_args__ = (Index("ix_petition_due_order", "rank", "next_due", "petition_id"),)

    petition_id: Mapped[int] = mapped_column(
        ForeignKey("petition.id", ondelete="CASCADE"), primary_key=True
    )
    rank: Mapped[int] = mapped_column(Integer, default=0)
    next_due: Mapped[date | None] = mapped_column(Date, nullable=True)


OPEN_STATES = frozenset(
    {"accepted", "assigned", "verifying", "public_notice", "supervised", "review"}
)


def compute_due(
    status: str, answer_due: date | None, closure_due: date | None, pending: list[date]
) -> tuple[int, date | None]:
    """(rank, next_due) of a petition: the earliest unanswered assignment deadline (or the
    first-answer deadline while still 已受理) and the closure target, whichever comes first."""
    if status not in OPEN_STATES:
        return 1, None
    answer = min(pending) if pending else (answer_due if status == "accepted" else None)
    dues = [d for d in (answer, closure_due) if d is not None]
    return 0, (min(dues) if dues else None)


@event.listens_for(Petition, "after_insert")
def _due_on_insert(_mapper: Any, connection: Any, target: Petition) -> None:
    # Every petition, whoever creates it (public intake, tests), gets its deadline row.
    pending = [
        a.answer_due for a in target.__dict__.get("assignments", []) or [] if a.answer is None
    ]
    rank, due = compute_due(target.status, target.answer_due, target.closure_due, pending)
    connection.execute(insert(PetitionDue).values(petition_id=target.id, rank=rank, next_due=due))
