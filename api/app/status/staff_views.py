"""Staff endpoints for projects and their blockers (read and edit, audited)."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query

from app.core.database import DbSession
from app.policy.departments import blocker_names, department_name
from app.staff import roles
from app.staff.auth import StaffDep
from app.status import editing as projects
from app.status.models import Project
from app.status.staff_schemas import (
    BlockerCreate,
    BlockerRead,
    BlockerResolve,
    BlockerUpdate,
    ProjectRead,
    ProjectUpdate,
)

router = APIRouter(prefix="/staff", tags=["staff"])


def project_read(project: Project) -> ProjectRead:
    """A project with its blockers, names filled in from the catalogue."""
    names = blocker_names()
    return ProjectRead(
        code=project.code,
        name=project.name,
        district=project.district,
        address=project.address,
        developer=project.developer,
        unit_count=project.unit_count,
        initial_registration_done=project.initial_registration_done,
        expected_resolution_date=project.expected_resolution_date,
        blockers=[
            BlockerRead(
                code=b.code,
                name=names.get(b.code, b.code),
                department=b.department,
                department_name=department_name(b.department),
                note=b.note,
                status=b.status,
                changed_at=b.changed_at,
            )
            for b in project.blockers
        ],
    )


@router.get("/projects")
def list_projects(
    db: DbSession,
    user: StaffDep,
    q: Annotated[str | None, Query(max_length=64)] = None,
    district: Annotated[str | None, Query(max_length=64)] = None,
) -> list[dict[str, object]]:
    """Projects with their number of open blockers."""
    roles.require(user, "project.read")
    return [
        {
            "code": p.code,
            "name": p.name,
            "district": p.district,
            "unit_count": p.unit_count,
            "initial_registration_done": p.initial_registration_done,
            "open_blockers": n,
            "expected_resolution_date": p.expected_resolution_date,
        }
        for p, n in projects.list_projects(db=db, q=q, district=district)
    ]


@router.get("/projects/{code}", response_model=ProjectRead)
def get_project(code: str, db: DbSession, user: StaffDep) -> ProjectRead:
    """A project with its blockers."""
    roles.require(user, "project.read")
    return project_read(projects.get_project(db=db, code=code))


@router.patch("/projects/{code}", response_model=ProjectRead)
def update_project(code: str, body: ProjectUpdate, db: DbSession, user: StaffDep) -> ProjectRead:
    """Set the project's expected resolution date."""
    roles.require(user, "project.edit")
    project = projects.get_project(db=db, code=code)
    projects.set_expected_date(
        db=db, user=user, project=project, expected=body.expected_resolution_date
    )
    return project_read(project)


@router.post("/projects/{code}/blockers", response_model=ProjectRead, status_code=201)
def add_blocker(code: str, body: BlockerCreate, db: DbSession, user: StaffDep) -> ProjectRead:
    """Add a blocker (or reopen a resolved one)."""
    roles.require(user, "project.edit")
    project = projects.get_project(db=db, code=code)
    projects.add_blocker(
        db=db,
        user=user,
        project=project,
        code=body.code,
        department=body.department,
        note=body.note,
    )
    return project_read(project)


@router.patch("/projects/{code}/blockers/{blocker}", response_model=ProjectRead)
def update_blocker(
    code: str, blocker: str, body: BlockerUpdate, db: DbSession, user: StaffDep
) -> ProjectRead:
    """Change a blocker's note or owner department."""
    roles.require(user, "project.edit")
    project = projects.get_project(db=db, code=code)
    projects.update_blocker(
        db=db,
        user=user,
        project=project,
        blocker_code=blocker,
        note=body.note,
        department=body.department,
    )
    return project_read(project)


@router.post("/projects/{code}/blockers/{blocker}/resolve", response_model=ProjectRead)
def resolve_blocker(
    code: str, blocker: str, body: BlockerResolve, db: DbSession, user: StaffDep
) -> ProjectRead:
    """Mark a blocker resolved."""
    roles.require(user, "project.edit")
    project = projects.get_project(db=db, code=code)
    projects.resolve_blocker(
        db=db, user=user, project=project, blocker_code=blocker, note=body.note
    )
    return project_read(project)
