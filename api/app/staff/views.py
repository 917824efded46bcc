"""Staff JSON endpoints: the token endpoint and accounts."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Request
from fastapi.security import OAuth2PasswordRequestForm

from app.core.config import settings
from app.core.database import DbSession
from app.core.errors import AppError
from app.staff import roles
from app.staff import service as staff_service
from app.staff.auth import (
    StaffDep,
    check_login_rate,
    record_login_failure,
    record_login_success,
)
from app.staff.models import StaffUser
from app.staff.schemas import (
    TokenRead,
    UserCreate,
    UserRead,
    UserUpdate,
)

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
        record_login_failure(request, form.username)
        raise AppError(401, "bad_credentials", "用户名或密码不对。")
    record_login_success(request, form.username)
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
