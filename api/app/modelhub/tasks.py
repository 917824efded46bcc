"""The registry's own job on the api's queue: a training whose trainer is gone is failed
within a minute of going silent, so the page shows why and a new training can start."""

from __future__ import annotations

from huey import crontab

from app.jobs.queue import huey, job_session
from app.modelhub import service


# huey ships no type hints: its decorators are untyped for mypy
@huey.periodic_task(crontab(minute="*"), retries=1, retry_delay=5)  # type: ignore[untyped-decorator]
def sweep_trainings() -> None:
    """Every minute: fail the trainings whose trainer stopped reporting."""
    with job_session() as db:
        service.expire_stale_trainings(db)
        db.commit()
