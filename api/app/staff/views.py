"""Staff JSON endpoints: the token endpoint, accounts, projects and blockers, ledger upload."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, File, Query, Request, UploadFile
from fastapi.security import OAuth2PasswordRequestForm

from app.core.config import settings
from app.core.database import DbSession
from app.core.errors import AppError
from app.staff import ledger_upload, projects, roles
from app.staff import service as staff_service
from app.staff.auth import StaffDep, check_login_rate
from app.staff.departments import blocker_names, department_name
from app.staff.models import StaffUser
from app.staff.schemas import (
    BlockerCreate,
    BlockerRead,
    BlockerResolve,
    BlockerUpdate,
    ProjectRead,
    ProjectUpdate,
    TokenRead,
    UserCreate,
    UserRead,
    UserUpdate,
)
from app.status.models import Project

auth_router = APIRouter(prefix="/auth", tags=["staff: auth"])
router = APIRouter(prefix="/staff", tags=["staff"])


@auth_router.post("/token", response_model=TokenRead)
def token(
    request: Request, form: Annotated[OAuth2PasswordRequestForm, Depends()], db: DbSession
) -> TokenRead:
    """OAuth2 password flow: username and password in a form, a bearer token back."""
    check_login_rate(request, form.username)
    user = staff_service.authenticate(db=db, username=form.username, password=form.password)
    if user is None:
        raise AppError(401, "bad_credentials", "用户名或密码不对。")
    secret, _ = staff_service.create_session(db=db, user=user, kind="bearer")
    return TokenRead(access_token=secret, expires_in=settings.session_max_age_seconds)


@router.get("/me", response_model=UserRead)
def me(user: StaffDep) -> StaffUser:
    """The caller's own account."""
    return user


@router.get("/users", response_model=list[UserRead])
def list_users(db: DbSession, user: StaffDep) -> list[StaffUser]:
    """Every account (admin)."""
    roles.require(user, "users.manage")
    return list(staff_service.list_users(db=db))


@router.post("/users", response_model=UserRead, status_code=201)
def create_user(body: UserCreate, db: DbSession, user: StaffDep) -> StaffUser:
    """Create an account (admin)."""
    roles.require(user, "users.manage")
    return staff_service.create_user(
        db=db,
        username=body.username,
        password=body.password,
        role=body.role,
        department=body.department,
        display_name=body.display_name,
        actor=f"staff:{user.username}",
    )


@router.patch("/users/{username}", response_model=UserRead)
def update_user(username: str, body: UserUpdate, db: DbSession, user: StaffDep) -> StaffUser:
    """Change an account's role, department, active flag or password (admin)."""
    roles.require(user, "users.manage")
    target = staff_service.get_by_username(db=db, username=username)
    if target is None:
        raise AppError(404, "not_found", "没有这个账号。")
    if target.id == user.id and (body.active is False or (body.role and body.role != "admin")):
        raise AppError(409, "self_lockout", "不能停用自己或取消自己的管理员角色。")
    return staff_service.update_user(
        db=db,
        user=target,
        actor=f"staff:{user.username}",
        role=body.role,
        department=body.department,
        active=body.active,
        password=body.password,
    )


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


@router.post("/ledger/import")
async def import_ledger(
    db: DbSession, user: StaffDep, files: Annotated[list[UploadFile], File()]
) -> dict[str, object]:
    """Import ledger files (CSV or XLSX); 422 with row errors and nothing imported when bad."""
    roles.require(user, "ledger.import")
    contents = [(f.filename or "", await f.read()) for f in files]
    report, errors = ledger_upload.import_files(db=db, user=user, files=contents)
    if errors:
        raise AppError(422, "ledger_invalid", "台账有错误，未导入任何数据。", {"errors": errors})
    return {"imported": True, "report": report}
