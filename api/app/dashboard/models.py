"""Running totals behind the dashboard, so that a province's figures (3.1M units, hundreds of
thousands of petitions) are read from a few thousand rows instead of recounted per request.

- `unit_tally`: per project, its units in the ledger and those whose 转移登记 is done. The ledger
  import is the only writer of units; it refreshes the projects it touched in its own transaction
  (app.dashboard.tally.refresh_unit_tally), so the tally is all or nothing with the import.
- `petition_tally`: per intake day and state, the petition counts the headline rates need. Kept by
  database triggers on `petition` (PostgreSQL and SQLite, app.dashboard.tally), so every writer —
  the workflow, the deadline job, a bulk insert — keeps it current in the same transaction.
- `project_petition_tally` and `department_tally`: the same for the all-time counts per project
  and per department (triggers on `petition` and `petition_assignment`). A date range is counted
  from the petitions of that range instead (an index on intake_date keeps that short).
"""

from __future__ import annotations

from datetime import date

from sqlalchemy import Date, ForeignKey, Integer, String
from sqlalchemy.orm import Mapped, mapped_column

from app.core.database import Base


class UnitTally(Base):
    """Units of one project in the ledger, and how many have their transfer registration."""

    __tablename__ = "unit_tally"

    project_id: Mapped[int] = mapped_column(
        ForeignKey("project.id", ondelete="CASCADE"), primary_key=True
    )
    units: Mapped[int] = mapped_column(Integer, default=0)
    transfer_done: Mapped[int] = mapped_column(Integer, default=0)


class PetitionTally(Base):
    """Petitions taken on one day that are now in one state, with the parts the rates count."""

    __tablename__ = "petition_tally"

    intake_date: Mapped[date] = mapped_column(Date, primary_key=True)
    status: Mapped[str] = mapped_column(String(24), primary_key=True)
    n: Mapped[int] = mapped_column(Integer, default=0)
    # Closed by the closure target (closed_at's Asia/Shanghai day <= closure_due, or no target).
    on_time: Mapped[int] = mapped_column(Integer, default=0)
    # Closed and the resident's answer is known (in the chat or by a clerk's call).
    rated: Mapped[int] = mapped_column(Integer, default=0)
    # Rated 满意 or 基本满意.
    content: Mapped[int] = mapped_column(Integer, default=0)
    # Content, as told to a clerk on the phone.
    by_phone: Mapped[int] = mapped_column(Integer, default=0)
    # Sum of review_count (复查 requests).
    reviews: Mapped[int] = mapped_column(Integer, default=0)


class ProjectPetitionTally(Base):
    """Petitions of one project, all time (the dashboard's 按卡点类型 counts them per project)."""

    __tablename__ = "project_petition_tally"

    project_id: Mapped[int] = mapped_column(Integer, primary_key=True)
    n: Mapped[int] = mapped_column(Integer, default=0)


class DepartmentTally(Base):
    """Assignments of one department, all time, and how many it has answered."""

    __tablename__ = "department_tally"

    department: Mapped[str] = mapped_column(String(64), primary_key=True)
    assigned: Mapped[int] = mapped_column(Integer, default=0)
    answered: Mapped[int] = mapped_column(Integer, default=0)
