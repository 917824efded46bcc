"""Staff edits of projects and their blockers (卡点) — what the bot tells residents next."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import date
from typing import Any

from sqlalchemy import func, or_, select
from sqlalchemy.orm import Session, selectinload

from app.audit import service as audit
from app.audit.models import AuditLog
from app.core.database import utcnow
from app.core.errors import AppError
from app.policy.departments import blocker_default_department, blocker_names, departments
from app.staff import roles
from app.staff.models import StaffUser
from app.status.models import BLOCKER_OPEN, BLOCKER_RESOLVED, Blocker, Project, Unit


def _actor(user: StaffUser) -> str:
    return f"staff:{user.username}"


def list_projects(
    *, db: Session, q: str | None = None, district: str | None = None, limit: int = 200
) -> list[tuple[Project, int]]:
    """Projects (with their count of open blockers), filtered by name/code and district."""
    open_count = (
        select(func.count())
        .where(Blocker.project_id == Project.id, Blocker.status == BLOCKER_OPEN)
        .correlate(Project)
        .scalar_subquery()
    )
    stmt = select(Project, open_count)
    if q:
        term = q.strip()
        stmt = stmt.where(
            or_(Project.code == term, Project.name.contains(term), Project.address.contains(term))
        )
    if district:
        stmt = stmt.where(Project.district == district)
    stmt = stmt.order_by(Project.district, Project.code).limit(limit)
    return [(p, int(n or 0)) for p, n in db.execute(stmt).all()]


def get_project(*, db: Session, code: str) -> Project:
    """A project by code with its blockers; Chinese 404 when unknown."""
    project = db.scalar(
        select(Project).where(Project.code == code).options(selectinload(Project.blockers))
    )
    if project is None:
        raise AppError(404, "not_found", "没有找到这个项目。")
    return project


def unit_counts(*, db: Session, project: Project) -> dict[str, int]:
    """How many units of the project are in each transfer-registration state."""
    stmt = (
        select(Unit.transfer_status, func.count())
        .where(Unit.project_id == project.id)
        .group_by(Unit.transfer_status)
    )
    return {status: int(n) for status, n in db.execute(stmt).all()}


def project_audit(*, db: Session, project: Project) -> Sequence[AuditLog]:
    """The project's audit rows (blocker edits, imports), newest first."""
    stmt = (
        select(AuditLog)
        .where(AuditLog.entity_type == "project", AuditLog.entity_id == project.code)
        .order_by(AuditLog.id.desc())
        .limit(100)
    )
    return db.scalars(stmt).all()


def _blocker_view(b: Blocker) -> dict[str, Any]:
    return {"code": b.code, "department": b.department, "note": b.note, "status": b.status}


def add_blocker(
    *,
    db: Session,
    user: StaffUser,
    project: Project,
    code: str,
    department: str | None = None,
    note: str = "",
) -> Blocker:
    """Add a blocker to a project (or reopen a resolved one with the same code); audited."""
    roles.require(user, "project.edit")
    code = (code or "").strip()
    known_blockers = blocker_names()
    if known_blockers and code not in known_blockers:
        raise AppError(422, "unknown_blocker", "卡点目录里没有这个卡点类型。")
    department = (department or "").strip() or blocker_default_department(code)
    if not department:
        raise AppError(422, "department_required", "请选择卡点的责任单位。")
    if department not in departments():
        raise AppError(422, "unknown_department", "部门目录里没有这个责任单位。")
    existing = next((b for b in project.blockers if b.code == code), None)
    before = _blocker_view(existing) if existing else None
    if existing is not None:
        if existing.status == BLOCKER_OPEN:
            raise AppError(409, "blocker_exists", "这个项目已经有这个卡点了，请直接修改。")
        existing.status, existing.department, existing.note = BLOCKER_OPEN, department, note
        existing.changed_at = utcnow()
        blocker = existing
    else:
        blocker = Blocker(code=code, department=department, note=note.strip(), status=BLOCKER_OPEN)
        project.blockers.append(blocker)
    project.updated_at = utcnow()
    db.flush()
    audit.record(
        db=db,
        actor=_actor(user),
        action="blocker.add",
        entity_type="project",
        entity_id=project.code,
        before=before,
        after=_blocker_view(blocker),
    )
    return blocker


def _find(project: Project, blocker_code: str) -> Blocker:
    blocker = next((b for b in project.blockers if b.code == blocker_code), None)
    if blocker is None:
        raise AppError(404, "not_found", "这个项目没有这个卡点。")
    return blocker


def resolve_blocker(
    *, db: Session, user: StaffUser, project: Project, blocker_code: str, note: str = ""
) -> Blocker:
    """Mark a project's blocker resolved (化解); audited."""
    roles.require(user, "project.edit")
    blocker = _find(project, blocker_code)
    if blocker.status == BLOCKER_RESOLVED:
        raise AppError(409, "already_resolved", "这个卡点已经化解了。")
    before = _blocker_view(blocker)
    blocker.status = BLOCKER_RESOLVED
    if note.strip():
        blocker.note = note.strip()
    blocker.changed_at = utcnow()
    project.updated_at = utcnow()
    db.flush()
    audit.record(
        db=db,
        actor=_actor(user),
        action="blocker.resolve",
        entity_type="project",
        entity_id=project.code,
        before=before,
        after=_blocker_view(blocker),
    )
    return blocker


def update_blocker(
    *,
    db: Session,
    user: StaffUser,
    project: Project,
    blocker_code: str,
    note: str | None = None,
    department: str | None = None,
) -> Blocker:
    """Change a blocker's note or owner department; audited."""
    roles.require(user, "project.edit")
    blocker = _find(project, blocker_code)
    before = _blocker_view(blocker)
    if department:
        if department not in departments():
            raise AppError(422, "unknown_department", "部门目录里没有这个责任单位。")
        blocker.department = department
    if note is not None:
        blocker.note = note.strip()
    blocker.changed_at = utcnow()
    project.updated_at = utcnow()
    db.flush()
    audit.record(
        db=db,
        actor=_actor(user),
        action="blocker.update",
        entity_type="project",
        entity_id=project.code,
        before=before,
        after=_blocker_view(blocker),
    )
    return blocker


def set_expected_date(
    *, db: Session, user: StaffUser, project: Project, expected: date | None
) -> Project:
    """Set or clear the project's expected resolution date (预计化解日期); audited."""
    roles.require(user, "project.edit")
    before = {"expected_resolution_date": project.expected_resolution_date}
    project.expected_resolution_date = expected
    project.updated_at = utcnow()
    db.flush()
    audit.record(
        db=db,
        actor=_actor(user),
        action="project.update",
        entity_type="project",
        entity_id=project.code,
        before=before,
        after={"expected_resolution_date": expected},
    )
    return project
