"""Projects, their blockers and units: what the ledger says about every home."""

from __future__ import annotations

from datetime import date, datetime

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
)
from sqlalchemy.orm import Mapped, mapped_column, relationship

from app.core.database import Base, utcnow
from app.status import ledger_version

# Ledger words ↔ stored codes.
TRANSFER_STATUSES = {"已办结": "done", "办理中": "in_progress", "未办理": "not_started"}
TRANSFER_LABELS = {v: k for k, v in TRANSFER_STATUSES.items()}
# What a ledger row sets of a unit, in this order (the import's staging table and its COPY).
UNIT_LEDGER_COLUMNS = (
    "building",
    "unit",
    "room",
    "owner_name",
    "id_hash",
    "id_last4",
    "transfer_status",
)
BLOCKER_OPEN, BLOCKER_RESOLVED = "open", "resolved"


class Project(Base):
    """A housing project (楼盘/小区) of the ledger."""

    __tablename__ = "project"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    code: Mapped[str] = mapped_column(String(32), unique=True)
    name: Mapped[str] = mapped_column(String(128))
    # Old names and aliases residents use, as typed in the ledger's 别名 column.
    aliases: Mapped[list[str]] = mapped_column(JSON, default=list)
    district: Mapped[str] = mapped_column(String(64), default="")
    address: Mapped[str] = mapped_column(String(256), default="")
    developer: Mapped[str] = mapped_column(String(128), default="")
    unit_count: Mapped[int] = mapped_column(Integer, default=0)
    initial_registration_done: Mapped[bool] = mapped_column(Boolean, default=False)
    expected_resolution_date: Mapped[date | None] = mapped_column(Date, nullable=True)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(
        DateTime(timezone=True), default=utcnow, onupdate=utcnow
    )

    blockers: Mapped[list[Blocker]] = relationship(
        back_populates="project", cascade="all, delete-orphan", order_by="Blocker.id"
    )
    units: Mapped[list[Unit]] = relationship(back_populates="project", lazy="raise_on_sql")


class Blocker(Base):
    """One blocker (卡点) of a project: a catalogue code, a local note and its owner."""

    __tablename__ = "blocker"
    __table_args__ = (UniqueConstraint("project_id", "code"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    project_id: Mapped[int] = mapped_column(ForeignKey("project.id", ondelete="CASCADE"))
    code: Mapped[str] = mapped_column(String(64))
    note: Mapped[str] = mapped_column(Text, default="")
    # Department code from the catalogue (policies/departments.yml).
    department: Mapped[str] = mapped_column(String(64))
    status: Mapped[str] = mapped_column(String(16), default=BLOCKER_OPEN)
    changed_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)

    project: Mapped[Project] = relationship(back_populates="blockers")


class Unit(Base):
    """One home (套) of a project; building/unit/room are normalised (e.g. "3", "2", "501")."""

    __tablename__ = "unit"
    __table_args__ = (
        UniqueConstraint("project_id", "building", "unit", "room"),
        Index("ix_unit_id_hash", "id_hash"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    project_id: Mapped[int] = mapped_column(ForeignKey("project.id", ondelete="CASCADE"))
    building: Mapped[str] = mapped_column(String(32))
    unit: Mapped[str] = mapped_column(String(32), default="")
    room: Mapped[str] = mapped_column(String(32))
    owner_name: Mapped[str] = mapped_column(String(64), default="")
    # Keyed hash (HMAC-SHA256 with ID_HASH_SECRET) of the normalised ID number, and its last 4.
    # Compared byte by byte on PostgreSQL: the bulk load rebuilds its index fast (0005).
    id_hash: Mapped[str | None] = mapped_column(
        String(64).with_variant(String(64, collation="C"), "postgresql"), nullable=True
    )
    id_last4: Mapped[str | None] = mapped_column(String(4), nullable=True)
    transfer_status: Mapped[str] = mapped_column(String(16), default="not_started")
    updated_at: Mapped[datetime] = mapped_column(
        DateTime(timezone=True), default=utcnow, onupdate=utcnow
    )

    project: Mapped[Project] = relationship(back_populates="units")


# Every committed write to these tables changes the ledger token that lookups cache by.
ledger_version.watch(Project.__tablename__, Blocker.__tablename__, Unit.__tablename__)
