"""How many times residents looked a project up in the bot: one count per project per day.

Nothing about who asked or what they typed is kept — only the project, the day and the count.
"""

from __future__ import annotations

import logging
import threading
import time
from collections import Counter
from datetime import date
from typing import Any

from sqlalchemy import Date, ForeignKey, Integer, bindparam, func, select
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.orm import Mapped, Session, mapped_column

from app.core.database import Base
from app.core.workdays import today_shanghai
from app.status.models import Project

log = logging.getLogger("app.lookup")


class ProjectLookupDay(Base):
    """Lookups that found a project (or one of its homes) on one day."""

    __tablename__ = "project_lookup_day"

    project_id: Mapped[int] = mapped_column(
        ForeignKey("project.id", ondelete="CASCADE"), primary_key=True
    )
    day: Mapped[date] = mapped_column(Date, primary_key=True)
    count: Mapped[int] = mapped_column(Integer, default=0)


# Lookups are the residents' hot path and otherwise read-only: each one is counted in this
# process and the counts are written at most every FLUSH_SECONDS (by the lookup that finds them
# due, in its own savepoint), not one write per lookup. A process that stops loses at most
# those seconds of counts — a statistic, not a record.
FLUSH_SECONDS = 10.0
_pending: Counter[tuple[str, date]] = Counter()
_lock = threading.Lock()
_last_flush = time.monotonic()


def count_lookup(answer: dict[str, Any], day: date | None = None) -> None:
    """Count a lookup answer that named a project (unit or project match); others are not."""
    project = answer.get("project")
    if answer.get("match") not in ("unit", "project") or not isinstance(project, dict):
        return
    code = project.get("code")
    if not code:
        return
    with _lock:
        _pending[(str(code), day or today_shanghai())] += 1


def due() -> bool:
    """Whether FLUSH_SECONDS have passed since the last write."""
    return time.monotonic() - _last_flush >= FLUSH_SECONDS


def flush_if_due(db: Session) -> None:
    """Write the pending counts when FLUSH_SECONDS have passed since the last write (by one
    lookup only: others finding them due at the same moment leave it to that one)."""
    if due():
        flush(db, only_if_due=True)


_UPSERTS: dict[str, Any] = {}


def _upsert(dialect: str) -> Any:
    """Add n to the count of (the project with this code, day), built once per dialect."""
    stmt = _UPSERTS.get(dialect)
    if stmt is None:
        insert = pg_insert if dialect == "postgresql" else sqlite_insert
        source = select(
            Project.id, bindparam("day", type_=Date), bindparam("n", type_=Integer)
        ).where(Project.code == bindparam("code"))
        upsert = insert(ProjectLookupDay).from_select(["project_id", "day", "count"], source)
        stmt = _UPSERTS[dialect] = upsert.on_conflict_do_update(
            index_elements=[ProjectLookupDay.project_id, ProjectLookupDay.day],
            set_={"count": ProjectLookupDay.count + upsert.excluded["count"]},
        )
    return stmt


def flush(db: Session, only_if_due: bool = False) -> int:
    """Write the pending counts (one upsert per project and day, race-free on both backends,
    rows in one order so that two processes' writes cannot deadlock); on a database error they
    are kept for the next time. Returns the lookups written."""
    global _last_flush
    with _lock:
        if only_if_due and not due():
            return 0
        batch = dict(_pending)
        _pending.clear()
        _last_flush = time.monotonic()
    if not batch:
        return 0
    rows = [{"code": code, "day": day, "n": n} for (code, day), n in sorted(batch.items())]
    try:
        with db.begin_nested():
            # One statement for the whole batch (a ledger of a thousand projects made a
            # thousand statements, built one by one, every FLUSH_SECONDS).
            db.connection().execute(_upsert(db.get_bind().dialect.name), rows)
    except SQLAlchemyError as exc:
        log.warning(
            "lookup counts not written yet (%s); kept for the next time", type(exc).__name__
        )
        with _lock:
            _pending.update(batch)
        return 0
    return sum(batch.values())


def reset() -> None:
    """Forget the pending counts (tests)."""
    with _lock:
        _pending.clear()


def lookups_of(db: Session, project_id: int, since: date | None = None) -> int:
    """Lookups of a project in total (or since a day), this process's pending ones included."""
    flush(db)
    stmt = select(func.coalesce(func.sum(ProjectLookupDay.count), 0)).where(
        ProjectLookupDay.project_id == project_id
    )
    if since is not None:
        stmt = stmt.where(ProjectLookupDay.day >= since)
    return int(db.scalar(stmt) or 0)
