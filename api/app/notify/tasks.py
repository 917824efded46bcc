"""Jobs of the outbox: deliver one notification, and the sweep that lets nothing be lost."""

from __future__ import annotations

from huey import crontab
from huey.exceptions import RetryTask

from app.jobs.queue import FINAL_FAILURE_HOOKS, JOB_RETRIES, JOB_RETRY_DELAY, huey, job_session
from app.notify import service


# huey ships no type hints: its decorators are untyped for mypy
@huey.task(retries=JOB_RETRIES, retry_delay=JOB_RETRY_DELAY)  # type: ignore[untyped-decorator]
def deliver_notification(notification_id: int) -> None:
    """Deliver a notification; a failed attempt comes back after its backoff."""
    with job_session() as db:
        outcome = service.deliver(db, notification_id)
    if outcome.retry_in is not None:
        raise RetryTask(delay=outcome.retry_in)


def _deliver_gave_up(notification_id: int) -> None:
    # The job itself kept failing (not the channel): the row is listed for staff as failed.
    with job_session() as db:
        service.give_up(db, notification_id)
        db.commit()


FINAL_FAILURE_HOOKS[deliver_notification.task_class.__name__] = _deliver_gave_up


# huey ships no type hints: its decorators are untyped for mypy
@huey.periodic_task(crontab(minute="*"), retries=1, retry_delay=5)  # type: ignore[untyped-decorator]
def sweep_notifications() -> None:
    """Every minute: re-queue notifications left pending or stuck in sending."""
    with job_session() as db:
        service.sweep(db)
