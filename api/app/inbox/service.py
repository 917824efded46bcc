"""The staff notification centre: write reminders (once per user and key), list, count, read.

Every new reminder is also queued for the optional outgoing webhook (STAFF_WEBHOOK_URL); the
request or job that wrote it commits first, the worker posts it.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence

from sqlalchemy import func, select, update
from sqlalchemy.orm import Session

from app.core.config import settings
from app.core.database import utcnow
from app.core.errors import AppError
from app.inbox.models import StaffNotification
from app.staff.models import StaffUser

NOT_FOUND = "没有这条提醒。"


def users_with_role(db: Session, *roles_: str) -> list[StaffUser]:
    """Active accounts with one of the roles."""
    stmt = select(StaffUser).where(StaffUser.active.is_(True), StaffUser.role.in_(roles_))
    return list(db.scalars(stmt.order_by(StaffUser.id)).all())


def officers_of(db: Session, department: str) -> list[StaffUser]:
    """Active officers of a department."""
    stmt = select(StaffUser).where(
        StaffUser.active.is_(True),
        StaffUser.role == "officer",
        StaffUser.department == department,
    )
    return list(db.scalars(stmt.order_by(StaffUser.id)).all())


def notify_users(
    db: Session,
    users: Iterable[StaffUser],
    *,
    kind: str,
    key: str,
    text: str,
    link: str = "",
) -> list[StaffNotification]:
    """Give each user the reminder unless they already had one with this key; the new rows."""
    targets = {u.id: u for u in users}
    if not targets:
        return []
    had = set(
        db.scalars(
            select(StaffNotification.user_id).where(
                StaffNotification.key == key, StaffNotification.user_id.in_(targets)
            )
        ).all()
    )
    rows = [
        StaffNotification(user_id=uid, kind=kind, key=key[:128], text=text, link=link)
        for uid in targets
        if uid not in had
    ]
    db.add_all(rows)
    db.flush()
    if rows and settings.staff_webhook_url:
        from app.inbox import tasks  # the queue is only needed when the webhook is on

        tasks.queue_webhook(db, text)
    return rows


def list_for(db: Session, user: StaffUser, *, limit: int = 100) -> Sequence[StaffNotification]:
    """The user's reminders, unread first, newest first."""
    stmt = (
        select(StaffNotification)
        .where(StaffNotification.user_id == user.id)
        .order_by(
            StaffNotification.read_at.is_not(None),
            StaffNotification.created_at.desc(),
            StaffNotification.id.desc(),
        )
        .limit(limit)
    )
    return db.scalars(stmt).all()


def unread_count(db: Session, user_id: int) -> int:
    """How many unread reminders the user has (one COUNT on the unread index)."""
    stmt = select(func.count()).where(
        StaffNotification.user_id == user_id, StaffNotification.read_at.is_(None)
    )
    return int(db.scalar(stmt) or 0)


def mark_read(db: Session, user: StaffUser, notification_id: int) -> StaffNotification:
    """Mark one of the user's reminders read; another user's is a 404 (no hint it exists)."""
    row = db.get(StaffNotification, notification_id)
    if row is None or row.user_id != user.id:
        raise AppError(404, "not_found", NOT_FOUND)
    if row.read_at is None:
        row.read_at = utcnow()
        db.flush()
    return row


def mark_all_read(db: Session, user: StaffUser) -> int:
    """Mark all the user's reminders read; how many were unread."""
    result = db.execute(
        update(StaffNotification)
        .where(StaffNotification.user_id == user.id, StaffNotification.read_at.is_(None))
        .values(read_at=utcnow())
        .execution_options(synchronize_session=False)
    )
    db.flush()
    return int(getattr(result, "rowcount", 0) or 0)
