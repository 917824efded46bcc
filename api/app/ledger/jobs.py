"""The ledger import job: an upload's files imported by the worker, never inside a request.

`run_import` is what the job does (also called by the CLI's own path through `import_sources`):
the row goes `queued` → `running` → `done` (with the report) or `failed` (with the row errors
or a Chinese reason); nothing is half-imported either way, and the uploaded files (they carry
owners' names and ID numbers) are deleted when the job ends.

On SQLite the import reads, checks and stages every row in a transaction that writes only a
temporary table (no lock on the database file), commits it, then writes projects and units in
one `BEGIN IMMEDIATE` transaction. The write lock is held for that last step only, and the
database's write gate with it (app.core.sqlite_gate): a petition filed meanwhile waits at the
gate until the import has committed, however long that takes, instead of failing on SQLite's
busy timeout; the row cap (LEDGER_SQLITE_MAX_ROWS) keeps the wait to seconds. PostgreSQL
imports in one ordinary transaction.
"""

from __future__ import annotations

import logging
import shutil
from collections.abc import Sequence
from contextlib import ExitStack
from dataclasses import asdict
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from huey import crontab
from sqlalchemy import or_, select, text
from sqlalchemy.engine import Engine
from sqlalchemy.orm import Session

from app.core import sqlite_gate
from app.core.config import settings
from app.core.database import utcnow
from app.jobs import queue as job_queue
from app.jobs.queue import FINAL_FAILURE_HOOKS, huey
from app.ledger.models import LedgerImport
from app.ledger.reader import LedgerSource
from app.ledger.service import ImportReport, LedgerValidationError, import_ledger

log = logging.getLogger("app.ledger")

MAX_STORED_ERRORS = 1000
IMPORT_STATEMENT_TIMEOUT = "30min"
STALLED = "导入任务中断了（处理它的后台进程可能重启过），未导入任何数据。请重新上传这份台账。"
FAILED_UNEXPECTEDLY = (
    "导入时出错（{kind}），未导入任何数据。请稍后重新上传；如果再次出错，请联系系统管理员。"
)


def upload_folder(public_id: str) -> Path:
    """Where one upload's files wait for their job."""
    return settings.ledger_upload_dir / public_id


def import_sources(
    sources: Sequence[LedgerSource], *, engine: Engine, actor: str, progress: bool = False
) -> ImportReport:
    """Import and commit, all or nothing; on SQLite with the short final write lock."""
    if engine.dialect.name != "sqlite":
        with Session(bind=engine, autoflush=False, expire_on_commit=False) as db:
            if engine.dialect.name == "postgresql":
                # A background job, not a request: a per-statement limit meant for requests
                # must not cut a big ledger's duplicate check short (its transaction only).
                db.execute(text(f"SET LOCAL statement_timeout = '{IMPORT_STATEMENT_TIMEOUT}'"))
            report = import_ledger(sources, db=db, actor=actor, progress=progress)
            db.commit()
        return report
    gate = sqlite_gate.gate_of(engine)
    with engine.connect() as conn, ExitStack() as held:
        raw: Any = conn.connection.driver_connection
        previous = raw.isolation_level
        raw.isolation_level = None  # the transactions below are ours, not pysqlite's
        conn.info[sqlite_gate.OWNER] = True  # its writes do not wait at the gate it holds
        db = Session(bind=conn, autoflush=False, expire_on_commit=False)
        try:
            conn.exec_driver_sql("BEGIN")

            def before_write() -> None:
                # Staging touched only the temporary table: end that transaction, let the
                # writes in progress finish and hold new ones at the gate (they wait there, not
                # on the busy timeout), then take the write lock with a fresh snapshot.
                conn.exec_driver_sql("COMMIT")
                if gate is not None:
                    held.enter_context(gate.exclusive())
                conn.exec_driver_sql("BEGIN IMMEDIATE")

            report = import_ledger(
                sources, db=db, actor=actor, progress=progress, before_write=before_write
            )
            db.flush()
            conn.exec_driver_sql("COMMIT")
        except BaseException:
            if raw.in_transaction:
                raw.rollback()
            raise
        finally:
            db.close()
            raw.isolation_level = previous
            conn.info.pop(sqlite_gate.OWNER, None)
            held.close()  # the gate opens after the commit (or the rollback)
    return report


