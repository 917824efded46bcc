"""Response models of the project endpoints: a project's certificate status for residents."""

from __future__ import annotations

from datetime import date, datetime
from typing import Literal

from pydantic import BaseModel, Field


class ResponsibleDepartment(BaseModel):
    """A responsible department: catalogue code and Chinese name."""

    code: str
    name: str


class ApplicablePolicy(BaseModel):
    """A policy that applies to a blocker."""

    code: str
    name: str
    summary: str


class InitialRegistration(BaseModel):
    """The project's 首次登记."""

    done: bool
    label: str = Field(description="已完成 / 未完成")


class TransferProgress(BaseModel):
    """转移登记 progress over the project's units in the ledger."""

    units_total: int
    done: int
    in_progress: int
    not_started: int
    rate: float | None = Field(description="done / units_total (0–1); null without units")


class OpenBlockerRead(BaseModel):
    """An open blocker with the catalogue's explanation and the local note."""

    code: str
    name: str
    status: Literal["open"] = "open"
    status_label: str
    explanation: str
    note: str = Field(description="the ledger's 卡点说明 for this project")
    department: ResponsibleDepartment = Field(description="the ledger's 责任单位 (or the default)")
    departments: list[ResponsibleDepartment] = Field(
        description="every department involved: the responsible one first, then the "
        "catalogue's other departments for this blocker"
    )
    buyer_at_fault: bool
    policies: list[ApplicablePolicy]
    resident_next_steps: list[str]
    time_limit: str
    time_limit_working_days: int | None
    expected_date: date | None
    since: datetime


class ResolvedBlockerRead(BaseModel):
    """A blocker that has been resolved, and when."""

    code: str
    name: str
    status: Literal["resolved"] = "resolved"
    status_label: str
    note: str
    department: ResponsibleDepartment
    resolved_at: datetime


class NextSteps(BaseModel):
    """What happens next for a resident of this project (catalogue guidance)."""

    situation: str
    title: str
    items: list[str]
    note: str | None = None


class ProjectStatusRead(BaseModel):
    """A project with its certificate status (the shape `project_status` returns)."""

    code: str
    name: str
    aliases: list[str]
    district: str
    address: str
    developer: str
    unit_count: int
    initial_registration: InitialRegistration
    transfer_registration: TransferProgress
    expected_resolution_date: date | None
    expected_date_passed: bool = Field(
        default=False,
        description="预计化解日期 is before today while blockers are still open: the date "
        "slipped (the bot says so instead of showing a past date)",
    )
    open_blockers: list[OpenBlockerRead]
    resolved_blockers: list[ResolvedBlockerRead]
    next_steps: NextSteps


class ProjectSummary(BaseModel):
    """A project in a search result."""

    code: str
    name: str
    aliases: list[str]
    district: str
    address: str
    developer: str
    unit_count: int
    initial_registration_done: bool
    open_blocker_count: int


class ProjectPage(BaseModel):
    """One page of projects matching a search."""

    items: list[ProjectSummary]
    total: int
    limit: int
    offset: int
