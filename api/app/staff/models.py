"""Staff accounts and their sessions and tokens."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import (
    Boolean,
    DateTime,
    ForeignKey,
    Index,
    Integer,
    String,
)
from sqlalchemy.orm import Mapped, mapped_column

from app.core.database import Base, utcnow

ROLE_LABELS = {
    "clerk": "受理员",
    "officer": "部门承办人",
    "supervisor": "督办负责人",
    "admin": "管理员",
    "maintainer": "模型维护员",
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
