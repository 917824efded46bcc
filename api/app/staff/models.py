"""Staff accounts, their sessions and tokens, and staff-only petition records (notes, notices)."""

from __future__ import annotations

from datetime import date, datetime
from typing import Any

from sqlalchemy import (
    Boolean,
    Date,
    DateTime,
    ForeignKey,
    Index,
    Integer,
    String,
    Text,
    event,
    insert,
)
from sqlalchemy.orm import Mapped, mapped_column

from app.core.database import Base, utcnow
from app.petition.models import Petition

ROLE_LABELS = {
    "clerk": "受理员",
    "officer": "部门承办人",
    "supervisor": "督办负责人",
    "admin": "管理员",
}


class StaffUser(Base):
    """A console account; officers are bound to one department code of the catalogue."""

    __tablename__ = "staff_user"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    username: Mapped[str] = mapped_column(String(64), unique=True)
    display_name: Mapped[str] = mapped_column(String(64), default="")
    password_hash: Mapped[str] = mapped_column(String(255))
    role: Mapped[str] = mapped_column(String(16))
    department: Mapped[str | None] = mapped_column(String(64), nullable=True)
    active: Mapped[bool] = mapped_column(Boolean, default=True)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    last_login_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), nullable=True)

    @property
    def role_label(self) -> str:
        """The Chinese name of the role."""
        return ROLE_LABELS.get(self.role, self.role)


class StaffSession(Base):
    """A console session or API bearer token; only the SHA-256 of the secret is stored."""

    __tablename__ = "staff_session"
    __table_args__ = (Index("ix_staff_session_user", "user_id"),)

    token_hash: Mapped[str] = mapped_column(String(64), primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("staff_user.id", ondelete="CASCADE"))
    kind: Mapped[str] = mapped_column(String(8))  # "console" or "bearer"
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    expires_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))


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


OPEN_STATES = frozenset({"accepted", "assigned", "verifying", "public_notice", "supervised"})


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