def _record(import_id: int, **values: Any) -> None:
    with job_queue.job_session() as db:
        row = db.get(LedgerImport, import_id)
        if row is not None:
            for key, value in values.items():
                setattr(row, key, value)
            db.commit()


def run_import(import_id: int) -> str:
    """Run one queued import; returns its final state ('' when there was nothing to run)."""
    with job_queue.job_session() as db:
        row = db.get(LedgerImport, import_id)
        if row is None or row.state != "queued":
            return ""  # gone, or a second delivery of a job that already ran
        row.state, row.started_at = "running", utcnow()
        public_id, names, actor = row.public_id, list(row.files), row.actor
        db.commit()
        engine = db.get_bind()
    assert isinstance(engine, Engine)
    folder = upload_folder(public_id)
    try:
        sources: list[LedgerSource] = [folder / str(i) / name for i, name in enumerate(names)]
        report = import_sources(sources, engine=engine, actor=actor)
    except LedgerValidationError as exc:
        errors = [asdict(e) for e in exc.errors[:MAX_STORED_ERRORS]]
        _record(
            import_id,
            state="failed",
            finished_at=utcnow(),
            errors=errors,
            error_total=exc.total,
            message=exc.message,
        )
        return "failed"
    except Exception as exc:  # noqa: BLE001 - recorded for staff; the type only in the log
        log.warning("ledger import %s failed (%s)", import_id, type(exc).__name__)
        _record(
            import_id,
            state="failed",
            finished_at=utcnow(),
            message=FAILED_UNEXPECTEDLY.format(kind=type(exc).__name__),
        )
        return "failed"
    finally:
        shutil.rmtree(folder, ignore_errors=True)
    result = asdict(report) | {"summary": report.summary_zh()}
    _record(import_id, state="done", finished_at=utcnow(), report=result)
    log.info("ledger import %s done", import_id)
    return "done"


# huey ships no type hints: its decorators are untyped for mypy
@huey.task(retries=0)  # type: ignore[untyped-decorator]
def import_ledger_job(import_id: int) -> None:
    """The job queued by an upload (app.ledger.intake)."""
    run_import(import_id)


def _job_gave_up(import_id: int) -> None:
    message = FAILED_UNEXPECTEDLY.format(kind="任务中断")
    _record(import_id, state="failed", finished_at=utcnow(), message=message)


FINAL_FAILURE_HOOKS[import_ledger_job.task_class.__name__] = _job_gave_up


def _aware(value: datetime) -> datetime:
    return value if value.tzinfo else value.replace(tzinfo=UTC)


def sweep_stalled(now: datetime | None = None) -> int:
    """Fail the imports queued or running for longer than LEDGER_IMPORT_STALL_SECONDS (their
    worker was killed: the import's one transaction wrote nothing) and remove upload folders
    no unfinished import owns; returns how many imports were failed."""
    now = now or utcnow()
    cutoff = now - timedelta(seconds=settings.ledger_import_stall_seconds)
    failed = 0
    with job_queue.job_session() as db:
        unfinished = list(
            db.scalars(
                select(LedgerImport).where(
                    or_(LedgerImport.state == "queued", LedgerImport.state == "running")
                )
            )
        )
        keep: set[str] = set()
        for row in unfinished:
            since = _aware(row.started_at or row.created_at)
            if since >= cutoff:
                keep.add(row.public_id)
                continue
            row.state, row.finished_at, row.message = "failed", now, STALLED
            failed += 1
        db.commit()
    root = settings.ledger_upload_dir
    if root.is_dir():
        for folder in root.iterdir():
            if folder.name in keep:
                continue
            modified = datetime.fromtimestamp(folder.stat().st_mtime, UTC)
            if modified < cutoff or folder.name in {r.public_id for r in unfinished}:
                shutil.rmtree(folder, ignore_errors=True)
    if failed:
        log.warning("ledger imports: %d stalled, marked failed", failed)
    return failed


# huey ships no type hints: its decorators are untyped for mypy
@huey.periodic_task(crontab(minute="*/10"), retries=0)  # type: ignore[untyped-decorator]
def sweep_ledger_imports() -> None:
    """Every 10 minutes: imports whose worker died are failed, orphan uploads removed."""
    sweep_stalled()
