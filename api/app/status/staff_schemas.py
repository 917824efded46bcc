"""Bodies of the staff project and blocker endpoints."""

from __future__ import annotations

from datetime import date, datetime

from pydantic import BaseModel, ConfigDict, Field


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
