"""The model registry's table: one row per trained (or registered) Rasa model."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import JSON, DateTime, Index, Integer, String, Text, text
from sqlalchemy.orm import Mapped, mapped_column

from app.core.database import Base, utcnow

STATUSES = ("training", "candidate", "live", "retired", "failed")
STATUS_LABELS = {
    "training": "训练中",
    "candidate": "候选",
    "live": "现网",
    "retired": "已退役",
    "failed": "失败",
}
# The steps of a training the trainer reports (POST /api/v1/models/{id}/progress), in order.
TRAINING_STAGES = {
    "data": "准备训练数据",
    "train": "训练模型",
    "heldout": "留出集评测",
    "conversations": "对话测试",
    "upload": "上传模型",
}


class NluModel(Base):
    """A model: how it was made, how it scored, whether and when it served residents.

    At most one row is `live` (a partial unique index: two promotions racing cannot both win).
    """

    __tablename__ = "nlu_model"
    __table_args__ = (
        Index(
            "uq_nlu_model_live",
            "status",
            unique=True,
            sqlite_where=text("status = 'live'"),
            postgresql_where=text("status = 'live'"),
        ),
        Index("ix_nlu_model_fingerprint", "fingerprint"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    status: Mapped[str] = mapped_column(String(16), default="training")
    # Hash of the data it was trained on (the training files and the annotations).
    data_hash: Mapped[str | None] = mapped_column(String(64), nullable=True)
    # `staff:<username>` or `cli:<who>` (registered at start-up).
    started_by: Mapped[str] = mapped_column(String(64))
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    finished_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), nullable=True)
    # Held-out and conversation-suite results (see app.modelhub.checks for the shape).
    metrics: Mapped[dict[str, Any] | None] = mapped_column(JSON, nullable=True)
    # Why it cannot be promoted now (Chinese), or None when the checks pass.
    refusal: Mapped[str | None] = mapped_column(Text, nullable=True)
    # Path of the .tar.gz (inside MODEL_CANDIDATES_DIR).
    artifact: Mapped[str | None] = mapped_column(String(500), nullable=True)
    # Rasa's model id (metadata.json `model_id`): the model server's ETag, Rasa's /status.
    fingerprint: Mapped[str | None] = mapped_column(String(64), nullable=True)
    promoted_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), nullable=True)
    promoted_by: Mapped[str | None] = mapped_column(String(64), nullable=True)
    # An admin's written reason for promoting a candidate the checks refused.
    override_reason: Mapped[str | None] = mapped_column(Text, nullable=True)
    # A failed training's short error (no personal data: the trainer sends a summary).
    error: Mapped[str | None] = mapped_column(Text, nullable=True)
    # While training: the step the trainer last reported (TRAINING_STAGES) and when. A training
    # whose trainer has been silent too long is failed (app.modelhub.service).
    stage: Mapped[str | None] = mapped_column(String(32), nullable=True)
    heartbeat_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), nullable=True)

    @property
    def status_label(self) -> str:
        """The status in Chinese."""
        return STATUS_LABELS.get(self.status, self.status)

    @property
    def stage_label(self) -> str | None:
        """The training step in Chinese (None outside a training)."""
        if self.status != "training":
            return None
        if self.stage is None:
            return "排队等待训练进程"
        return TRAINING_STAGES.get(self.stage, self.stage)
