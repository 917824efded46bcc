"""Imports every area's models so that Alembic and create_all see all tables."""

from app.audit.models import AuditLog
from app.chat.models import ChatMessage
from app.petition.models import Petition, PetitionAssignment, PetitionDayCounter
from app.staff.models import (  # noqa: F401
    PetitionDue,
    PetitionNote,
    PetitionNotice,
    StaffSession,
    StaffUser,
)
from app.status.models import Blocker, Project, Unit

__all__ = [
    "AuditLog",
    "Blocker",
    "ChatMessage",
    "Petition",
    "PetitionAssignment",
    "PetitionDayCounter",
    "Project",
    "Unit",
]
