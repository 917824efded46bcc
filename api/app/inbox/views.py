"""Staff JSON endpoints of the notification centre (我的提醒), under /api/v1/staff/inbox.

(`/api/v1/staff/notifications` is the residents' outgoing queue; these are staff reminders.)
"""

from __future__ import annotations

from datetime import datetime

from fastapi import APIRouter
from pydantic import BaseModel

from app.core.database import DbSession
from app.core.params import RowId
from app.inbox import service
from app.inbox.models import StaffNotification
from app.staff.auth import StaffDep

router = APIRouter(prefix="/staff/inbox", tags=["staff: inbox"])


class StaffNotificationRead(BaseModel):
    """One reminder."""

    id: int
    kind: str
    text: str
    link: str
    created_at: datetime
    read_at: datetime | None


class InboxRead(BaseModel):
    """The caller's reminders (unread first) and how many are unread."""

    unread: int
    items: list[StaffNotificationRead]


class ReadAllResult(BaseModel):
    """How many reminders were marked read."""

    marked: int
    unread: int


def _read(row: StaffNotification) -> StaffNotificationRead:
    return StaffNotificationRead(
        id=row.id,
        kind=row.kind,
        text=row.text,
        link=row.link,
        created_at=row.created_at,
        read_at=row.read_at,
    )


@router.get("", response_model=InboxRead)
def list_inbox(db: DbSession, user: StaffDep) -> InboxRead:
    """The caller's own reminders."""
    return InboxRead(
        unread=service.unread_count(db, user.id),
        items=[_read(r) for r in service.list_for(db, user)],
    )


@router.post("/{notification_id}/read", response_model=StaffNotificationRead)
def read_one(notification_id: RowId, db: DbSession, user: StaffDep) -> StaffNotificationRead:
    """Mark one of the caller's reminders read (another user's: 404)."""
    return _read(service.mark_read(db, user, notification_id))


@router.post("/read-all", response_model=ReadAllResult)
def read_all(db: DbSession, user: StaffDep) -> ReadAllResult:
    """Mark all the caller's reminders read."""
    marked = service.mark_all_read(db, user)
    return ReadAllResult(marked=marked, unread=service.unread_count(db, user.id))
