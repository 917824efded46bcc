"""Imports every area's models so that Alembic and create_all see all tables."""

from app.audit.models import AuditLog
from app.petition.models import Petition, PetitionAssignment, PetitionDayCounter
from app.status.models import Blocker, Project, Unit

__all__ = [
    "AuditLog",
    "Blocker",
    "Petition",
    "PetitionAssignment",
    "PetitionDayCounter",
    "Project",
    "Unit",
]
