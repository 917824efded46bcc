"""The periodic deadline job (app.petition.deadlines does the work)."""

from __future__ import annotations

from datetime import date

from huey import crontab

from app.core.workdays import today_shanghai
from app.jobs.queue import huey, job_session
from app.petition.deadlines import run_deadlines

# Overdue petitions raised per transaction: a first run over a large backlog (or a long-stopped
# worker) commits in batches instead of holding the database's write lock for minutes.
SUPERVISE_BATCH = 500


def chase(today: date | None = None, batch: int = SUPERVISE_BATCH) -> int:
    """Run the deadline job to the end, one transaction per batch; petitions raised."""
    day = today or today_shanghai()
    total, after = 0, 0
    while True:
        with job_session() as db:
            run = run_deadlines(db=db, today=day, supervise_limit=batch, after_id=after)
            db.commit()
        total += len(run.supervised)
        if not run.more:
            return total
        after = run.last_id


# huey ships no type hints: its decorators are untyped for mypy
@huey.periodic_task(crontab(minute="7"), retries=1, retry_delay=60)  # type: ignore[untyped-decorator]
def chase_deadlines() -> None:
    """Hourly (at :07): remind, raise overdue petitions to 督办, flag slipped projects; a second
    run the same day sends nothing twice."""
    chase()
