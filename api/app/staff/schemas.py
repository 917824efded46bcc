"""Request and response shapes of the staff API."""

from __future__ import annotations

from datetime import date, datetime

from pydantic import BaseModel, ConfigDict, Field


class TokenRead(BaseModel):
    """An OAuth2 bearer token."""

    access_token: str
    token_type: str = "bearer"
    expires_in: int


class UserRead(BaseModel):
    """A staff account as shown to itself and to admins."""

    model_config = ConfigDict(from_attributes=True)

    username: str
    display_name: str
    role: str
    role_label: str
    department: str | None
    active: bool


class UserCreate(BaseModel):
    """A new account (admin only)."""

    model_config = ConfigDict(extra="forbid")

    username: str = Field(min_length=3, max_length=64)
    password: str = Field(min_length=10, max_length=256)
    role: str
    department: str | None = None
    display_name: str = Field(default="", max_length=64)


class UserUpdate(BaseModel):
    """Changes to an account (admin only)."""

    model_config = ConfigDict(extra="forbid")

    role: str | None = None
    department: str | None = None
    active: bool | None = None
    password: str | None = Field(default=None, min_length=10, max_length=256)


class AssignmentRead(BaseModel):
    """A department's part of a petition."""

    department: str
    department_name: str
    assigned_at: datetime
    answer_due: date
    answer_due_provisional: bool
    answer: str | None
    answered_at: datetime | None
    overdue: bool


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
    before: dict | None
    after: dict | None


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
    version: int
    assignments: list[AssignmentRead]
    notes: list[NoteRead]
    allowed_actions: list[str]


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
    version: int
    department: str | None = None


class NoteBody(BaseModel):
    """A staff note."""

    model_config = ConfigDict(extra="forbid")

    text: str = Field(min_length=1, max_length=2000)


class CloseBody(BaseModel):
    """Closing a case: outcome and the resident's satisfaction."""

    model_config = ConfigDict(extra="forbid")

    outcome: str = Field(min_length=1, max_length=5000)
    satisfaction: str
    version: int


class BlockerRead(BaseModel):
    """A project's blocker as staff see it."""

    code: str
    name: str
    department: str
    department_name: str
    note: str
    status: str
    changed_at: datetime


class ProjectRead(BaseModel):
    """A project page's data."""

    code: str
    name: str
    district: str
    address: str
    developer: str
    unit_count: int
    initial_registration_done: bool
    expected_resolution_date: date | None
    blockers: list[BlockerRead]


class BlockerCreate(BaseModel):
    """A blocker to add to a project."""

    model_config = ConfigDict(extra="forbid")

    code: str
    department: str | None = None
    note: str = Field(default="", max_length=2000)


class BlockerUpdate(BaseModel):
    """Changes to a blocker."""

    model_config = ConfigDict(extra="forbid")

    note: str | None = Field(default=None, max_length=2000)
    department: str | None = None


class BlockerResolve(BaseModel):
    """Marking a blocker resolved, with an optional note."""

    model_config = ConfigDict(extra="forbid")

    note: str = Field(default="", max_length=2000)


class ProjectUpdate(BaseModel):
    """Changes to a project (expected resolution date)."""

    model_config = ConfigDict(extra="forbid")

    expected_resolution_date: date | None
