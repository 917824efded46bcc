"""The periodic deadline job (app.petition.deadlines does the work)."""

from __future__ import annotations

from huey import crontab

from app.core.workdays import today_shanghai
from app.jobs.queue import huey, job_session
from app.petition.deadlines import run_deadlines


# huey ships no type hints: its decorators are untyped for mypy
@huey.periodic_task(crontab(minute="7"), retries=1, retry_delay=60)  # type: ignore[untyped-decorator]
def chase_deadlines() -> None:
    """Hourly (at :07): remind, raise overdue petitions to 督办, flag slipped projects; a second
    run the same day sends nothing twice."""
    with job_session() as db:
        run_deadlines(db=db, today=today_shanghai())
        db.commit()
