"""Staff JSON endpoints for collective cases (并单) under /api/v1/staff/cases."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated

from fastapi import APIRouter, Query
from pydantic import BaseModel, Field
from sqlalchemy import select
from sqlalchemy.orm import Session

from app.core.database import DbSession
from app.petition import cases
from app.petition.case_models import PetitionCase
from app.policy.departments import blocker_names
from app.staff.auth import StaffDep
from app.staff.models import StaffUser
from app.status.models import Project

router = APIRouter(prefix="/staff/cases", tags=["staff: collective cases"])


class CaseMemberRead(BaseModel):
    """A member petition and where it stands (each is closed on its own)."""

    number: str
    status: str
    status_label: str
    departments: list[str]
    answered: list[str]


class SuggestionRead(BaseModel):
    """Open petitions of one project sharing one blocker, not in a case yet."""

    project_code: str
    project_name: str
    blocker: str
    blocker_name: str
    petitions: list[str]


class CaseCreate(BaseModel):
    """Confirm a case: the petitions (ids or numbers) and the blocker they share."""

    petitions: list[str | int] = Field(min_length=2, max_length=2000)
    blocker: str = Field(min_length=1, max_length=64)
    title: str | None = Field(default=None, max_length=128)


class CaseAssign(BaseModel):
    """Departments every open member is sent to."""

    departments: list[str] = Field(min_length=1, max_length=20)


class CaseAnswer(BaseModel):
    """One department answer, published to every member's resident."""

    answer: str = Field(min_length=1, max_length=5000)
    department: str | None = Field(default=None, max_length=64)
    resident_text: str | None = Field(default=None, max_length=2000)


class Skipped(BaseModel):
    """A member a case-wide action did not reach, and why."""

    number: str
    reason: str


class CaseRead(BaseModel):
    """A case with its members."""

    id: int
    number: str
    title: str
    status: str
    status_label: str
    project_code: str | None
    project_name: str | None
    blocker: str
    blocker_name: str
    created_by: str
    created_at: datetime
    closed_at: datetime | None
    suggested_departments: list[str]
    answer_department: str | None
    answer_text: str | None
    members: list[CaseMemberRead]


class CaseActionRead(CaseRead):
    """A case after a case-wide action: whom it reached and whom it skipped."""

    done: list[str]
    skipped: list[Skipped]


def case_read(db: Session, user: StaffUser, case: PetitionCase) -> CaseRead:
    """The JSON of a case as this user may see it."""
    project = db.get(Project, case.project_id)
    return CaseRead(
        id=case.id,
        number=case.number,
        title=case.title,
        status=case.status,
        status_label=case.status_label,
        project_code=project.code if project else None,
        project_name=project.name if project else None,
        blocker=case.blocker,
        blocker_name=blocker_names().get(case.blocker, case.blocker),
        created_by=case.created_by,
        created_at=case.created_at,
        closed_at=case.closed_at,
        suggested_departments=cases.suggested_departments(db=db, case=case),
        answer_department=case.answer_department,
        answer_text=case.answer_text,
        members=[
            CaseMemberRead(
                number=p.number,
                status=p.status,
                status_label=p.status_label,
                departments=[a.department for a in p.assignments],
                answered=[a.department for a in p.assignments if a.answer is not None],
            )
            for p in cases.members(db=db, user=user, case=case)
        ],
    )


def _action_read(
    db: Session, user: StaffUser, case: PetitionCase, outcome: cases.CaseOutcome
) -> CaseActionRead:
    return CaseActionRead(
        **case_read(db, user, case).model_dump(),
        done=outcome.done,
        skipped=[Skipped(number=n, reason=r) for n, r in outcome.skipped],
    )


@router.get("/suggestions", response_model=list[SuggestionRead])
def list_suggestions(
    db: DbSession,
    user: StaffDep,
    project: Annotated[str | None, Query(max_length=32)] = None,
) -> list[SuggestionRead]:
    """Groups of ≥ 2 open petitions of one project and blocker, not in a case (clerks)."""
    project_id = None
    if project:
        found = db.scalar(select(Project.id).where(Project.code == project))
        project_id = int(found) if found is not None else -1
    return [
        SuggestionRead(
            project_code=s.project.code,
            project_name=s.project.name,
            blocker=s.blocker,
            blocker_name=s.blocker_name,
            petitions=[p.number for p in s.petitions],
        )
        for s in cases.suggestions(db=db, user=user, project_id=project_id)
    ]


@router.get("", response_model=list[CaseRead])
def list_cases(
    db: DbSession,
    user: StaffDep,
    status: Annotated[str | None, Query(pattern="^(open|closed)$")] = None,
) -> list[CaseRead]:
    """Cases the caller may see, open first."""
    rows = cases.list_cases(db=db, user=user, status=status)
    return [case_read(db, user, r.case) for r in rows]


@router.post("", response_model=CaseRead, status_code=201)
def create_case(body: CaseCreate, db: DbSession, user: StaffDep) -> CaseRead:
    """Confirm a case (audited); the petitions must be open, of one project and blocker."""
    case = cases.create_case(
        db=db, user=user, refs=body.petitions, blocker=body.blocker, title=body.title
    )
    return case_read(db, user, case)


@router.get("/{case_ref}", response_model=CaseRead)
def get_case(case_ref: str, db: DbSession, user: StaffDep) -> CaseRead:
    """One case by id or number, with each household's state (404 when not visible)."""
    return case_read(db, user, cases.get_case(db=db, user=user, ref=case_ref))


@router.post("/{case_ref}/assign", response_model=CaseActionRead)
def assign_case(case_ref: str, body: CaseAssign, db: DbSession, user: StaffDep) -> CaseActionRead:
    """Assign every open member to the departments; members that cannot be are skipped."""
    case = cases.get_case(db=db, user=user, ref=case_ref)
    outcome = cases.assign_case(db=db, user=user, case=case, departments_=body.departments)
    return _action_read(db, user, case, outcome)


@router.post("/{case_ref}/answer", response_model=CaseActionRead)
def answer_case(case_ref: str, body: CaseAnswer, db: DbSession, user: StaffDep) -> CaseActionRead:
    """Record one department answer on every member and send it to each resident."""
    case = cases.get_case(db=db, user=user, ref=case_ref)
    outcome = cases.answer_case(
        db=db,
        user=user,
        case=case,
        text=body.answer,
        department=body.department,
        resident_text=body.resident_text,
    )
    return _action_read(db, user, case, outcome)
