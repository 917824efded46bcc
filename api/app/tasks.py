"""Every job of the api, registered with the one queue by importing their modules here; the
worker imports this module (and so do tests that run it). Delivery channels that live above
the outbox register themselves on import: the web chat does."""

import app.chat.service  # noqa: F401  (registers the web-chat delivery)
import app.models  # noqa: F401  (every table)
from app.inbox.tasks import post_staff_webhook
from app.ledger.jobs import import_ledger_job, sweep_ledger_imports
from app.modelhub.tasks import sweep_trainings
from app.notify.tasks import deliver_notification, sweep_notifications
from app.petition.tasks import chase_deadlines

__all__ = [
    "chase_deadlines",
    "deliver_notification",
    "import_ledger_job",
    "post_staff_webhook",
    "sweep_ledger_imports",
    "sweep_notifications",
    "sweep_trainings",
]
