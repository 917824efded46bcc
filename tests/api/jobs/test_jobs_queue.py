"""The job queue: storage from JOB_QUEUE_URL, the real consumer on SQLite and on Redis, retries
and the record of a job that failed for good (no personal data in the log)."""

from __future__ import annotations

import logging
import threading
from pathlib import Path

import pytest
from huey import Huey
from huey.storage import RedisStorage, SqliteStorage
from notify.outbox_fixtures import CommittedDb
from notify.outboxkit import new_petition, notification, wait_for, webchat_resident

from app.core.config import API_DIR
from app.jobs import queue as job_queue
from app.jobs.queue import FINAL_FAILURE_HOOKS, huey, storage_for
from app.notify import service as notify_service
from app.notify.tasks import deliver_notification
from app.worker import running_consumer

ran: list[str] = []
attempts: list[int] = []
gave_up: list[str] = []
_lock = threading.Lock()


@huey.task()
def _test_record(value: str) -> None:
    with _lock:
        ran.append(value)


@huey.task(retries=2, retry_delay=0)
def _test_always_fails(value: str) -> None:
    with _lock:
        attempts.append(1)
    raise RuntimeError(f"secret {value}")


def _gave_up(value: str) -> None:
    gave_up.append(value)


FINAL_FAILURE_HOOKS[_test_always_fails.task_class.__name__] = _gave_up


def test_storage_from_the_url(tmp_path: Path) -> None:
    """sqlite:/// with a relative path lives under api/; redis:// is Redis; others refused."""
    cls, kwargs = storage_for("sqlite:///data/x-jobs.db")
    assert cls is SqliteStorage and kwargs["filename"] == str(API_DIR / "data" / "x-jobs.db")
    cls, kwargs = storage_for(f"sqlite:///{tmp_path / 'q.db'}")
    assert kwargs["filename"] == str(tmp_path / "q.db")
    cls, kwargs = storage_for("redis://redis:6379/1")
    assert cls is RedisStorage and kwargs["url"] == "redis://redis:6379/1"
    with pytest.raises(ValueError):
        storage_for("amqp://elsewhere")


def test_consumer_runs_jobs_on_sqlite_and_redis(any_queue: Huey) -> None:
    """A queued job runs in the real consumer (threads) on both storages."""
    ran.clear()
    _test_record("a")
    _test_record("b")
    assert any_queue.pending_count() == 2
    with running_consumer(periodic=False):
        wait_for(lambda: sorted(ran) == ["a", "b"])
    assert isinstance(any_queue.storage, RedisStorage) == job_queue.is_redis()


def test_a_job_failing_for_good_is_retried_then_recorded(
    sqlite_queue: Huey, caplog: pytest.LogCaptureFixture
) -> None:
    """Two retries, then the final-failure hook; the log names the job and the error type,
    never the arguments or the exception text."""
    attempts.clear()
    gave_up.clear()
    caplog.set_level(logging.INFO)
    _test_always_fails("13812345678")
    with running_consumer(periodic=False):
        wait_for(lambda: gave_up == ["13812345678"])
    assert len(attempts) == 3
    lines = [r.getMessage() for r in caplog.records if r.name == "app.jobs"]
    assert any("giving up" in line and "RuntimeError" in line for line in lines), lines
    everything = "\n".join(
        r.getMessage() + (str(r.exc_info) if r.exc_info else "") for r in caplog.records
    )
    assert "13812345678" not in everything


def test_delivery_job_failing_for_good_marks_the_notification_failed(
    outbox_db: CommittedDb, sqlite_queue: Huey
) -> None:
    """The deliver job's final-failure hook lists the notification for staff as failed."""
    with outbox_db.sessions() as db:
        sender, _ = webchat_resident(db)
        petition = new_petition(db, sender_id=sender)
        row = notify_service.add_notification(db, petition=petition, kind="state", text="已分派")
        assert row is not None
        db.commit()
        nid = row.id
    hook = FINAL_FAILURE_HOOKS[deliver_notification.task_class.__name__]
    hook(nid)
    failed = notification(outbox_db.sessions, nid)
    assert (failed.status, failed.last_error) == ("failed", "worker error")
