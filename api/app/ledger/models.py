"""One row per ledger upload: the import job's state, and its report or row errors."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import JSON, DateTime, Integer, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from app.core.database import Base, utcnow

STATES = ("queued", "running", "done", "failed")
STATE_LABELS = {"queued": "排队中", "running": "导入中", "done": "导入成功", "failed": "未导入"}


class LedgerImport(Base):
    """An uploaded ledger waiting for, going through or done with its import job."""

    __tablename__ = "ledger_import"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    # The id staff see (in URLs): random, so one upload's number tells nothing of others.
    public_id: Mapped[str] = mapped_column(String(32), unique=True)
    state: Mapped[str] = mapped_column(String(16), default="queued")
    # `staff:<username>`, as in the audit trail.
    actor: Mapped[str] = mapped_column(String(64))
    # The files as uploaded (names only), in upload order.
    files: Mapped[list[str]] = mapped_column(JSON, default=list)
    size_bytes: Mapped[int] = mapped_column(Integer, default=0)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    started_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), nullable=True)
    finished_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), nullable=True)
    # ImportReport as a dict (with `summary`), once done.
    report: Mapped[dict[str, Any] | None] = mapped_column(JSON, nullable=True)
    # The first row errors ({sheet, row, column, reason}) and how many there were in all.
    errors: Mapped[list[dict[str, Any]] | None] = mapped_column(JSON, nullable=True)
    error_total: Mapped[int] = mapped_column(Integer, default=0)
    # Why it failed, in Chinese (never personal data).
    message: Mapped[str | None] = mapped_column(Text, nullable=True)

    @property
    def state_label(self) -> str:
        """The state in Chinese."""
        return STATE_LABELS.get(self.state, self.state)

    @property
    def finished(self) -> bool:
        """True once the job has ended, either way."""
        return self.state in ("done", "failed")
