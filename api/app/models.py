"""Imports every area's models so that Alembic and create_all see all tables."""

from app.audit.models import AuditLog
from app.chat.models import ChatMessage
from app.dashboard.models import PetitionTally, UnitTally  # noqa: F401
from app.inbox.models import StaffNotification
from app.ledger.models import LedgerImport
from app.modelhub.models import NluModel
from app.nlu.models import NluInboxItem
from app.notify.models import ConversationMessage, Notification, ResidentContact
from app.petition.case_models import (  # noqa: F401
    PetitionCase,
    PetitionCaseDayCounter,
    PetitionCaseMember,
)
from app.petition.models import (  # noqa: F401
    Petition,
    PetitionAssignment,
    PetitionDayCounter,
    PetitionDue,
    PetitionNote,
    PetitionNotice,
)
from app.petition.procedure_models import (  # noqa: F401
    PetitionMeeting,
    PetitionObjection,
    PetitionResettlement,
)
from app.staff.models import StaffSession, StaffUser  # noqa: F401
from app.status.ledger_version import LedgerVersion  # noqa: F401
from app.status.lookup_stats import ProjectLookupDay  # noqa: F401
from app.status.models import Blocker, Project, Unit

__all__ = [
    "AuditLog",
    "Blocker",
    "ChatMessage",
    "ConversationMessage",
    "LedgerImport",
    "NluInboxItem",
    "NluModel",
    "Notification",
    "Petition",
    "PetitionAssignment",
    "PetitionDayCounter",
    "Project",
    "ResidentContact",
    "StaffNotification",
    "Unit",
]
