"""Request and response shapes of the registry (staff), the trainer's callbacks and the model
server (docs/maintainers.md, "Models")."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, PlainSerializer

from app.core.workdays import SHANGHAI


def _shanghai(value: datetime | None) -> str | None:
    if value is None:
        return None
    if value.tzinfo is None:
        value = value.replace(tzinfo=UTC)
    return value.astimezone(SHANGHAI).isoformat()


ShanghaiTime = Annotated[datetime, PlainSerializer(_shanghai, return_type=str | None)]
ModelStatus = Literal["training", "candidate", "live", "retired", "failed"]


class ChecksRead(BaseModel):
    """The candidate's checks against the live model now (a live/retired model: passed)."""

    passed: bool
    refusals: list[str]
    notes: list[str]
    # Intent → how much its F1 is below the live model's (only the intents that fell).
    intent_drops: dict[str, float]
    # Conversation cases the live model passes and this one fails.
    regressed_cases: list[str]


class ModelRead(BaseModel):
    """One model of the registry."""

    id: int
    status: ModelStatus
    status_label: str
    data_hash: str | None
    started_by: str
    created_at: ShanghaiTime
    finished_at: ShanghaiTime | None
    metrics: dict[str, Any] | None
    # Figures read out of the metrics (None when absent).
    macro_f1: float | None
    entity_f1: float | None
    conversations_passed: int | None
    conversations_total: int | None
    refusal: str | None
    fingerprint: str | None
    promoted_at: ShanghaiTime | None
    promoted_by: str | None
    override_reason: str | None
    error: str | None
    checks: ChecksRead | None
    # While training: the step the trainer last reported, in Chinese, and when.
    stage: str | None = None
    stage_label: str | None = None
    heartbeat_at: ShanghaiTime | None = None


class ModelList(BaseModel):
    """The registry, newest first; `live` is the live model's id."""

    models: list[ModelRead]
    live: int | None


class TrainOut(BaseModel):
    """The queued training."""

    id: int
    status: Literal["training"]


class PromoteIn(BaseModel):
    """Promotion (or rollback); an admin overriding refused checks writes why."""

    model_config = ConfigDict(extra="forbid")
    reason: str | None = Field(default=None, max_length=2000)
    # The live model the maintainer saw (its id, 0 for none): when another one went live since,
    # the promotion is refused with 409 `promotion_conflict` instead of replacing it unseen.
    expected_live: int | None = Field(default=None, ge=0)


class ArtifactOut(BaseModel):
    """The stored upload."""

    id: int
    fingerprint: str
    bytes: int
    sha256: str


class ResultIn(BaseModel):
    """The trainer's report. `metrics`: app.modelhub.checks; `data_hash` (optional): the hash
    of the data it trained on. Unknown keys are ignored (a newer trainer may send more)."""

    model_config = ConfigDict(extra="ignore")
    status: Literal["candidate", "failed"]
    metrics: dict[str, Any] | None = None
    fingerprint: str | None = Field(default=None, max_length=128)
    error: str | None = Field(default=None, max_length=4000)
    data_hash: str | None = Field(default=None, max_length=64)


class ProgressIn(BaseModel):
    """The trainer's heartbeat: the step it has begun."""

    stage: Literal["data", "train", "heldout", "conversations", "upload"]


class ProgressOut(BaseModel):
    """The step recorded, in Chinese."""

    id: int
    stage: str
    stage_label: str


class ResultOut(BaseModel):
    """What the registry made of the report."""

    id: int
    status: ModelStatus
    refusal: str | None
