"""How many times residents looked a project up in the bot: one count per project per day.

Nothing about who asked or what they typed is kept — only the project, the day and the count.
"""

from __future__ import annotations

from datetime import date
from typing import Any

from sqlalchemy import Date, ForeignKey, Integer, func, literal, select
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.orm import Mapped, Session, mapped_column

from app.core.database import Base
from app.core.workdays import today_shanghai
from app.status.models import Project


class ProjectLookupDay(Base):
    """Lookups that found a project (or one of its homes) on one day."""

    __tablename__ = "project_lookup_day"

    project_id: Mapped[int] = mapped_column(
        ForeignKey("project.id", ondelete="CASCADE"), primary_key=True
    )
    day: Mapped[date] = mapped_column(Date, primary_key=True)
    count: Mapped[int] = mapped_column(Integer, default=0)


def count_lookup(db: Session, answer: dict[str, Any], day: date | None = None) -> None:
    """Count a lookup answer that named a project (unit or project match); others are not
    counted. One upsert, race-free on both backends."""
    project = answer.get("project")
    if answer.get("match") not in ("unit", "project") or not isinstance(project, dict):
        return
    code = project.get("code")
    if not code:
        return
    day = day or today_shanghai()
    insert = pg_insert if db.get_bind().dialect.name == "postgresql" else sqlite_insert
    source = select(Project.id, literal(day, Date), literal(1, Integer)).where(Project.code == code)
    stmt = (
        insert(ProjectLookupDay)
        .from_select(["project_id", "day", "count"], source)
        .on_conflict_do_update(
            index_elements=[ProjectLookupDay.project_id, ProjectLookupDay.day],
            set_={"count": ProjectLookupDay.count + 1},
        )
    )
    db.execute(stmt)


def lookups_of(db: Session, project_id: int, since: date | None = None) -> int:
    """Lookups of a project in total (or since a day)."""
    stmt = select(func.coalesce(func.sum(ProjectLookupDay.count), 0)).where(
        ProjectLookupDay.project_id == project_id
    )
    if since is not None:
        stmt = stmt.where(ProjectLookupDay.day >= since)
    return int(db.scalar(stmt) or 0)
