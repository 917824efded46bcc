"""Bodies of the staff petition endpoints."""

from __future__ import annotations

from datetime import date, datetime
from typing import Any

from pydantic import BaseModel, ConfigDict, Field


class AssignmentRead(BaseModel):
    """A department's part of a petition."""

    department: str
    department_name: str
    assigned_at: datetime
    answer_due: date
    answer_due_provisional: bool
    answer: str | None
    answered_at: datetime | None
    answered_by: str | None = None
    resident_text: str | None = Field(default=None, description="what residents see once approved")
    approved_at: datetime | None = None
    approved_by: str | None = None
    overdue: bool


class BlockerExplained(BaseModel):
    """A blocker the bot explained to the resident."""

    code: str
    name: str


class SuggestedDepartment(BaseModel):
    """A department the project's open blockers point to (the ledger's 责任单位, else the
    catalogue's default), with the blocker codes that point to it."""

    code: str
    name: str
    blockers: list[str]


class UnavailableAction(BaseModel):
    """A move of the current state the caller's role allows but that would be refused now."""

    code: str
    label: str
    reason: str


class ObjectionRead(BaseModel):
    """An objection (异议) received during the public notice, and the court's document."""

    id: int
    raised_by: str
    content: str
    received_on: date
    status: str = Field(description="open | transferred (to the court) | decided")
    status_label: str
    court_document: str | None = None
    court_document_on: date | None = None
    court_summary: str | None = None


class ResettlementRead(BaseModel):
    """The 征收办's 回迁确认书 of a resettlement case."""

    document_number: str
    confirmed_on: date


class MeetingRead(BaseModel):
    """The office meeting (专题会议) flag of a case and its decision."""

    kind: str = Field(description="general (一般情形) | special (特殊情形)")
    kind_label: str
    reason: str
    decision: str | None = None
    decided_on: date | None = None


class ObjectionBody(BaseModel):
    """An objection received during the notice: who, what, when."""

    model_config = ConfigDict(extra="forbid")

    raised_by: str = Field(min_length=1, max_length=128)
    content: str = Field(min_length=1, max_length=2000)
    received_on: date | None = None
    version: int


class CourtDocumentBody(BaseModel):
    """The court's document on an objection transferred to it."""

    model_config = ConfigDict(extra="forbid")

    document: str = Field(min_length=1, max_length=128, description="文书文号")
    document_on: date | None = None
    summary: str = Field(min_length=1, max_length=2000)
    version: int


class ResettlementBody(BaseModel):
    """The 回迁确认书: document number and date."""

    model_config = ConfigDict(extra="forbid")

    document_number: str = Field(min_length=1, max_length=128)
    confirmed_on: date | None = None
    version: int


class MeetingBody(BaseModel):
    """Flag the case for the office meeting."""

    model_config = ConfigDict(extra="forbid")

    kind: str = Field(description="general | special")
    reason: str = Field(min_length=1, max_length=2000)
    version: int


class MeetingDecisionBody(BaseModel):
    """The office meeting's decision."""

    model_config = ConfigDict(extra="forbid")

    decision: str = Field(min_length=1, max_length=2000)
    decided_on: date | None = None
    version: int


class NoteRead(BaseModel):
    """A staff note."""

    author: str
    text: str
    created_at: datetime


class AuditRead(BaseModel):
    """One audit row (read-only: no endpoint changes audit rows)."""

    at: datetime
    actor: str
    action: str
    action_label: str
    before: dict[str, Any] | None
    after: dict[str, Any] | None


class PetitionListItem(BaseModel):
    """A line of the staff petition list."""

    id: int
    number: str
    status: str
    status_label: str
    intake_date: date
    next_due: date | None
    overdue: bool
    project_name: str | None
    address: str
    departments: list[str]
    version: int


class PetitionList(BaseModel):
    """A page of petitions, overdue first."""

    total: int
    page: int
    items: list[PetitionListItem]


class PetitionDetail(BaseModel):
    """Everything staff see about one petition."""

    id: int
    number: str
    status: str
    status_label: str
    person_name: str
    phone: str
    phone_masked: bool
    address: str
    project_code: str | None
    project_name: str | None
    description: str
    channel: str
    intake_date: date
    answer_due: date
    closure_due: date | None
    notice_earliest_end: date | None
    overdue: bool
    outcome: str | None
    satisfaction: str | None
    satisfaction_source: str | None = Field(
        default=None, description='"resident" (answered in the chat) or "clerk_phone"'
    )
    satisfaction_reason: str | None = None
    review_due: date | None = None
    blockers: list[BlockerExplained] = Field(
        default_factory=list, description="blockers the bot explained before the petition"
    )
    version: int
    assignments: list[AssignmentRead]
    notes: list[NoteRead]
    allowed_actions: list[str] = Field(description="moves that can succeed now for the caller")
    unavailable_actions: list[UnavailableAction] = Field(
        default_factory=list, description="moves the role allows but that wait for something"
    )
    suggested_departments: list[SuggestedDepartment] = Field(
        default_factory=list, description="departments of the project's open blockers"
    )
    objections: list[ObjectionRead] = Field(default_factory=list)
    resettlement_case: bool = Field(
        default=False, description="拆迁回迁: the 回迁确认书 is needed before the notice"
    )
    resettlement: ResettlementRead | None = None
    meeting: MeetingRead | None = None


class AssignBody(BaseModel):
    """Departments to send a petition to."""

    model_config = ConfigDict(extra="forbid")

    departments: list[str] = Field(min_length=1, max_length=20)
    version: int


class TransitionBody(BaseModel):
    """A state move (verify, start_notice, supervise, transfer)."""

    model_config = ConfigDict(extra="forbid")

    action: str
    version: int
    note: str = Field(default="", max_length=2000)


class AnswerBody(BaseModel):
    """A department's written answer."""

    model_config = ConfigDict(extra="forbid")

    answer: str = Field(min_length=1, max_length=5000)
    department: str | None = None
    version: int
    publish: bool = Field(
        default=False, description="publish to the resident at once (the officer approving it)"
    )
    resident_text: str | None = Field(
        default=None, max_length=2000, description="what the resident sees; defaults to answer"
    )


class ApproveBody(BaseModel):
    """A clerk approves (and may edit) what the resident sees of a department's answer."""

    model_config = ConfigDict(extra="forbid")

    version: int
    resident_text: str | None = Field(default=None, max_length=2000)


class NoteBody(BaseModel):
    """A staff note."""

    model_config = ConfigDict(extra="forbid")

    text: str = Field(min_length=1, max_length=2000)


class CloseBody(BaseModel):
    """Closing a case: outcome and the resident's satisfaction."""

    model_config = ConfigDict(extra="forbid")

    outcome: str = Field(min_length=1, max_length=5000)
    satisfaction: str | None = Field(
        default=None, description="only when a clerk reached the resident by phone"
    )
    version: int
