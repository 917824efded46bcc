"""Response models of the policy endpoints (the catalogue as the api serves it)."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel


class DepartmentRead(BaseModel):
    """A department: code, Chinese name and the other names it goes by."""

    code: str
    name: str
    aliases: list[str]


class CatalogueDepartmentRef(BaseModel):
    """A department as referenced from a blocker: code and Chinese name."""

    code: str
    name: str


class PolicyRead(BaseModel):
    """A policy and what it means for the buyer."""

    code: str
    name: str
    summary: str


class CatalogueBlockerRead(BaseModel):
    """A blocker type with everything residents and staff need to know about it."""

    kind: Literal["blocker"] = "blocker"
    code: str
    name: str
    explanation: str
    departments: list[CatalogueDepartmentRef]
    buyer_at_fault: bool
    policies: list[PolicyRead]
    resident_next_steps: list[str]
    staff_next_steps: list[str]
    time_limit: str
    time_limit_working_days: int | None


class CatalogueFaqRead(BaseModel):
    """A `policy_faq/<code>` topic: the question and the bot's answer."""

    kind: Literal["faq"] = "faq"
    code: str
    title: str
    answer: str
    policies: list[PolicyRead]


class GuidanceSectionRead(BaseModel):
    """A titled list of short items."""

    title: str
    items: list[str]
    note: str | None = None


class GuidanceRead(BaseModel):
    """Materials per situation, where to apply, next steps per case."""

    materials: dict[str, GuidanceSectionRead]
    where_to_apply: GuidanceSectionRead
    next_steps: dict[str, GuidanceSectionRead]


class CatalogueSettingsRead(BaseModel):
    """Time limits in working days."""

    first_answer_working_days: int
    closure_target_working_days: int
    public_notice_working_days: int
    tax_opinion_working_days: int
    registry_working_days: int
    review_days: int


class CatalogueRead(BaseModel):
    """The whole catalogue."""

    blockers: list[CatalogueBlockerRead]
    faq: list[CatalogueFaqRead]
    departments: list[DepartmentRead]
    policies: list[PolicyRead]
    guidance: GuidanceRead
    settings: CatalogueSettingsRead
