"""Request and response shapes of the NLU inbox (docs/maintainers.md)."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, PlainSerializer

from app.core.workdays import SHANGHAI


def _shanghai(value: datetime | None) -> str | None:
    if value is None:
        return None
    if value.tzinfo is None:
        value = value.replace(tzinfo=UTC)
    return value.astimezone(SHANGHAI).isoformat()


ShanghaiTime = Annotated[datetime, PlainSerializer(_shanghai, return_type=str | None)]
# The bot reports these; `staff_flag` comes only from the console.
BotReason = Literal["low_confidence", "out_of_scope", "fallback", "misunderstood", "handoff"]
Reason = Literal[
    "low_confidence", "out_of_scope", "fallback", "misunderstood", "handoff", "staff_flag"
]
Status = Literal["new", "annotated", "out_of_scope", "deleted", "exported"]
MAX_TEXT = 1000
MAX_CONTEXT = 20


class Turn(BaseModel):
    """One message of the conversation around the observed one."""

    model_config = ConfigDict(extra="ignore", populate_by_name=True)
    from_: Literal["resident", "bot", "staff"] = Field(alias="from")
    text: str = Field(default="", max_length=MAX_TEXT * 2)


class PredictedEntity(BaseModel):
    """An entity the NLU found: its span in the (masked) text."""

    model_config = ConfigDict(extra="ignore")
    entity: str = Field(max_length=32)
    start: int = Field(ge=0, le=MAX_TEXT)
    end: int = Field(ge=0, le=MAX_TEXT)
    value: str | None = Field(default=None, max_length=MAX_TEXT)


class ObservationIn(BaseModel):
    """What the bot reports at the end of a turn when a reason applies (already masked)."""

    model_config = ConfigDict(extra="forbid")
    text: str = Field(min_length=1, max_length=MAX_TEXT)
    predicted_intent: str | None = Field(default=None, max_length=64)
    confidence: float | None = Field(default=None, ge=0.0, le=1.0)
    reason: BotReason
    channel: str = Field(default="bot", pattern=r"^[a-z_]{1,16}$")
    entities: list[PredictedEntity] = Field(default_factory=list, max_length=20)
    context: list[Turn] = Field(default_factory=list, max_length=MAX_CONTEXT)
    model_id: str | None = Field(default=None, max_length=64)
    project_code: str | None = Field(default=None, max_length=32)


class ObservationOut(BaseModel):
    """The stored item's id; null when the api's own threshold does not keep it."""

    id: int | None


class InboxTurn(BaseModel):
    """A turn of the context as staff see it."""

    model_config = ConfigDict(populate_by_name=True)
    from_: str = Field(alias="from")
    text: str


class EntitySpan(BaseModel):
    """An entity span over the item's text."""

    entity: str
    start: int
    end: int
    value: str | None = None


class InboxItem(BaseModel):
    """One message of the inbox (masked)."""

    id: int
    text: str
    predicted_intent: str | None
    confidence: float | None
    channel: str
    at: ShanghaiTime
    reason: str
    status: str
    context: list[InboxTurn]
    project_code: str | None = None
    sender: str | None = Field(default=None, description="pseudonym of the conversation")
    entities: list[EntitySpan] = Field(default_factory=list, description="predicted")
    intent: str | None = Field(default=None, description="the maintainer's intent")
    annotated_entities: list[EntitySpan] = Field(default_factory=list)
    exported_to: str | None = None


class InboxList(BaseModel):
    """The inbox, newest first."""

    items: list[InboxItem]


class SpanIn(BaseModel):
    """A span the maintainer marked: character offsets into the item's text."""

    model_config = ConfigDict(extra="forbid")
    start: int = Field(ge=0)
    end: int = Field(ge=0)
    entity: str = Field(max_length=32)
    value: str | None = Field(default=None, max_length=200)


class AnnotationIn(BaseModel):
    """Correct the intent and entities, mark out of scope, or delete (personal data)."""

    model_config = ConfigDict(extra="forbid")
    intent: str | None = Field(default=None, max_length=64)
    entities: list[SpanIn] | None = Field(default=None, max_length=20)
    out_of_scope: bool = False
    delete: bool = False


class ExportFile(BaseModel):
    """A file the export wrote (path relative to the repository when inside it)."""

    path: str
    channel: str
    examples: int


class ExportSkip(BaseModel):
    """An annotated example the export left out, and why."""

    id: int
    reason: Literal["training", "held_out", "duplicate"]


class ExportOut(BaseModel):
    """What `POST nlu/export` wrote and skipped."""

    files: list[ExportFile]
    exported: int
    skipped: list[ExportSkip]


class FlagIn(BaseModel):
    """A turn of a petition's conversation, flagged for the maintainers."""

    model_config = ConfigDict(extra="forbid")
    petition: str = Field(min_length=1, max_length=32)
    position: int = Field(ge=0, le=10_000)


class FlagOut(BaseModel):
    """The inbox item of the flagged turn (the same one when it was flagged before)."""

    id: int
    created: bool
