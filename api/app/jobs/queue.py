"""The one Huey instance, its storage chosen by `JOB_QUEUE_URL`, and how a job's end is recorded.

`sqlite:///<path>` keeps the queue in a SQLite file (a relative path is taken from the api
directory, like the database default); `redis://host:port/db` uses Redis (production). Tasks are
registered by importing `app.tasks`; the consumer is `python -m app.worker`.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

from huey import Huey
from huey import signals as huey_signals
from huey.api import Task
from huey.storage import BaseStorage, RedisStorage, SqliteStorage
from sqlalchemy.orm import Session, sessionmaker

from app.core.config import API_DIR, settings
from app.core.database import SessionLocal

log = logging.getLogger("app.jobs")

# How a job that raised unexpectedly (database down, a bug) is tried again before it is
# recorded as failed for good. Deliveries back off on their own (see app.notify.service).
JOB_RETRIES = 3
JOB_RETRY_DELAY = 10


def storage_for(url: str) -> tuple[type[BaseStorage], dict[str, Any]]:
    """The Huey storage class and its arguments for a queue URL."""
    if url.startswith("sqlite:"):
        raw = url.split(":///", 1)[1] if ":///" in url else ""
        if not raw:
            raise ValueError("JOB_QUEUE_URL: sqlite:///<path> needs a file path")
        path = Path(raw)
        if not path.is_absolute():
            path = API_DIR / path
        path.parent.mkdir(parents=True, exist_ok=True)
        return SqliteStorage, {"filename": str(path)}
    if url.startswith(("redis://", "rediss://", "unix://")):
        # Blocking pops: a worker picks a job up as soon as it is queued.
        return RedisStorage, {"url": url, "blocking": True, "read_timeout": 1}
    raise ValueError("JOB_QUEUE_URL must start with sqlite:/// or redis://")


def make_huey(url: str, name: str) -> Huey:
    """A Huey instance on the storage of `url` (results are not kept: jobs write the database)."""
    storage_class, kwargs = storage_for(url)
    return Huey(name, results=False, utc=True, storage_class=storage_class, **kwargs)


DEFAULT_URL = f"sqlite:///{API_DIR / 'data' / 'jobs.db'}"
huey = make_huey(settings.job_queue_url or DEFAULT_URL, settings.job_queue_name)


def use_queue(url: str, name: str | None = None) -> Huey:
    """Point the one Huey instance at another storage (tests, bench); tasks stay registered."""
    storage_class, kwargs = storage_for(url or DEFAULT_URL)
    try:
        huey.storage.close()
    except Exception:  # noqa: BLE001 - an old storage that cannot close is dropped anyway
        log.debug("old job storage did not close")
    huey.name = name or huey.name
    huey.storage_class = storage_class
    huey.storage_kwargs = kwargs
    huey.storage = huey.create_storage()
    return huey


# The sessions jobs open (tests and the bench point them at their own database).
sessions: sessionmaker[Session] = SessionLocal


def use_database(factory: sessionmaker[Session]) -> None:
    """Make jobs open their sessions from `factory`."""
    global sessions
    sessions = factory


def job_session() -> Session:
    """A new session for one job (the job commits and closes it)."""
    return sessions()


def is_redis() -> bool:
    """True when the queue lives in Redis."""
    return isinstance(huey.storage, RedisStorage)


# huey ships no type hints: its decorators are untyped for mypy
@huey.signal(huey_signals.SIGNAL_ERROR)  # type: ignore[untyped-decorator]
def _record_failure(signal: str, task: Task, exc: BaseException | None = None) -> None:
    """Log every failed run (job name, id and error type only); a final failure also runs the
    task's own `on_final_failure` hook (a notification becomes `failed`)."""
    final = not task.retries
    log.warning(
        "job %s %s failed (%s)%s",
        task.name,
        task.id,
        type(exc).__name__ if exc else "error",
        ", giving up" if final else f", {task.retries} retries left",
    )
    if final:
        hook = FINAL_FAILURE_HOOKS.get(task.name)
        if hook is not None:
            try:
                hook(*task.args, **task.kwargs)
            except Exception as hook_exc:  # noqa: BLE001 - recording must not raise in huey
                log.error("job %s: recording the failure failed (%s)", task.name, type(hook_exc))


# Task name -> function called with the task's arguments after its last retry failed.
FINAL_FAILURE_HOOKS: dict[str, Any] = {}
