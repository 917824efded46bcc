"""Every job of the api, registered with the one queue by importing their modules here; the
worker imports this module (and so do tests that run it). Delivery channels that live above
the outbox register themselves on import: the web chat does."""

import app.chat.service  # noqa: F401  (registers the web-chat delivery)
import app.models  # noqa: F401  (every table)
from app.ledger.jobs import import_ledger_job, sweep_ledger_imports
from app.modelhub.tasks import sweep_trainings
from app.notify.tasks import deliver_notification, sweep_notifications

__all__ = [
    "deliver_notification",
    "import_ledger_job",
    "sweep_ledger_imports",
    "sweep_notifications",
    "sweep_trainings",
]
